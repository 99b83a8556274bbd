package judgebench

import (
	"math"
	"strings"
	"testing"

	"github.com/perchhq/perch/metrics"
)

func find(t testing.TB, name string) Scenario {
	for _, s := range Scenarios() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no scenario %q", name)
	return Scenario{}
}

// The simulation must produce the truth it claims, or the table means nothing.
func TestSimulationMatchesItsTruth(t *testing.T) {
	s := find(t, "errors ×2, 1% weight")
	var ce, cn, se, sn, lat, base float64
	runs := 200
	for run := range runs {
		r := s.Simulate(run)
		for i := range s.Intervals {
			ce, cn, se, sn = ce+r.CanaryErrors[i], cn+r.CanaryRequests[i], se+r.StableErrors[i], sn+r.StableRequests[i]
			lat += math.Log(r.CanaryLatency[i])
			base += math.Log(r.StableLatency[i])
		}
	}
	n := float64(runs * s.Intervals)
	checks := []struct {
		name      string
		got, want float64
		tolerance float64
	}{
		{"canary requests per interval", cn / n, 10 * 30, 0.01},
		{"stable requests per interval", sn / n, 990 * 30, 0.01},
		{"stable error rate", se / sn, 0.01, 0.02},
		{"canary error rate", ce / cn, 0.02, 0.02},
		{"canary/stable latency (geometric)", math.Exp((lat - base) / n), 1, 0.02},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > c.tolerance*c.want {
			t.Errorf("%s = %.5g, want %.5g ± %g%%", c.name, c.got, c.want, c.tolerance*100)
		}
	}
	if a, b := s.Simulate(7), s.Simulate(7); a.CanaryErrors[10] != b.CanaryErrors[10] || a.CanaryLatency[5] != b.CanaryLatency[5] {
		t.Error("the same run must simulate the same rollout")
	}
}

func TestFaultStartsAtOnset(t *testing.T) {
	s := find(t, "errors ×10 from minute 15, 1%")
	var before, after [2]float64
	for run := range 100 {
		r := s.Simulate(run)
		for i := range s.Intervals {
			half := &before
			if i >= s.Onset {
				half = &after
			}
			half[0] += r.CanaryErrors[i]
			half[1] += r.CanaryRequests[i]
		}
	}
	if rb, ra := before[0]/before[1], after[0]/after[1]; math.Abs(rb-0.01) > 0.001 || math.Abs(ra-0.1) > 0.005 {
		t.Fatalf("canary error rate %.4f before onset, %.4f after; want 0.01 and 0.1", rb, ra)
	}
}

func TestSummaryAndTable(t *testing.T) {
	s := find(t, "errors ×10 from minute 15, 1%")
	out := []Outcome{{RolledBackAt: 32}, {RolledBackAt: 10}, {Promoted: true}, {}}
	sum := Summarize("x", s, out)
	if sum.RolledBack != 1 || sum.Early != 1 || sum.Promoted != 1 || sum.TTD[0] != 1 || !math.IsInf(sum.TTD[3], 1) {
		t.Fatalf("summary %+v", sum)
	}
	var b strings.Builder
	if err := WriteTable(&b, []Summary{sum}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| errors ×10 from minute 15, 1% | harmful | x | 25% (4.6%–70%); 25% before onset | 25% | — | — |") {
		t.Fatalf("table:\n%s", b.String())
	}
	if p := wilson(0, 1000); p.Rate != 0 || math.Abs(p.High-0.00383) > 1e-4 {
		t.Errorf("wilson(0, 1000) = %+v", p)
	}
	if q := quantileOf([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5); q.Value != 5 || q.Low != 2 || q.High != 9 {
		t.Errorf("median of 1..10 = %+v", q)
	}
}

// BenchmarkJudge times one judgement of each judge on a 30-minute window (60 intervals), the
// most an engine look asks of it in the benchmark's rollouts: a count check and a latency check.
//
//	go test -run XXX -bench Judge ./internal/judgebench/
func BenchmarkJudge(b *testing.B) {
	s := find(b, "A/A steady, 5% weight")
	r := s.Simulate(0)
	tolerance := 10.0
	inputs := map[string]metrics.Input{
		"counts": {Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: &tolerance, Family: 2},
			Canary:   metrics.Series{Events: r.CanaryErrors, Total: r.CanaryRequests},
			Baseline: metrics.Series{Events: r.StableErrors, Total: r.StableRequests}},
		"latency": {Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: &tolerance, Family: 2},
			Canary: metrics.Series{Values: r.CanaryLatency}, Baseline: metrics.Series{Values: r.StableLatency}},
	}
	for _, name := range metrics.Names() {
		j, err := metrics.New(name, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, kind := range []string{"counts", "latency"} {
			b.Run(name+"/"+kind, func(b *testing.B) {
				for b.Loop() {
					j.Judge(inputs[kind])
				}
			})
		}
	}
}

// Judging a sequential check once on the whole window comes to the outcome of judging it at
// every look, as the engine does: what lets the benchmark judge it once.
func TestPlayFinalMatchesEveryLook(t *testing.T) {
	j, err := metrics.New("sequential", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"errors ×10 from minute 30", "latency +20%, tolerance +5%", "A/A"} {
		s := findIn(t, OracleScenarios(), name)
		s.Intervals = 40
		for run := range 5 {
			r := s.Simulate(run)
			if every, once := play(j, s, r), playFinal(j, s, r); every != once {
				t.Errorf("%s run %d: every look %+v, once %+v", name, run, every, once)
			}
		}
	}
}

// The oracle's evidence grows under its alternative and shrinks at the null's boundary: it is
// the likelihood ratio of the scenario's truth.
func TestOracleIsTheTruthsLikelihoodRatio(t *testing.T) {
	for _, name := range []string{"errors ×1.5, tolerance +10%", "errors ×2, maxIncrease 0.1 pp", "latency +10%, heavy tails"} {
		harmful := findIn(t, OracleScenarios(), name)
		boundary := harmful
		boundary.Name += " at the boundary"
		switch {
		case harmful.ErrorFactor > 1 && harmful.Errors != nil:
			boundary.ErrorFactor = 1 + *harmful.Errors.MaxIncrease/harmful.ErrorRate
		case harmful.ErrorFactor > 1:
			boundary.ErrorFactor = 1.1
		default:
			boundary.LatencyFactor = 1.05
		}
		mean := func(s Scenario, llr func(Scenario, Rollout) func(int) float64) float64 {
			var sum float64
			for run := range 50 {
				r := s.Simulate(run)
				f := llr(harmful, r) // the harmful scenario's test, on either scenario's data
				for i := range s.Intervals {
					sum += f(i)
				}
			}
			return sum / 50
		}
		llr := func(s Scenario, r Rollout) func(int) float64 {
			if s.ErrorFactor > 1 {
				return s.errorsLLR(r)
			}
			return s.latencyLLR(r)
		}
		if h, b := mean(harmful, llr), mean(boundary, llr); h <= 0 || b >= 0 {
			t.Errorf("%s: mean log likelihood ratio %.3g under the truth, %.3g at the boundary", name, h, b)
		}
	}
}

func findIn(t testing.TB, list []Scenario, name string) Scenario {
	t.Helper()
	for _, s := range list {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no scenario %q", name)
	return Scenario{}
}
