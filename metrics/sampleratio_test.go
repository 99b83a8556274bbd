package metrics_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/perchhq/perch/metrics"
)

// split draws n intervals of requests split at share (canary) and 1−share, `requests` in all,
// with the error rate rate on both sides.
func split(rng *rand.Rand, n int, requests, share, rate float64) (canary, baseline metrics.Series) {
	canary = metrics.Series{Events: make([]float64, n), Total: make([]float64, n)}
	baseline = metrics.Series{Events: make([]float64, n), Total: make([]float64, n)}
	for i := range n {
		nc := binomialDraw(rng, requests, share)
		canary.Total[i], baseline.Total[i] = nc, requests-nc
		canary.Events[i], baseline.Events[i] = binomialDraw(rng, nc, rate), binomialDraw(rng, requests-nc, rate)
	}
	return canary, baseline
}

func TestSampleRatioGuard(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	errors := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: pf(0.01)}
	j := mustJudge(t, "sequential", nil)
	t.Run("split as set", func(t *testing.T) {
		c, b := split(rng, 40, 20000, 0.05, 0.001)
		r := j.Judge(metrics.Input{Criteria: errors, Canary: c, Baseline: b, Traffic: &metrics.Traffic{Weights: []float64{5}}})
		if r.Verdict != metrics.Pass || math.Abs(float64(r.Stats["canaryShare"])-0.05) > 0.002 || math.Abs(float64(r.Stats["weight"])-5) > 1e-9 {
			t.Fatalf("got %s %q, stats %v", r.Verdict, r.Reason, r.Stats)
		}
		if _, off := r.Stats["splitOffAt"]; off {
			t.Fatalf("split found off: %v", r.Stats)
		}
	})
	t.Run("misrouted holds instead of passing", func(t *testing.T) {
		c, b := split(rng, 40, 20000, 0.002, 0.001)
		in := metrics.Input{Criteria: errors, Canary: c, Baseline: b}
		if r := j.Judge(in); r.Verdict != metrics.Pass {
			t.Fatalf("without the weight: %s %q", r.Verdict, r.Reason)
		}
		in.Traffic = &metrics.Traffic{Weights: []float64{5}}
		r := j.Judge(in)
		if r.Verdict != metrics.Inconclusive || !strings.Contains(r.Reason, "canary got 0.2% of requests at weight 5%") || r.Stats["splitOffAt"] != 0 {
			t.Fatalf("got %s %q, stats %v", r.Verdict, r.Reason, r.Stats)
		}
	})
	t.Run("a canary that receives nothing", func(t *testing.T) {
		c, b := split(rng, 10, 2000, 0, 0.001)
		r := j.Judge(metrics.Input{Criteria: errors, Canary: c, Baseline: b, Traffic: &metrics.Traffic{Weights: []float64{5}}})
		if r.Verdict != metrics.Inconclusive || !strings.Contains(r.Reason, "canary got 0% of requests at weight 5%") {
			t.Fatalf("got %s %q", r.Verdict, r.Reason)
		}
	})
	t.Run("harm still rolls back", func(t *testing.T) {
		c, b := split(rng, 40, 20000, 0.2, 0.001)
		for i := range c.Events {
			c.Events[i] = math.Round(c.Total[i] * 0.05)
		}
		r := j.Judge(metrics.Input{Criteria: errors, Canary: c, Baseline: b, Traffic: &metrics.Traffic{Weights: []float64{5}}})
		if r.Verdict != metrics.Fail || !strings.Contains(r.Reason, "traffic split is off") {
			t.Fatalf("got %s %q", r.Verdict, r.Reason)
		}
	})
	t.Run("weight per interval", func(t *testing.T) {
		c1, b1 := split(rng, 20, 20000, 0.05, 0.001)
		c2, b2 := split(rng, 20, 20000, 0.25, 0.001)
		c := metrics.Series{Events: append(c1.Events, c2.Events...), Total: append(c1.Total, c2.Total...)}
		b := metrics.Series{Events: append(b1.Events, b2.Events...), Total: append(b1.Total, b2.Total...)}
		weights := append(repeat(20, 5), 25)
		r := j.Judge(metrics.Input{Criteria: errors, Canary: c, Baseline: b, Traffic: &metrics.Traffic{Weights: weights}})
		if _, off := r.Stats["splitOffAt"]; off || r.Verdict != metrics.Pass {
			t.Fatalf("weights moved with the traffic, yet %s %q", r.Verdict, r.Reason)
		}
		r = j.Judge(metrics.Input{Criteria: errors, Canary: c, Baseline: b, Traffic: &metrics.Traffic{Weights: []float64{5}}})
		if at, off := r.Stats["splitOffAt"]; !off || at < 20 {
			t.Fatalf("weight 5%% throughout, but the canary got 25%% from interval 21: %s %q", r.Verdict, r.Reason)
		}
	})
	t.Run("sample check with requests counted", func(t *testing.T) {
		lat, base := lognormalValues(rng, 30, 0.1, 0.03), lognormalValues(rng, 30, 0.1, 0.03)
		c, b := split(rng, 30, 20000, 0.002, 0)
		in := metrics.Input{Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)},
			Canary: lat, Baseline: base, Traffic: &metrics.Traffic{Weights: []float64{5}, Canary: c.Total, Baseline: b.Total}}
		if r := j.Judge(in); r.Verdict != metrics.Inconclusive || !strings.Contains(r.Reason, "at weight 5%") {
			t.Fatalf("got %s %q", r.Verdict, r.Reason)
		}
		in.Traffic.Canary, in.Traffic.Baseline = nil, nil // no requests: nothing to guard with
		if r := j.Judge(in); r.Verdict != metrics.Pass {
			t.Fatalf("got %s %q", r.Verdict, r.Reason)
		}
	})
}

// The guard's false holds stay within alpha at many seeds, with the split exactly as set and at
// the edge of the band it allows (odds ×1.5 off the weight), at small and large traffic.
func TestFalseAlarmPropertySampleRatio(t *testing.T) {
	runs := statRuns(t, 150)
	const alpha = 0.2
	j := mustJudge(t, "sequential", metrics.Options{"alpha": alpha})
	odds := func(w, factor float64) float64 { o := w / (1 - w) * factor; return o / (1 + o) }
	for _, tt := range []struct {
		name            string
		requests, share float64
	}{
		{"exact, 1% of 2,000", 2000, 0.01},
		{"exact, 50% of 100", 100, 0.5},
		{"band's low edge, 5% of 20,000", 20000, odds(0.05, 1/1.5)},
		{"band's high edge, 5% of 20,000", 20000, odds(0.05, 1.5)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(23, uint64(len(tt.name))))
			weight := 1.0
			if tt.share > 0.3 {
				weight = 50
			} else if tt.requests == 20000 {
				weight = 5
			}
			holds := 0
			for range runs {
				c, b := split(rng, 60, tt.requests, tt.share, 0.01)
				r := j.Judge(metrics.Input{Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: pf(0.01)},
					Canary: c, Baseline: b, Traffic: &metrics.Traffic{Weights: []float64{weight}}})
				if _, off := r.Stats["splitOffAt"]; off {
					holds++
				}
			}
			t.Logf("%d false holds in %d at alpha %g", holds, runs, alpha)
			if rate := float64(holds) / float64(runs); rate > alpha {
				t.Errorf("false hold rate %.3f above alpha %g", rate, alpha)
			}
		})
	}
}
