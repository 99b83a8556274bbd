package metrics_test

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/perchhq/perch/metrics"
)

// The time-to-decision estimate is calibrated: from the first intervals of a steadily harmful
// canary, intervalsToFail predicts when harm is shown to within a factor of two (median over
// runs); and a canary whose harm is what detectablePercent said at that look would show it is
// caught by then about half the time, and one with twice that harm nearly always.
func TestTimeToDecision(t *testing.T) {
	runs := statRuns(t, 60)
	rng := rand.New(rand.NewPCG(31, 32))
	j := mustJudge(t, "sequential", nil)
	c := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10), Family: 2}
	const look = 10
	var ratios []float64
	for range runs {
		canary, baseline := noisyCounts(rng, 200, 600, 0.01), noisyCounts(rng, 200, 600, 0.005)
		early := j.Judge(metrics.Input{Criteria: c, Canary: prefix(canary, look), Baseline: prefix(baseline, look)})
		predicted, ok := early.Stats["intervalsToFail"]
		if early.Verdict == metrics.Fail || !ok {
			continue
		}
		full := j.Judge(metrics.Input{Criteria: c, Canary: canary, Baseline: baseline})
		if full.Verdict != metrics.Fail {
			t.Fatalf("errors ×2 not shown in 200 intervals: %s", full.Reason)
		}
		ratios = append(ratios, float64(*full.DecidedAt+1-look)/float64(predicted))
	}
	sort.Float64s(ratios)
	if len(ratios) < runs/2 {
		t.Fatalf("only %d of %d runs had a forecast", len(ratios), runs)
	}
	median := ratios[len(ratios)/2]
	t.Logf("actual/predicted intervals to fail: median %.2f over %d runs", median, len(ratios))
	if median < 0.5 || median > 2 {
		t.Errorf("actual/predicted intervals to fail: median %.2f, want within a factor of 2", median)
	}

	// What the traffic so far can show, and whether it does.
	reference := j.Judge(metrics.Input{Criteria: c, Canary: counts(30, 600, 3), Baseline: counts(30, 600, 3)})
	detectable := float64(reference.Stats["detectablePercent"])
	if !(detectable > 10) {
		t.Fatalf("detectablePercent %v, want beyond the 10%% tolerance", reference.Stats["detectablePercent"])
	}
	caught := func(percent float64) float64 {
		n := 0
		for range runs {
			canary, baseline := noisyCounts(rng, 30, 600, 0.005*(1+percent/100)), noisyCounts(rng, 30, 600, 0.005)
			if j.Judge(metrics.Input{Criteria: c, Canary: canary, Baseline: baseline}).Verdict == metrics.Fail {
				n++
			}
		}
		return float64(n) / float64(runs)
	}
	at, twice := caught(detectable), caught(2*detectable)
	t.Logf("detectable harm +%.0f%% after 30 intervals: caught %.0f%% at it, %.0f%% at twice it", detectable, at*100, twice*100)
	if at < 0.2 || at > 0.9 || twice < 0.9 {
		t.Errorf("caught %.0f%% at the detectable harm (want about half) and %.0f%% at twice it (want nearly all)", at*100, twice*100)
	}
	if _, ok := reference.Stats["intervalsToPass"]; !ok || math.IsNaN(float64(reference.Stats["intervalsToPass"])) {
		t.Errorf("a canary exactly like its baseline should have a time to pass: %v", reference.Stats)
	}
}
