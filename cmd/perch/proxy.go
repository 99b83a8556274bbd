package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/providers/proxy"
)

// proxyRouter starts perch's own proxy on the rollout's listen address, or drives a standalone
// one through its admin API.
func proxyRouter(ctx context.Context, spec *spec.Rollout, flags connectFlags) (engine.Router, error) {
	p := spec.Traffic.Proxy
	if p.Standalone() {
		return standaloneProxyRouter(ctx, spec, flags)
	}
	cfg := proxy.Config{Stable: p.Stable, Canary: p.Canary}
	if p.Sticky != nil {
		cfg.StickyHeader, cfg.StickyCookie = p.Sticky.Header, p.Sticky.Cookie
	}
	if p.Override != nil {
		cfg.OverrideHeader = p.Override.Header
	}
	cfg.Resolution, cfg.Retention = builtinWindow(spec)
	px, err := proxy.Listen(p.Listen, cfg)
	if err != nil {
		return nil, err
	}
	if flags.restoreWeight > 0 { // resuming: the proxy died with the last perch; bring its split back
		if err := px.SetWeight(ctx, flags.restoreWeight); err != nil {
			px.Close()
			return nil, err
		}
	}
	return px, nil
}

// builtinWindow sizes the proxy's observations for the rollout: slots of a quarter of the look
// interval (1 s at most), kept for the longest step's analysis and a few intervals more (5
// minutes at least). A hold that outlasts it loses its oldest points, not its newest.
func builtinWindow(spec *spec.Rollout) (resolution, retention time.Duration) {
	interval := time.Duration(spec.Analysis.Interval)
	resolution = max(min(time.Second, interval/4), time.Millisecond)
	var longest time.Duration
	for _, st := range spec.Steps {
		longest = max(longest, time.Duration(st.Analyze))
	}
	return resolution, max(longest+4*interval, 5*time.Minute)
}

// builtinSource is the proxy's own observations; the proxy is the rollout's router, in perch or
// standalone (whose admin API answers the queries).
func builtinSource(_ context.Context, _ *spec.Rollout, router engine.Router, _ connectFlags) (engine.Source, error) {
	switch p := router.(type) {
	case interface{ Source() *proxy.Source }:
		return p.Source(), nil
	case engine.Source:
		return p, nil
	}
	return nil, errors.New("the builtin metrics source is the proxy's own observations: it needs traffic.proxy")
}

// inProcessProxyNote is what perch says when it starts a proxy inside itself, which serves only
// while this perch runs; "" for any other provider.
func inProcessProxyNote(spec *spec.Rollout) string {
	p := spec.Traffic.Proxy
	if p == nil || p.Standalone() {
		return ""
	}
	return fmt.Sprintf("perch: proxy on %s (stable %s, canary %s) runs inside this perch: its traffic stops when perch stops.\n"+
		"perch: for traffic that outlives perch run the proxy as a service with 'perch proxy PROXY.yaml' and set traffic.proxy.admin",
		p.Listen, p.Stable, p.Canary)
}
