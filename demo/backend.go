package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Behavior is how a demo backend answers: latencies drawn from a lognormal distribution,
// optionally with its slow tail stretched, and a share of requests failing with 500.
type Behavior struct {
	Median time.Duration // median latency
	Spread float64       // σ of the lognormal; 0.3 puts the p99 at about twice the median
	// TailStretch > 1 stretches every latency above the median by that factor, leaving the
	// median where it is: a tail regression (1.8 raises the p99 by about 40% at Spread 0.3).
	TailStretch float64
	ErrorRate   float64 // share of requests answered 500, 0..1
}

// latency draws one latency.
func (b Behavior) latency() time.Duration {
	median := float64(b.Median)
	v := median * math.Exp(b.Spread*rand.NormFloat64())
	if b.TailStretch > 1 && v > median {
		v = median + (v-median)*b.TailStretch
	}
	return time.Duration(v)
}

// backend is a demo HTTP service on loopback whose behavior can change while it runs.
type backend struct {
	name     string
	behavior atomic.Pointer[Behavior]
	server   *http.Server
	listener net.Listener
}

// startBackend serves a backend named name (it says so in every answer) on 127.0.0.1.
func startBackend(name string, b Behavior) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo %s backend: %w", name, err)
	}
	be := &backend{name: name, listener: ln}
	be.Set(b)
	be.server = &http.Server{Handler: be, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go be.server.Serve(ln)
	return be, nil
}

// URL is the backend's base URL.
func (be *backend) URL() string { return "http://" + be.listener.Addr().String() }

// Set changes how the backend answers from the next request on.
func (be *backend) Set(b Behavior) { be.behavior.Store(&b) }

// Behavior is how the backend answers now.
func (be *backend) Behavior() Behavior { return *be.behavior.Load() }

// ServeHTTP waits the drawn latency, then answers 200 with the backend's name, or 500.
func (be *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := be.behavior.Load()
	timer := time.NewTimer(b.latency())
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-r.Context().Done():
		return
	}
	if rand.Float64() < b.ErrorRate {
		http.Error(w, be.name+": simulated failure", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "hello from %s\n", be.name)
}

// Close stops the backend.
func (be *backend) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := be.server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = be.server.Close()
	}
	return err
}
