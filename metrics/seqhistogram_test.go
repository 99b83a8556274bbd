package metrics_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/perchhq/perch/metrics"
)

// promBounds are Prometheus' default histogram buckets (seconds).
var promBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.Inf(1)}

// histogram draws n intervals of `requests` latencies into promBounds' cumulative buckets:
// log-normal with median `median` and log-sd 0.5, and in a share `slow` of requests ×5 slower.
func histogram(rng *rand.Rand, n int, requests, median, slow float64) metrics.Series {
	s := metrics.Series{Bounds: promBounds}
	for range n {
		row := make([]float64, len(promBounds))
		for range int(requests) {
			x := median * math.Exp(0.5*rng.NormFloat64())
			if rng.Float64() < slow {
				x *= 5
			}
			for b, bound := range promBounds {
				if x <= bound {
					row[b]++
				}
			}
		}
		s.Buckets = append(s.Buckets, row)
	}
	return s
}

func TestHistogramCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	j := mustJudge(t, "sequential", nil)
	c := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(20)}
	for _, tt := range []struct {
		name          string
		median, slow  float64
		want          metrics.Verdict
		reason, bound string
	}{
		{"the same distribution", 0.1, 0, metrics.Pass, "within tolerance", ""},
		{"every quantile +30%", 0.13, 0, metrics.Fail, "harm beyond tolerance", ""},
		{"only the tail: 3% of requests ×5", 0.1, 0.03, metrics.Fail, "harm beyond tolerance", "the share slower than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			canary, baseline := histogram(rng, 40, 400, tt.median, tt.slow), histogram(rng, 40, 4000, 0.1, 0)
			r := j.Judge(metrics.Input{Criteria: c, Canary: canary, Baseline: baseline})
			if r.Verdict != tt.want || !strings.Contains(r.Reason, tt.reason) || !strings.Contains(r.Reason, tt.bound) {
				t.Fatalf("got %s %q", r.Verdict, r.Reason)
			}
			if r.Stats["bounds"] != 11 {
				t.Errorf("bounds %v, want the 11 finite ones", r.Stats["bounds"])
			}
		})
	}
	t.Run("bounds differ", func(t *testing.T) {
		canary, baseline := histogram(rng, 5, 100, 0.1, 0), histogram(rng, 5, 100, 0.1, 0)
		baseline.Bounds = append([]float64{0.001}, promBounds[1:]...)
		r := j.Judge(metrics.Input{Criteria: c, Canary: canary, Baseline: baseline})
		if r.Verdict != metrics.Inconclusive || !strings.Contains(r.Reason, "different bucket bounds") {
			t.Fatalf("got %s %q", r.Verdict, r.Reason)
		}
	})
	t.Run("a histogram against samples", func(t *testing.T) {
		r := j.Judge(metrics.Input{Criteria: c, Canary: histogram(rng, 5, 100, 0.1, 0), Baseline: values(1, 2, 3)})
		if r.Verdict != metrics.Inconclusive || !strings.Contains(r.Reason, "one a histogram") {
			t.Fatalf("got %s %q", r.Verdict, r.Reason)
		}
	})
	t.Run("a verdict once reached is kept", func(t *testing.T) {
		canary, baseline := histogram(rng, 30, 300, 0.1, 0.03), histogram(rng, 30, 3000, 0.1, 0)
		checkFinal(t, j, c, canary, baseline)
	})
}

// The histogram check's false rollbacks stay within alpha at many seeds, the canary's
// distribution the same as the baseline's, at small and larger traffic.
func TestFalseAlarmPropertyHistogram(t *testing.T) {
	runs := statRuns(t, 60)
	const alpha = 0.2
	j := mustJudge(t, "sequential", metrics.Options{"alpha": alpha})
	for _, requests := range []float64{20, 200} {
		rng := rand.New(rand.NewPCG(53, uint64(requests)))
		alarms := 0
		for range runs {
			canary, baseline := histogram(rng, 30, requests, 0.1, 0), histogram(rng, 30, 10*requests, 0.1, 0)
			r := j.Judge(metrics.Input{Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(0)},
				Canary: canary, Baseline: baseline})
			if r.Verdict == metrics.Fail {
				alarms++
			}
		}
		t.Logf("%g requests an interval: %d false rollbacks in %d at alpha %g", requests, alarms, runs, alpha)
		if rate := float64(alarms) / float64(runs); rate > alpha {
			t.Errorf("%g requests an interval: false rollback rate %.3f above alpha %g", requests, rate, alpha)
		}
	}
}
