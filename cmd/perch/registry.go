package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics/prometheus"
)

// connectFlags say how to reach the providers, the way kubectl and the AWS CLI users expect.
type connectFlags struct {
	kubeconfig  string
	kubeContext string
	awsProfile  string
	// restoreWeight is, on --resume, the weight the journal last confirmed (-1 if none): a
	// provider that lives in perch and died with it (the proxy) starts from it.
	restoreWeight int
}

// routerFactory connects to the traffic provider a rollout file names.
type routerFactory func(ctx context.Context, spec *spec.Rollout, flags connectFlags) (engine.Router, error)

// sourceFactory connects to the metrics source a rollout file names. It gets the router
// because the builtin source is the proxy's own observations.
type sourceFactory func(ctx context.Context, spec *spec.Rollout, router engine.Router, flags connectFlags) (engine.Source, error)

// registry maps the providers and sources of the rollout file to the code that connects to
// them. It is a value built in main, so tests can put in-memory ones in its place.
type registry struct {
	routers map[string]routerFactory // by spec.Traffic.Kind()
	sources map[string]sourceFactory // by spec.Metrics.Kind()
	flags   map[string]flagsFactory  // by spec.Flags.Kind()
}

func defaultRegistry() registry {
	return registry{
		routers: map[string]routerFactory{
			"alb":        albRouter,
			"istio":      istioRouter(connectKube),
			"gatewayAPI": gatewayAPIRouter(connectKube),
			"proxy":      proxyRouter,
		},
		sources: map[string]sourceFactory{
			"builtin":    builtinSource,
			"cloudwatch": cloudwatchSource,
			"datadog":    datadogSource,
			"newRelic":   newRelicSource,
			"web":        webSource,
			"prometheus": func(_ context.Context, s *spec.Rollout, _ engine.Router, _ connectFlags) (engine.Source, error) {
				return prometheus.New(s.Metrics.Prometheus.Address, nil)
			},
		},
		flags: defaultFlags(),
	}
}

// backend is a rollout's connected router and source, and its feature-flag system if any.
type backend struct {
	router engine.Router
	source engine.Source
	flags  engine.Flags
}

// close lets go of whatever the router or source holds (the proxy's listener, say).
func (b *backend) close() error {
	var errs []error
	for _, v := range []any{b.source, b.router} {
		if c, ok := v.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// connect builds the rollout's router and source; its errors carry their exit code.
func (r registry) connect(ctx context.Context, spec *spec.Rollout, flags connectFlags) (*backend, error) {
	kind := spec.Traffic.Kind()
	mkRouter, ok := r.routers[kind]
	if !ok {
		return nil, badInput(fmt.Errorf("traffic provider %q is not available in this build of perch", kind))
	}
	router, err := mkRouter(ctx, spec, flags)
	if err != nil {
		return nil, runtimeError(fmt.Errorf("connect to %s: %w", kind, err))
	}
	b := &backend{router: router}
	if b.flags, err = r.connectFlags(ctx, spec); err != nil {
		b.close()
		return nil, err
	}
	if len(spec.Checks) == 0 {
		return b, nil
	}
	source := spec.Metrics.Kind()
	mkSource, ok := r.sources[source]
	if !ok {
		b.close()
		return nil, badInput(fmt.Errorf("metrics source %q is not available in this build of perch", source))
	}
	if b.source, err = mkSource(ctx, spec, router, flags); err != nil {
		b.close()
		return nil, runtimeError(fmt.Errorf("connect to %s: %w", source, err))
	}
	return b, nil
}
