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

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/engine/rolloutmetrics"
)

func addMetricsAddrFlag(c *cobra.Command, addr *string) {
	c.Flags().StringVar(addr, "metrics-addr", "", "serve Prometheus metrics (the rollout's, and the proxy's if it routes; with several rollouts every one's, the proxy's labelled rollout=NAME) on ADDR/metrics, e.g. 127.0.0.1:9464")
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
	if _, err := registerExporters(reg, exporters...); err != nil {
		return nil, err
	}
	return a.listenMetrics(addr, reg)
}

// serveFleetMetrics serves /metrics on addr from reg with every rollout's series of fl, each
// under its rollout label as a rollout alone has them, until stop is called; with no addr it
// does nothing. Each rollout adds its exporters to reg as it starts (fleetExporters).
func (a *app) serveFleetMetrics(addr string, fl *fleet.Fleet, reg *prometheus.Registry) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	states := func() []engine.State {
		list := fl.Statuses()
		out := make([]engine.State, len(list))
		for i := range list {
			out[i] = list[i].State
		}
		return out
	}
	if err := reg.Register(rolloutmetrics.NewSet(states)); err != nil {
		return nil, runtimeError(err)
	}
	return a.listenMetrics(addr, reg)
}

// fleetExporters registers on reg the exporters of one rollout of a fleet (its proxy's series),
// each series with a rollout label naming it, until the returned function unregisters them;
// reg nil does nothing.
func fleetExporters(reg *prometheus.Registry, name string, exporters ...any) (func(), error) {
	if reg == nil {
		return func() {}, nil
	}
	return registerExporters(prometheus.WrapRegistererWith(prometheus.Labels{"rollout": name}, reg), exporters...)
}

// registerExporters registers each exporter that is a prometheus.Collector with reg, until the
// returned function unregisters them.
func registerExporters(reg prometheus.Registerer, exporters ...any) (func(), error) {
	var done []prometheus.Collector
	unregister := func() {
		for _, c := range done {
			reg.Unregister(c)
		}
	}
	for _, e := range exporters {
		if c, ok := e.(prometheus.Collector); ok {
			if err := reg.Register(c); err != nil {
				unregister()
				return nil, runtimeError(fmt.Errorf("metrics: %w", err))
			}
			done = append(done, c)
		}
	}
	return unregister, nil
}

// listenMetrics serves reg on addr/metrics until stop is called.
func (a *app) listenMetrics(addr string, reg *prometheus.Registry) (stop func(), err error) {
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
