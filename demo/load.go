package demo

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Load sends requests at a steady rate to a URL over real HTTP, each from one of Users users
// (named in UserHeader, so sticky routing keeps each on one side), never more than Concurrency
// at once: a request that would exceed it is skipped and counted, not queued.
type Load struct {
	Target      string
	Rate        float64 // requests per second
	Concurrency int
	Users       int
	UserHeader  string

	sent, skipped, failed atomic.Int64
}

// LoadStats is what a load run did.
type LoadStats struct {
	Sent, Skipped, Failed int64 // failed: no HTTP answer at all
}

// Stats is what the load has done so far.
func (l *Load) Stats() LoadStats {
	return LoadStats{Sent: l.sent.Load(), Skipped: l.skipped.Load(), Failed: l.failed.Load()}
}

// loadTick is how often the generator wakes to send what is due.
const loadTick = 5 * time.Millisecond

// Run sends requests until ctx ends, then waits for those in flight (which ctx cancels).
func (l *Load) Run(ctx context.Context) {
	transport := &http.Transport{MaxIdleConnsPerHost: l.Concurrency, MaxConnsPerHost: l.Concurrency, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	slots := make(chan struct{}, l.Concurrency)
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	ticker := time.NewTicker(loadTick)
	defer ticker.Stop()
	last := time.Now()
	due := 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			// After a stall (a loaded machine) send at most one burst of Concurrency.
			due = min(due+l.Rate*now.Sub(last).Seconds(), float64(l.Concurrency))
			last = now
		}
		for ; due >= 1; due-- {
			select {
			case slots <- struct{}{}:
			default:
				l.skipped.Add(1)
				continue
			}
			l.sent.Add(1)
			inFlight.Go(func() {
				defer func() { <-slots }()
				l.request(ctx, client)
			})
		}
	}
}

func (l *Load) request(ctx context.Context, client *http.Client) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.Target, nil)
	if err != nil {
		l.failed.Add(1)
		return
	}
	if l.UserHeader != "" && l.Users > 0 {
		req.Header.Set(l.UserHeader, "user-"+strconv.Itoa(rand.IntN(l.Users)))
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.failed.Add(1)
		}
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
