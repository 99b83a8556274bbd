package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/envexpand"
	"github.com/perchhq/perch/providers/proxy"
)

// proxyRouter starts perch's own proxy on the rollout's listen address, or drives a standalone
// one through its admin API.
func proxyRouter(ctx context.Context, rollout *spec.Rollout, flags connectFlags) (engine.Router, error) {
	p := rollout.Traffic.Proxy
	if p.Standalone() {
		return standaloneProxyRouter(ctx, rollout, flags)
	}
	cfg := proxy.Config{Stable: p.Stable, Canary: p.Canary}
	if p.Sticky != nil {
		cfg.StickyHeader, cfg.StickyCookie = p.Sticky.Header, p.Sticky.Cookie
	}
	// No token (an older journal's) or a journal's redacted one: no override at all.
	if o := p.Override; o != nil && o.Token != "" && o.Token != spec.RedactedSecret {
		token, err := envexpand.Expand(string(o.Token), os.Getenv)
		if err != nil {
			return nil, fmt.Errorf("traffic.proxy.override.token: %w", err)
		}
		cfg.OverrideHeader, cfg.OverrideToken = o.Header, token
	}
	if t := p.Timeouts; t != nil {
		cfg.Timeouts = proxy.Timeouts{ResponseHeader: time.Duration(t.ResponseHeader), Idle: time.Duration(t.Idle), Body: time.Duration(t.Body)}
	}
	cfg.MaxConnections = p.MaxConnections
	cfg.Resolution, cfg.Retention = builtinWindow(rollout)
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
