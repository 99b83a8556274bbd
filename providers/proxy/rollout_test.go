package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/providers/proxy"
)

type journal struct {
	mu     sync.Mutex
	events []engine.Event
}

func (j *journal) Append(ev engine.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, ev)
	return nil
}

// rollout runs a one-step rollout (50%, judged on the builtin error rate) over a proxy in
// front of a healthy stable and the given canary, with clients that give up after 150 ms
// and, if malformed, a client sending bodies with broken chunked framing pinned to the
// canary; it returns how the rollout ended.
func rollout(t *testing.T, canaryURL string, malformed bool) engine.Outcome {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a rollout in real time")
	}
	p, err := proxy.Listen("127.0.0.1:0", proxy.Config{
		Stable: backend(t, "stable").URL, Canary: canaryURL,
		Timeouts:       proxy.Timeouts{ResponseHeader: 300 * time.Millisecond},
		OverrideHeader: "X-Perch-Version", OverrideToken: "s3cret",
		Resolution: 50 * time.Millisecond, Retention: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	rollout, err := spec.Parse("rollout.yaml", []byte(`name: hang
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {builtin: {}}
analysis: {interval: 200ms, stabilization: 200ms}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.05, critical: true}
steps:
  - {setWeight: 50, analyze: 4s}
`))
	if err != nil {
		t.Fatal(err)
	}
	// Load: clients that give up after 150 ms, half the proxy's wait for a backend.
	ctx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	defer func() { stopLoad(); load.Wait() }()
	client := &http.Client{Timeout: 150 * time.Millisecond, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for range 16 {
		load.Go(func() {
			for ctx.Err() == nil {
				resp, err := client.Get(p.URL())
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	if malformed {
		load.Go(func() {
			for ctx.Err() == nil {
				if c, err := net.Dial("tcp", p.Addr()); err == nil {
					io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nX-Perch-Version: canary\r\nX-Perch-Token: s3cret\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
					io.Copy(io.Discard, c)
					c.Close()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	j := &journal{}
	eng, err := engine.New(engine.Config{Spec: rollout, Router: p, Source: p.Source(), Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := eng.Run(runCtx)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, ev := range j.events {
		t.Logf("%s", ev.Describe(rollout))
	}
	return out
}

// TestHangingCanaryIsRolledBack: a canary that never answers, behind clients that give up
// before the proxy does, is judged on the 504s the proxy records and rolled back; a healthy
// one is promoted, even while malformed requests are pinned to it.
func TestHangingCanaryIsRolledBack(t *testing.T) {
	if out := rollout(t, hanging(t).URL, false); out != engine.OutcomeRolledBack {
		t.Errorf("a hanging canary ended %q, want rolled back", out)
	}
	if out := rollout(t, backend(t, "canary").URL, true); out != engine.OutcomePromoted {
		t.Errorf("a healthy canary under malformed pinned requests ended %q, want promoted", out)
	}
}
