package main

import (
	"context"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// memBackend is an in-memory provider and source: the canary's error ratio is errorRatio
// once the weight reaches failAt (never, if failAt is 0).
type memBackend struct {
	mu     sync.Mutex
	weight int
	sets   []int
	failAt int
}

func (m *memBackend) SetWeight(_ context.Context, w int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.weight = w
	m.sets = append(m.sets, w)
	return nil
}

func (m *memBackend) Weight(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.weight, nil
}

func (m *memBackend) Samples(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := 100.0
	if q.Expr == "canary_errors" || q.Expr == "stable_errors" {
		v = 0
		if q.Expr == "canary_errors" && m.failAt > 0 && m.weight >= m.failAt {
			v = 30
		}
	}
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: v})
	}
	return out, nil
}

// memRegistry connects every rollout, whatever provider and source it names, to m.
func memRegistry(m *memBackend) registry {
	r := defaultRegistry()
	for kind := range r.routers {
		r.routers[kind] = func(context.Context, *spec.Rollout, connectFlags) (engine.Router, error) { return m, nil }
	}
	for kind := range r.sources {
		r.sources[kind] = func(context.Context, *spec.Rollout, engine.Router, connectFlags) (engine.Source, error) {
			return m, nil
		}
	}
	return r
}
