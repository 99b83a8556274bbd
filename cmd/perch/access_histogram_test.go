package main

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// histogramProvider is a memProvider whose source also answers bucket queries: requests of
// the canary only, 10 an interval at bounds 0.1 and +Inf.
type histogramProvider struct{ *memProvider }

func (h histogramProvider) Histogram(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) (metrics.Histogram, error) {
	h.mu.Lock()
	h.asked = append(h.asked, q.Expr)
	h.mu.Unlock()
	if !strings.Contains(q.Expr, "canary") {
		return metrics.Histogram{}, metrics.ErrNoData
	}
	out := metrics.Histogram{Bounds: metrics.Bounds{0.1, math.Inf(1)}}
	for t := start; !t.After(end); t = t.Add(step) {
		out.Points = append(out.Points, metrics.HistogramPoint{Time: t, Counts: []float64{7, 10}})
	}
	return out, nil
}

const histogramAccessRollout = `name: web
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {interval: 30s}
checks:
  - name: latency
    direction: lower_is_better
    maxIncrease: 0.01
    histogram: {canary: canary_bucket, baseline: stable_bucket}
steps: [{setWeight: 10, analyze: 1m}]
`

// validate --check-access runs a histogram check's bucket queries through the source, and
// says so when the source answers none.
func TestCheckAccessRunsHistogramQueries(t *testing.T) {
	m := histogramProvider{&memProvider{weight: 5}}
	reg := defaultRegistry()
	reg.routers["proxy"] = func(context.Context, *spec.Rollout, connectFlags) (engine.Router, error) { return m, nil }
	reg.sources["prometheus"] = func(context.Context, *spec.Rollout, engine.Router, connectFlags) (engine.Source, error) {
		return m, nil
	}
	file := writeFile(t, "web.yaml", histogramAccessRollout)
	code, out, errOut := perchRun(t, reg, "validate", file, "--check-access")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"check latency histogram.canary: 11 histogram(s) over the last 5m at 2 bounds, latest of 10 requests",
		file + ":9:50: checks[0].histogram.baseline: check latency histogram.baseline: no data over the last 5m",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if len(m.asked) != 2 {
		t.Errorf("queries run: %v, want the check's 2 bucket queries", m.asked)
	}

	plain := &memProvider{weight: 5}
	reg.sources["prometheus"] = func(context.Context, *spec.Rollout, engine.Router, connectFlags) (engine.Source, error) {
		return plain, nil
	}
	code, out, errOut = perchRun(t, reg, "validate", file, "--check-access")
	if code == exitOK || !strings.Contains(out+errOut, "check latency histogram.canary: this metrics source answers no bucket queries") {
		t.Errorf("a source without buckets: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
