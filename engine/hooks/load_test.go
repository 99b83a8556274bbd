package hooks_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perchhq/perch/engine/hooks"
	"github.com/perchhq/perch/engine/spec"
)

func loadHook(url string, rps int) spec.Hook {
	return spec.Hook{On: spec.HookDuringStep, LoadTest: &spec.LoadTestHook{URL: url, RPS: rps, Timeout: spec.Duration(5 * time.Second)}}
}

// TestLoadRate: a load test sends its rate, steadily, until it is stopped. The bounds are
// loose so a busy machine still passes; a load test that sent none, or ten times too many,
// does not.
func TestLoadRate(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && r.Method == http.MethodGet {
			n.Add(1)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res := hooks.Runner{}.Run(ctx, loadHook(srv.URL+"/health", 50), vars)
	got := n.Load()
	if got < 50 || got > 130 {
		t.Errorf("%d requests in 2s at 50 rps: want about 100", got)
	}
	if res.Outcome != hooks.OK || res.Requests < got || res.Requests > got+5 || res.Failures != 0 {
		t.Errorf("result %+v, server counted %d", res, got)
	}
}

// TestLoadFailures: failed requests are summed up, not reported one by one.
func TestLoadFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res := hooks.Runner{}.Run(ctx, loadHook(srv.URL, 40), vars)
	if res.Outcome != hooks.Failed || res.Failures == 0 || res.Failures >= res.Requests || res.Error != "last failure: HTTP 503 Service Unavailable" {
		t.Errorf("result %+v", res)
	}
}

// TestLoadBoundedInFlight: against a target slower than the rate, the requests in flight
// stay bounded and the ticks no worker is free for are skipped, not queued.
func TestLoadBoundedInFlight(t *testing.T) {
	var inFlight, most atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if now <= m || most.CompareAndSwap(m, now) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	res := hooks.Runner{}.Run(ctx, loadHook(srv.URL, 1000), vars)
	if m := most.Load(); m > 100 || m < 10 {
		t.Errorf("%d requests in flight at most: want at most 100 (the worker pool)", m)
	}
	if res.Skipped == 0 || res.Requests > 110 {
		t.Errorf("result %+v: the ticks no worker was free for should be skipped", res)
	}
}
