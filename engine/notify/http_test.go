package notify_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/notify"
)

// receiver is an httptest server that records what it gets; answer decides each response
// (nil: 200).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	times  []time.Time
	bodies [][]byte
	codes  []int
	active int // requests being answered now
	gaveUp int // requests the client abandoned
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, req *http.Request) int) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rc.mu.Lock()
		rc.times = append(rc.times, time.Now())
		rc.bodies = append(rc.bodies, body)
		n := len(rc.times)
		rc.active++
		rc.mu.Unlock()
		code := http.StatusOK
		if answer != nil {
			code = answer(n, w, req)
		}
		rc.mu.Lock()
		rc.active--
		rc.codes = append(rc.codes, code)
		if code == 0 {
			rc.gaveUp++
		}
		rc.mu.Unlock()
		if code != 0 {
			w.WriteHeader(code)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) snapshot() (times []time.Time, delivered []string, active, gaveUp int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i, c := range rc.codes {
		if c/100 == 2 {
			delivered = append(delivered, string(rc.bodies[i]))
		}
	}
	return append([]time.Time(nil), rc.times...), delivered, rc.active, rc.gaveUp
}

// Real receivers over loopback HTTP: one fails then recovers, one hangs, one is healthy.
func TestHTTPReceiversThatFailHangAndRecover(t *testing.T) {
	quit := make(chan struct{})
	flaky := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	hanging := newReceiver(t, func(_ int, _ http.ResponseWriter, req *http.Request) int {
		select {
		case <-req.Context().Done():
			return 0 // the notifier gave up on it
		case <-quit:
			return http.StatusOK
		}
	})
	t.Cleanup(func() { close(quit) }) // runs before the servers close, releasing the handler
	healthy := newReceiver(t, nil)

	yaml := strings.NewReplacer("interval: 10s, stabilization: 10s", "interval: 20ms, stabilization: 20ms", "analyze: 1m", "analyze: 100ms").Replace(rolloutYAML)
	yaml += fmt.Sprintf("notify:\n  - webhook: {url: %q}\n  - webhook: {url: %q}\n  - webhook: {url: %q}\n", flaky.srv.URL, hanging.srv.URL, healthy.srv.URL)
	var log logs
	const backoff = 50 * time.Millisecond
	r := startRollout(t, parseSpec(t, yaml), &world{}, notify.Options{
		Backoff: backoff, AttemptTimeout: time.Minute, DrainTimeout: 500 * time.Millisecond, Logf: log.logf,
	})
	<-r.done
	if r.outcome != engine.OutcomePromoted {
		t.Fatalf("outcome %s", r.outcome)
	}
	// The engine promoted while the hanging receiver still held the first notification.
	if times, _, active, _ := hanging.snapshot(); len(times) != 1 || active != 1 {
		t.Errorf("the hanging receiver got %d requests, %d still open at promotion; want 1, open", len(times), active)
	}
	<-r.notified

	_, got, _, _ := healthy.snapshot()
	if len(got) != 4 || !strings.Contains(got[0], `"type":"rollout_started"`) || !strings.Contains(got[3], `"type":"promoted"`) {
		t.Errorf("the healthy receiver got %d notifications:\n%s", len(got), strings.Join(got, "\n"))
	}
	times, got, _, _ := flaky.snapshot()
	if len(got) != 4 || !strings.Contains(got[0], `"type":"rollout_started"`) {
		t.Errorf("the flaky receiver got %d notifications after recovering, want all 4 in order", len(got))
	}
	if len(times) < 3 || times[1].Sub(times[0]) < backoff || times[2].Sub(times[1]) < 2*backoff {
		t.Errorf("retries at %v: want waits of at least %s, then %s", times, backoff, 2*backoff)
	}
	// The server sees the client hang up a moment after it does.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, _, active, gaveUp := hanging.snapshot()
		if active == 0 && gaveUp == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the hanging request: %d open, %d abandoned after the drain timeout; want it abandoned", active, gaveUp)
			break
		}
	}
	if logged := strings.Join(log.all(), "\n"); !strings.Contains(logged, "notify[1] (webhook to 127.0.0.1): 3 notification(s) not sent: perch is exiting") {
		t.Errorf("logged %q", logged)
	}
}
