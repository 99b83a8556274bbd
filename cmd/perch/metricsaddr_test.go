package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/providers/proxy"
)

// fixedState is a rolloutmetrics.Snapshots that always shows one state.
type fixedState struct{ s engine.State }

func (f fixedState) Snapshot() engine.State { return f.s }

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	return string(body)
}

// TestMetricsAddrServesEngineAndProxySeries folds the shipped error-spike recording (a rollout
// that rolled back on a failed check) and serves it with a live proxy's series.
func TestMetricsAddrServesEngineAndProxySeries(t *testing.T) {
	rec, err := engine.LoadRecording("../../demo/recordings/error-spike.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	st := engine.NewState(rec.Header.Spec)
	for _, ev := range rec.Events {
		st.Apply(ev)
	}
	backend := freeAddr(t) // nothing listens: the proxy answers 502
	p, err := proxy.Listen("127.0.0.1:0", proxy.Config{Stable: "http://" + backend, Canary: "http://" + backend})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if resp, err := http.Get(p.URL()); err == nil {
		resp.Body.Close()
	}
	a, _, stderr := testApp()
	addr := freeAddr(t)
	stop, err := a.serveMetrics(addr, fixedState{st}, p, "not a collector")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !strings.Contains(stderr.String(), "perch: metrics on http://"+addr+"/metrics") {
		t.Errorf("the metrics address was not announced: %q", stderr)
	}
	body := scrape(t, addr)
	for _, want := range []string{
		`perch_rollout_phase{phase="rolled_back",rollout="demo-error-spike"} 1`,
		`perch_rollout_phase{phase="running",rollout="demo-error-spike"} 0`,
		`perch_rollout_canary_weight_percent{rollout="demo-error-spike"} 0`,
		`perch_rollout_step{rollout="demo-error-spike"} 3`,
		`perch_rollout_steps{rollout="demo-error-spike"} 4`,
		`perch_rollout_check_verdict{check="error_rate",rollout="demo-error-spike",verdict="fail"} 1`,
		`perch_rollout_check_verdict{check="error_rate",rollout="demo-error-spike",verdict="pass"} 0`,
		`perch_proxy_requests_total{code="502",version="stable"} 1`,
		`perch_proxy_request_duration_seconds_count{version="stable"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

func TestMetricsAddrRefusesABadAddress(t *testing.T) {
	a, _, _ := testApp()
	_, err := a.serveMetrics("not-an-address", fixedState{}, nil)
	if err == nil || !strings.Contains(err.Error(), "--metrics-addr") {
		t.Errorf("got %v, want an error naming --metrics-addr", err)
	}
}

func TestMetricsAddrDuringADemo(t *testing.T) {
	addr := freeAddr(t)
	a, _, stderr := testApp()
	done := make(chan int)
	go func() {
		done <- a.main(context.Background(), []string{"demo", "--headless", "--speed", "8", "--metrics-addr", addr, "--record", t.TempDir() + "/d.jsonl"})
	}()
	// Scrape until the proxy has forwarded requests; the demo is still running then.
	var body string
	for i := 0; i < 200 && !strings.Contains(body, `perch_proxy_requests_total{code="200",version="stable"}`); i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		select {
		case code := <-done:
			t.Fatalf("the demo ended (exit %d) before /metrics showed proxy traffic: %s", code, stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, want := range []string{`perch_rollout_phase{phase="running",rollout="demo-healthy"} 1`, `perch_proxy_request_duration_seconds_bucket`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics during the demo lacks %s", want)
		}
	}
	if code := <-done; code != exitOK {
		t.Errorf("demo exit %d: %s", code, stderr)
	}
}
