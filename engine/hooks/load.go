package hooks

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perchhq/perch/engine/spec"
)

// maxLoadWorkers bounds the requests a load test has in flight at once.
const maxLoadWorkers = 100

// load sends GET requests at the hook's rate until ctx ends. A fixed pool of workers takes
// the ticks, so the goroutines stay few at any rate, and a tick no worker is free for (the
// target is slower than the rate allows) is skipped rather than queued.
func (r Runner) load(ctx context.Context, h spec.Hook, v spec.HookVars) Result {
	lt := h.LoadTest
	u, err := v.Expand(lt.URL, true)
	if err != nil {
		return Result{Outcome: Failed, Error: "url: " + err.Error()}
	}
	workers := min(max(lt.RPS, 1), maxLoadWorkers)
	transport := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, IdleConnTimeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Duration(lt.Timeout),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var sent, failed, skipped atomic.Int64
	var mu sync.Mutex
	lastErr := ""
	ticks := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range ticks {
				sent.Add(1)
				if msg := get(ctx, client, u); msg != "" {
					failed.Add(1)
					mu.Lock()
					lastErr = msg
					mu.Unlock()
				}
			}
		})
	}
	ticker := time.NewTicker(time.Second / time.Duration(max(lt.RPS, 1)))
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-ticker.C:
			select {
			case ticks <- struct{}{}:
			default:
				skipped.Add(1)
			}
		}
	}
	ticker.Stop()
	close(ticks)
	wg.Wait()
	res := Result{Outcome: OK, Requests: sent.Load(), Failures: failed.Load(), Skipped: skipped.Load()}
	if res.Failures > 0 {
		res.Outcome = Failed
		res.Error = "last failure: " + lastErr
	}
	return res
}

// get sends one request and says what went wrong, or "" for an answer below 400. A request
// cut short because the load test ended is not a failure.
func get(ctx context.Context, client *http.Client, u string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("User-Agent", "perch-loadtest")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ""
		}
		return err.Error()
	}
	// Read a little of the body so the connection can be reused; a huge one is cut off.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return "HTTP " + resp.Status
	}
	return ""
}
