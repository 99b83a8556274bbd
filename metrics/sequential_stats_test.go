package metrics_test

import (
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/perchhq/perch/internal/judgebench"
	"github.com/perchhq/perch/metrics"
)

func scenario(t *testing.T, name string) judgebench.Scenario {
	t.Helper()
	for _, s := range append(judgebench.Scenarios(), judgebench.OracleScenarios()...) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no scenario %q", name)
	return judgebench.Scenario{}
}

// firstFail judges both checks of a simulated rollout on the whole step and returns the
// interval (0-based) at which the first check failed, or -1. The sequential verdict is final
// (TestSequentialVerdictIsFinal), so this is where looking after every interval would have
// rolled back.
func firstFail(j metrics.Judge, s judgebench.Scenario, r judgebench.Rollout) int {
	first := -1
	for _, in := range s.Inputs(r, s.Intervals) {
		if res := j.Judge(in); res.Verdict == metrics.Fail && (first < 0 || *res.DecidedAt < first) {
			first = *res.DecidedAt
		}
	}
	return first
}

// The false rollback rate of A/A rollouts, looked at every interval with two checks, stays
// within alpha in every A/A scenario of the benchmark, at the default alpha and at a large one
// where the bound is tight enough to be tested.
func TestSequentialFalseAlarmRateUnderContinuousLooks(t *testing.T) {
	runs := statRuns(t, 60)
	var safe []judgebench.Scenario
	for _, s := range append(judgebench.Scenarios(), judgebench.OracleScenarios()...) {
		if strings.HasPrefix(s.Name, "A/A") {
			safe = append(safe, s)
		}
	}
	for _, alpha := range []float64{0.01, 0.2} {
		j := mustJudge(t, "sequential", metrics.Options{"alpha": alpha})
		for _, s := range safe {
			name := s.Name
			alarms := 0
			for run := range runs {
				if firstFail(j, s, s.Simulate(run)) >= 0 {
					alarms++
				}
			}
			rate := float64(alarms) / float64(runs)
			t.Logf("alpha %g, %s: %d false rollbacks in %d", alpha, name, alarms, runs)
			if rate > alpha {
				t.Errorf("alpha %g, %s: false rollback rate %.3f above alpha", alpha, name, rate)
			}
		}
	}
}

func TestSequentialDetectsKnownShifts(t *testing.T) {
	runs := statRuns(t, 150)
	j := mustJudge(t, "sequential", nil)
	tests := []struct {
		scenario      string
		minCaught     float64
		maxMedianMins float64 // from the onset
	}{
		{"errors ×2, 1% weight", 0.99, 10},
		{"errors ×10 from minute 15, 1%", 0.99, 3},
		{"errors ×1.5, 5% weight", 0.95, 10},
		{"latency +20%, 5% weight", 0.95, 10},
		{"latency +10%, 5% weight", 0.9, 20},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			s := scenario(t, tt.scenario)
			var minutes []float64
			caught := 0
			for run := range runs {
				at := firstFail(j, s, s.Simulate(run))
				switch {
				case at >= 0 && at < s.Onset:
					t.Fatalf("run %d rolled back at interval %d, before the onset at %d", run, at, s.Onset)
				case at >= 0:
					caught++
					minutes = append(minutes, float64(at+1-s.Onset)*s.IntervalSeconds/60)
				default:
					minutes = append(minutes, math.Inf(1))
				}
			}
			sort.Float64s(minutes)
			rate, median := float64(caught)/float64(runs), minutes[runs/2]
			t.Logf("%s: caught %.1f%%, median %.1f min after onset", tt.scenario, rate*100, median)
			if rate < tt.minCaught || median > tt.maxMedianMins {
				t.Errorf("caught %.1f%% (want ≥ %.0f%%), median %.1f min (want ≤ %g)", rate*100, tt.minCaught*100, median, tt.maxMedianMins)
			}
		})
	}
}

// At the null's boundary — harm exactly at the tolerance — the bound alpha is nearly tight,
// so this is where a test that is not valid would show it: the false rollback rate must stay
// within alpha for the count test (exact) and the sample test (normal theory, winsorized).
func TestSequentialFalseAlarmRateAtTheBoundary(t *testing.T) {
	runs := statRuns(t, 150)
	errorsAt := scenario(t, "A/A steady, 5% weight")
	errorsAt.Name, errorsAt.ErrorFactor = "errors ×1.1 at a 10% tolerance", 1.1
	latencyAt := scenario(t, "latency +5%, 5% weight")
	for _, alpha := range []float64{0.05, 0.2} {
		j := mustJudge(t, "sequential", metrics.Options{"alpha": alpha})
		for _, s := range []judgebench.Scenario{errorsAt, latencyAt} {
			alarms := 0
			for run := range runs {
				if firstFail(j, s, s.Simulate(run)) >= 0 {
					alarms++
				}
			}
			rate := float64(alarms) / float64(runs)
			t.Logf("alpha %g, %s: %d rollbacks in %d", alpha, s.Name, alarms, runs)
			if rate > alpha {
				t.Errorf("alpha %g, %s: rollback rate %.3f above alpha", alpha, s.Name, rate)
			}
		}
	}
}
