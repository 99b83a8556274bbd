// Package rollouttest runs a whole rollout through the engine against a traffic provider, for
// the providers' tests: the engine sets each step's weight through the provider, reads it
// back, and promotes.
package rollouttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// source answers every query with the same value at every step: canary and baseline look
// alike, so every check passes once it has enough samples.
type source struct{}

// Samples returns one sample per step between start and end.
func (source) Samples(_ context.Context, _ metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: 0.25})
	}
	if len(out) == 0 {
		return nil, metrics.ErrNoData
	}
	return out, nil
}

// Spec is a rollout over the traffic block given (YAML, indented under "traffic:"): 10% then
// 50%, each analysed for two minutes, then promotion.
func Spec(t testing.TB, traffic string) *spec.Rollout {
	t.Helper()
	file := fmt.Sprintf(`name: checkout
traffic:
%s
metrics:
  prometheus: {address: http://prometheus.invalid:9090}
analysis: {interval: 30s, stabilization: 30s, judge: threshold}
checks:
  - name: latency
    canary: latency{version="canary"}
    baseline: latency{version="stable"}
    direction: lower_is_better
    maxDeviationPercent: 10
steps:
  - setWeight: 10
    analyze: 2m
  - setWeight: 50
    analyze: 2m
`, traffic)
	rollout, err := spec.Parse("rollout.yaml", []byte(file))
	if err != nil {
		t.Fatalf("rollout file: %v", err)
	}
	return rollout
}

// recorder keeps the events in memory, in order.
type recorder struct{ events []engine.Event }

func (r *recorder) Append(ev engine.Event) error {
	r.events = append(r.events, ev)
	return nil
}

// Promote runs spec against router until the engine ends, fails the test unless the rollout
// was promoted, and returns the weights the provider confirmed, in order. Call it inside a
// synctest bubble unless the router talks over a real network.
func Promote(t testing.TB, spec *spec.Rollout, router engine.Router) []int {
	t.Helper()
	rec := &recorder{}
	eng, err := engine.New(engine.Config{Spec: spec, Router: router, Source: source{}, Journal: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	out, err := eng.Run(ctx)
	if err != nil || out != engine.OutcomePromoted {
		for _, ev := range rec.events {
			t.Logf("%s", ev.Describe(spec))
		}
		t.Fatalf("rollout ended %q, %v; want promoted", out, err)
	}
	var weights []int
	for _, ev := range rec.events {
		if ev.Type == engine.EventWeightSet && ev.Weight != nil {
			weights = append(weights, *ev.Weight)
		}
	}
	return weights
}
