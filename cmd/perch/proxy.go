package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/envvar"
	"github.com/perchhq/perch/providers/proxy"
)

// proxyRouter starts perch's own proxy on the rollout's listen address.
func proxyRouter(ctx context.Context, spec *spec.Rollout, flags connectFlags) (engine.Router, error) {
	p := spec.Traffic.Proxy
	cfg := proxy.Config{Stable: p.Stable, Canary: p.Canary}
	if p.Sticky != nil {
		cfg.StickyHeader, cfg.StickyCookie = p.Sticky.Header, p.Sticky.Cookie
	}
	if p.Override != nil && p.Override.Token != "" { // no token (an older journal's): no override
		token, err := envvar.Expand(p.Override.Token, os.Getenv)
		if err != nil {
			return nil, fmt.Errorf("traffic.proxy.override.token: %w", err)
		}
		cfg.OverrideHeader, cfg.OverrideToken = p.Override.Header, token
	}
	if t := p.Timeouts; t != nil {
		cfg.Timeouts = proxy.Timeouts{ResponseHeader: time.Duration(t.ResponseHeader), Idle: time.Duration(t.Idle), Body: time.Duration(t.Body)}
	}
	cfg.MaxConnections = p.MaxConnections
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

// builtinSource is the proxy's own observations; the proxy is the rollout's router.
func builtinSource(_ context.Context, _ *spec.Rollout, router engine.Router, _ connectFlags) (engine.Source, error) {
	p, ok := router.(interface{ Source() *proxy.Source })
	if !ok {
		return nil, errors.New("the builtin metrics source is the proxy's own observations: it needs traffic.proxy")
	}
	return p.Source(), nil
}
