package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine/rolloutmetrics"
)

func addMetricsAddrFlag(c *cobra.Command, addr *string) {
	c.Flags().StringVar(addr, "metrics-addr", "", "serve Prometheus metrics (the rollout's, and the proxy's if it routes) on ADDR/metrics, e.g. 127.0.0.1:9464")
}

// serveMetrics serves /metrics on addr with the rollout's series (rolloutmetrics) and those of
// each exporter that is a prometheus.Collector (the proxy is; other routers and sources are
// skipped) until stop is called; with no addr it does nothing.
func (a *app) serveMetrics(addr string, eng rolloutmetrics.Snapshots, exporters ...any) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(rolloutmetrics.New(eng)); err != nil {
		return nil, runtimeError(err)
	}
	for _, e := range exporters {
		if c, ok := e.(prometheus.Collector); ok {
			if err := reg.Register(c); err != nil {
				return nil, runtimeError(fmt.Errorf("metrics: %w", err))
			}
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, badInput(fmt.Errorf("--metrics-addr: %w", err))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(a.stderr, "perch: metrics server: %v\n", err)
		}
	}()
	fmt.Fprintf(a.stderr, "perch: metrics on http://%s/metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}, nil
}
