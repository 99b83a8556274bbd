package metrics_test

import (
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/perchhq/perch/metrics"
)

// statRuns is how many simulated rollouts a statistical test draws: def by default (a fifth
// of it, at least 20, under the race detector, so go test -race stays quick on two cores), or
// PERCH_STAT_RUNS for a tighter measurement:
//
//	PERCH_STAT_RUNS=5000 go test -run 'FalseAlarm|Detects|Boundary|TimeToDecision' ./metrics/
func statRuns(t testing.TB, def int) int {
	if v := os.Getenv("PERCH_STAT_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PERCH_STAT_RUNS=%q: want a whole number of runs", v)
		}
		return n
	}
	if raceEnabled {
		return max(20, def/5)
	}
	return def
}

// binomialDraw draws Binomial(n, p) by summing n Bernoulli draws for small n and by the normal
// approximation otherwise (rounded, within 0…n).
func binomialDraw(rng *rand.Rand, n, p float64) float64 {
	if n <= 200 {
		var k float64
		for range int(n) {
			if rng.Float64() < p {
				k++
			}
		}
		return k
	}
	mean := n * p
	return math.Min(n, math.Max(0, math.Round(mean+math.Sqrt(mean*(1-p))*rng.NormFloat64())))
}

// boundaryCounts draws a count check whose canary sits exactly at the null's boundary: each
// interval has its own baseline rate (bursts ×5 in one interval in ten) and traffic (±50%), and
// the canary's rate is the baseline's times ratio plus plus.
func boundaryCounts(rng *rand.Rand, n int, canaryReq, baselineReq, rate, ratio, plus float64) (metrics.Series, metrics.Series) {
	c := metrics.Series{Events: make([]float64, n), Total: make([]float64, n)}
	b := metrics.Series{Events: make([]float64, n), Total: make([]float64, n)}
	for i := range n {
		load := 0.5 + rng.Float64()
		p := rate
		if rng.Float64() < 0.1 {
			p *= 5
		}
		c.Total[i], b.Total[i] = math.Round(canaryReq*load), math.Round(baselineReq*load)
		c.Events[i] = binomialDraw(rng, c.Total[i], math.Min(1, p*ratio+plus))
		b.Events[i] = binomialDraw(rng, b.Total[i], p)
	}
	return c, b
}

// The count tests' false-alarm guarantee, where it is tightest: the canary exactly at the
// tolerance (the null's boundary), under bursts and moving traffic, at small and large traffic
// and at equal and unequal sides. At alpha 0.2 a test that is not valid shows it in a few
// hundred rollouts.
func TestFalseAlarmPropertyCounts(t *testing.T) {
	runs := statRuns(t, 100)
	const alpha = 0.2
	j := mustJudge(t, "sequential", metrics.Options{"alpha": alpha})
	tests := []struct {
		name                   string
		criteria               metrics.Criteria
		canaryReq, baselineReq float64
		rate, ratio, plus      float64
	}{
		{"absolute, equal sides, 60/interval", metrics.Criteria{MaxIncrease: pf(0.002)}, 60, 60, 0.005, 1, 0.002},
		{"absolute, equal sides, 600/interval", metrics.Criteria{MaxIncrease: pf(0.001)}, 600, 600, 0.005, 1, 0.001},
		{"absolute, small baseline", metrics.Criteria{MaxIncrease: pf(0.002)}, 600, 60, 0.005, 1, 0.002},
		{"absolute, large baseline", metrics.Criteria{MaxIncrease: pf(0.002)}, 60, 6000, 0.005, 1, 0.002},
		{"absolute, successes", metrics.Criteria{Direction: metrics.HigherIsBetter, MaxIncrease: pf(0.002)}, 300, 300, 0.99, 1, -0.002},
		{"relative, equal sides", metrics.Criteria{MaxDeviationPercent: pf(10)}, 600, 600, 0.005, 1.1, 0},
		{"relative, unequal sides", metrics.Criteria{MaxDeviationPercent: pf(10)}, 30, 3000, 0.01, 1.1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(17, uint64(len(tt.name))))
			c := tt.criteria
			if c.Direction == "" {
				c.Direction = metrics.LowerIsBetter
			}
			alarms := 0
			for range runs {
				canary, baseline := boundaryCounts(rng, 60, tt.canaryReq, tt.baselineReq, tt.rate, tt.ratio, tt.plus)
				if j.Judge(metrics.Input{Criteria: c, Canary: canary, Baseline: baseline}).Verdict == metrics.Fail {
					alarms++
				}
			}
			t.Logf("%d false rollbacks in %d at alpha %g", alarms, runs, alpha)
			if rate := float64(alarms) / float64(runs); rate > alpha {
				t.Errorf("false rollback rate %.3f above alpha %g", rate, alpha)
			}
		})
	}
}
