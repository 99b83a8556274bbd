package engine_test

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// histogramWorld answers builtin queries as perch's proxy would, latency as a histogram: each
// interval 2,000 requests split by the weight, log-normal latencies (median 50 ms, log-sd
// 0.5; the canary's median canaryMedian), counted at Prometheus' default bounds.
type histogramWorld struct {
	mu           sync.Mutex
	weight       int
	canaryMedian float64
	asked        int // histogram queries answered
}

func (w *histogramWorld) SetWeight(_ context.Context, percent int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.weight = percent
	return nil
}

func (w *histogramWorld) Weight(context.Context) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.weight, nil
}

func (w *histogramWorld) requests(version string) float64 {
	share := float64(w.weight) / 100
	if version == metrics.VersionStable {
		share = 1 - share
	}
	return math.Round(2000 * share)
}

func (w *histogramWorld) Samples(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	measure, version, err := metrics.ParseBuiltinQuery(q)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	v := 0.0
	switch measure {
	case metrics.MeasureRequests:
		v = w.requests(version)
	case metrics.MeasureErrors:
	default:
		return nil, metrics.ErrNoData
	}
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: v})
	}
	return out, nil
}

var defaultBounds = metrics.Bounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.Inf(1)}

func (w *histogramWorld) Histogram(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) (metrics.Histogram, error) {
	measure, version, err := metrics.ParseBuiltinQuery(q)
	if err != nil || measure != metrics.MeasureLatencyHistogram {
		return metrics.Histogram{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.asked++
	median := 0.05
	if version == metrics.VersionCanary {
		median = w.canaryMedian
	}
	n := w.requests(version)
	h := metrics.Histogram{Bounds: defaultBounds}
	for t := start; !t.After(end); t = t.Add(step) {
		row := make([]float64, len(defaultBounds))
		for b, bound := range defaultBounds {
			// The expected count at or below the bound, as a normal CDF of log latency.
			row[b] = math.Round(n * 0.5 * math.Erfc(-math.Log(bound/median)/(0.5*math.Sqrt2)))
		}
		h.Points = append(h.Points, metrics.HistogramPoint{Time: t, Counts: row})
	}
	return h, nil
}

const histogramRollout = `name: distributions
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {builtin: {}}
analysis: {interval: 30s, stabilization: 30s}
checks:
  - {name: latency, builtin: latency_histogram, maxIncrease: 0.05}
steps:
  - {setWeight: 10, analyze: 10m}
`

// TestHistogramCheck: the engine passes a histogram check's buckets to the judge, which
// promotes a canary with the baseline's latency distribution and rolls back one whose every
// quantile is 40% slower, saying at which bound.
func TestHistogramCheck(t *testing.T) {
	for _, tt := range []struct {
		name   string
		median float64
		want   engine.Outcome
		reason string
	}{
		{"the same distribution", 0.05, engine.OutcomePromoted, "within tolerance"},
		{"40% slower", 0.07, engine.OutcomeRolledBack, "harm beyond tolerance"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rollout, err := spec.Parse("distributions.yaml", []byte(histogramRollout))
				if err != nil {
					t.Fatal(err)
				}
				w := &histogramWorld{canaryMedian: tt.median}
				j := &memJournal{}
				eng, err := engine.New(engine.Config{Spec: rollout, Router: w, Source: w, Journal: j})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				defer cancel()
				out, err := eng.Run(ctx)
				if err != nil || out != tt.want {
					t.Fatalf("ended %s (%v), want %s; phase %s", out, err, tt.want, eng.Snapshot().Phase)
				}
				var last *engine.CheckResult
				for _, ev := range j.all() {
					if ev.Type == engine.EventAnalysis {
						last = &ev.Checks[0]
					}
				}
				if last == nil || !strings.Contains(last.Reason, tt.reason) || !strings.Contains(last.Reason, "the share slower than") {
					t.Fatalf("last look %+v: want %q at a bound", last, tt.reason)
				}
				if !last.LastCanary.Valid() || !last.LastBaseline.Valid() || last.Stats["bounds"] != 11 {
					t.Errorf("last look %+v: want the shares slower than the bound shown, of 11 bounds", last)
				}
				if w.asked == 0 {
					t.Error("the source was never asked for a histogram")
				}
			})
		})
	}
}

// A histogram check needs a source that answers bucket queries.
func TestHistogramCheckNeedsAHistogramSource(t *testing.T) {
	rollout, err := spec.Parse("distributions.yaml", []byte(histogramRollout))
	if err != nil {
		t.Fatal(err)
	}
	w := &builtinWorld{}
	_, err = engine.New(engine.Config{Spec: rollout, Router: w, Source: w})
	if err == nil || !strings.Contains(err.Error(), `check "latency" is a histogram check, and the metrics source answers no bucket queries`) {
		t.Fatalf("New: %v", err)
	}
}
