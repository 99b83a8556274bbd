package metrics_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/perchhq/perch/metrics"
)

func pf(v float64) *float64 { return &v }

func mustJudge(t testing.TB, name string, opts metrics.Options) metrics.Judge {
	t.Helper()
	j, err := metrics.New(name, opts)
	if err != nil {
		t.Fatalf("New(%s, %v): %v", name, opts, err)
	}
	return j
}

// counts builds a count series of n intervals with the given requests and events per interval.
func counts(n int, requests, events float64) metrics.Series {
	s := metrics.Series{Events: make([]float64, n), Total: make([]float64, n)}
	for i := range n {
		s.Events[i], s.Total[i] = events, requests
	}
	return s
}

// noisyCounts draws n intervals of Poisson(requests) requests failing with probability rate.
func noisyCounts(rng *rand.Rand, n int, requests, rate float64) metrics.Series {
	s := metrics.Series{Events: make([]float64, n), Total: make([]float64, n)}
	for i := range n {
		total := math.Round(requests + math.Sqrt(requests)*rng.NormFloat64())
		var ev float64
		for range int(total) {
			if rng.Float64() < rate {
				ev++
			}
		}
		s.Events[i], s.Total[i] = ev, total
	}
	return s
}

// lognormalValues draws n values exp(N(log(median), sd²)).
func lognormalValues(rng *rand.Rand, n int, median, sd float64) metrics.Series {
	v := make([]float64, n)
	for i := range v {
		v[i] = median * math.Exp(sd*rng.NormFloat64())
	}
	return metrics.Series{Values: v}
}

func TestSequentialOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    metrics.Options
		wantErr string
	}{
		{"defaults", nil, ""},
		{"all set", metrics.Options{"alpha": 0.05, "beta": 0.1, "scale": "log", "tau": 2}, ""},
		{"alpha zero", metrics.Options{"alpha": 0}, "option alpha: want a number in (0, 0.5), got 0"},
		{"alpha text", metrics.Options{"alpha": "low"}, "option alpha: want a number, got low"},
		{"beta too big", metrics.Options{"beta": 0.9}, "option beta: want a number in (0, 0.5), got 0.9"},
		{"scale unknown", metrics.Options{"scale": "cubic"}, `option scale: want one of auto, log, linear, got "cubic"`},
		{"tau negative", metrics.Options{"tau": -1}, "option tau: want a number in (0, 100), got -1"},
		{"unknown option", metrics.Options{"confLevel": 0.9}, `unknown option "confLevel" (want one of alpha, beta, scale, tau)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := metrics.New("sequential", tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSequentialCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name        string
		criteria    metrics.Criteria
		canary      metrics.Series
		baseline    metrics.Series
		want        metrics.Verdict
		reason      string
		wantDecided bool
	}{
		{"no tolerance", metrics.Criteria{Direction: metrics.LowerIsBetter},
			counts(10, 100, 1), counts(10, 1000, 10), metrics.Inconclusive, "no tolerance set", false},
		{"mixed kinds", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: pf(0.01)},
			counts(10, 100, 1), metrics.Series{Values: []float64{1, 2}}, metrics.Inconclusive, "differ in kind", false},
		{"nothing yet", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)},
			counts(0, 0, 0), counts(3, 0, 0), metrics.Inconclusive, "no interval with traffic on both sides", false},
		{"errors tripled", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)},
			counts(20, 600, 18), counts(20, 60000, 600), metrics.Fail, "harm beyond tolerance", true},
		{"same rate, lots of traffic", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)},
			counts(40, 20000, 200), counts(40, 20000, 200), metrics.Pass, "within tolerance", true},
		{"too little to tell", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)},
			counts(5, 30, 0), counts(5, 3000, 30), metrics.Inconclusive, "not decided after 5 interval(s)", false},
		{"no events, relative tolerance", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)},
			counts(30, 1000, 0), counts(30, 10000, 0), metrics.Inconclusive, "no events in either version yet", false},
		{"no events, absolute tolerance", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: pf(0.005)},
			counts(30, 1000, 0), counts(30, 10000, 0), metrics.Pass, "within tolerance", true},
		{"absolute harm", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: pf(0.005)},
			counts(20, 1000, 30), counts(20, 10000, 100), metrics.Fail, "harm beyond tolerance", true},
		{"zero tolerance is a ratio of 1", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: pf(0)},
			counts(20, 1000, 20), counts(20, 10000, 100), metrics.Fail, "harm beyond tolerance", true},
		{"both tolerances, only one exceeded", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10), MaxIncrease: pf(0.05)},
			counts(40, 2000, 40), counts(40, 20000, 200), metrics.Pass, "within tolerance", true},
		{"successes fall", metrics.Criteria{Direction: metrics.HigherIsBetter, MaxDeviationPercent: pf(5)},
			counts(20, 1000, 800), counts(20, 10000, 9900), metrics.Fail, "harm beyond tolerance", true},
		{"successes hold", metrics.Criteria{Direction: metrics.HigherIsBetter, MaxDeviationPercent: pf(5)},
			counts(20, 1000, 990), counts(20, 10000, 9900), metrics.Pass, "within tolerance", true},
		{"a decrease of 100% is no harm", metrics.Criteria{Direction: metrics.HigherIsBetter, MaxDeviationPercent: pf(100)},
			counts(2, 100, 0), counts(2, 100, 90), metrics.Pass, "within tolerance", true},
		{"noisy A/A at low traffic holds", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10), Family: 2},
			noisyCounts(rng, 20, 30, 0.01), noisyCounts(rng, 20, 3000, 0.01), metrics.Inconclusive, "not decided", false},
	}
	j := mustJudge(t, "sequential", nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := j.Judge(metrics.Input{Criteria: tt.criteria, Canary: tt.canary, Baseline: tt.baseline})
			if r.Verdict != tt.want || !strings.Contains(r.Reason, tt.reason) {
				t.Fatalf("got %s %q, want %s containing %q", r.Verdict, r.Reason, tt.want, tt.reason)
			}
			if (r.DecidedAt != nil) != tt.wantDecided {
				t.Fatalf("decidedAt %v, want set: %v", r.DecidedAt, tt.wantDecided)
			}
			if r.Verdict == metrics.Fail && (r.PValue == nil || float64(*r.PValue) > float64(r.Stats["alpha"])) {
				t.Fatalf("fail with p %v above alpha %v", r.PValue, r.Stats["alpha"])
			}
			if strings.Contains(r.Reason, "\n") {
				t.Fatalf("reason spans lines: %q", r.Reason)
			}
		})
	}
}

func TestSequentialSkipsBadIntervals(t *testing.T) {
	canary := counts(30, 600, 18)
	baseline := counts(30, 60000, 600)
	canary.Total[3] = math.NaN()
	canary.Events[4] = 700 // more events than requests
	baseline.Total[5] = 0
	r := mustJudge(t, "sequential", nil).Judge(metrics.Input{
		Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)},
		Canary:   canary, Baseline: baseline})
	if r.Verdict != metrics.Fail || r.Stats["intervals"] != 27 {
		t.Fatalf("got %s with %v intervals used, want fail on 27: %s", r.Verdict, r.Stats["intervals"], r.Reason)
	}
	if got := float64(r.Canary); math.Abs(got-0.03) > 1e-12 {
		t.Fatalf("canary rate %v, want 0.03 over the good intervals", got)
	}
}

func TestSequentialSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		name     string
		criteria metrics.Criteria
		opts     metrics.Options
		canary   metrics.Series
		baseline metrics.Series
		want     metrics.Verdict
		reason   string
	}{
		{"latency ×1.5", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)}, nil,
			lognormalValues(rng, 30, 0.15, 0.05), lognormalValues(rng, 30, 0.1, 0.05), metrics.Fail, "on log values"},
		{"latency the same", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)}, nil,
			lognormalValues(rng, 40, 0.1, 0.03), lognormalValues(rng, 40, 0.1, 0.03), metrics.Pass, "within tolerance"},
		{"four intervals are too few", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)}, nil,
			lognormalValues(rng, 4, 0.5, 0.01), lognormalValues(rng, 4, 0.1, 0.01), metrics.Inconclusive, "fewer than 5 intervals"},
		{"zeros force the linear scale", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)}, nil,
			metrics.Series{Values: repeat(30, 0, 3)}, metrics.Series{Values: repeat(30, 0, 1)}, metrics.Fail, "harm beyond tolerance"},
		{"absolute tolerance", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: pf(0.02)}, nil,
			lognormalValues(rng, 30, 0.2, 0.05), lognormalValues(rng, 30, 0.1, 0.05), metrics.Fail, "tolerance +0.02)"},
		{"throughput drops", metrics.Criteria{Direction: metrics.HigherIsBetter, MaxDeviationPercent: pf(10)}, nil,
			lognormalValues(rng, 30, 50, 0.05), lognormalValues(rng, 30, 100, 0.05), metrics.Fail, "tolerance −10% on log values"},
		{"throughput rises", metrics.Criteria{Direction: metrics.HigherIsBetter, MaxDeviationPercent: pf(10)}, nil,
			lognormalValues(rng, 30, 150, 0.05), lognormalValues(rng, 30, 100, 0.05), metrics.Pass, "within tolerance"},
		{"NaN intervals are skipped", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)}, nil,
			withNaN(lognormalValues(rng, 30, 0.2, 0.05)), lognormalValues(rng, 30, 0.1, 0.05), metrics.Fail, "harm beyond tolerance"},
		{"linear scale by option", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)}, metrics.Options{"scale": "linear"},
			lognormalValues(rng, 30, 0.2, 0.05), lognormalValues(rng, 30, 0.1, 0.05), metrics.Fail, "tolerance +10%)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustJudge(t, "sequential", tt.opts).Judge(metrics.Input{Criteria: tt.criteria, Canary: tt.canary, Baseline: tt.baseline})
			if r.Verdict != tt.want || !strings.Contains(r.Reason, tt.reason) {
				t.Fatalf("got %s %q, want %s containing %q", r.Verdict, r.Reason, tt.want, tt.reason)
			}
		})
	}
}

func repeat(n int, values ...float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = values[i%len(values)]
	}
	return out
}

func withNaN(s metrics.Series) metrics.Series {
	for i := 0; i < len(s.Values); i += 4 {
		s.Values[i] = math.NaN()
	}
	return s
}

// An outlier minute on one side must not hide a clear shift for the rest of the step.
func TestSequentialSamplesResistOutliers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	canary := lognormalValues(rng, 40, 0.12, 0.03)
	baseline := lognormalValues(rng, 40, 0.1, 0.03)
	canary.Values[2] *= 0.05 // a sudden dip in the first few intervals
	baseline.Values[20] *= 20
	r := mustJudge(t, "sequential", nil).Judge(metrics.Input{
		Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(5)},
		Canary:   canary, Baseline: baseline})
	if r.Verdict != metrics.Fail {
		t.Fatalf("got %s: %s", r.Verdict, r.Reason)
	}
}

func TestSequentialFamilySharesAlpha(t *testing.T) {
	in := metrics.Input{
		Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)},
		Canary:   counts(12, 600, 12), Baseline: counts(12, 60000, 600),
	}
	j := mustJudge(t, "sequential", nil)
	alone := j.Judge(in)
	in.Family = 4
	shared := j.Judge(in)
	if alone.Stats["alpha"] != 0.01 || shared.Stats["alpha"] != 0.0025 {
		t.Fatalf("alpha %v alone, %v in a family of 4; want 0.01 and 0.0025", alone.Stats["alpha"], shared.Stats["alpha"])
	}
	if *alone.PValue != *shared.PValue {
		t.Fatalf("the evidence must not depend on the family: %v vs %v", *alone.PValue, *shared.PValue)
	}
	if alone.Verdict != metrics.Fail || shared.Verdict == metrics.Fail && *shared.DecidedAt <= *alone.DecidedAt {
		t.Fatalf("a family must need more evidence: alone %s at %v, shared %s at %v", alone.Verdict, alone.DecidedAt, shared.Verdict, shared.DecidedAt)
	}
}

// Looking again with more data never undoes a fail, and never moves when a verdict was reached.
func TestSequentialVerdictIsFinal(t *testing.T) {
	j := mustJudge(t, "sequential", nil)
	rng := rand.New(rand.NewPCG(7, 8))
	for run := range 60 {
		factor := []float64{1, 1.3, 2, 4}[run%4]
		canary := noisyCounts(rng, 40, 300, 0.02*factor)
		baseline := noisyCounts(rng, 40, 3000, 0.02)
		checkFinal(t, j, metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10), Family: 2}, canary, baseline)
		lat := lognormalValues(rng, 40, 0.1*factor, 0.1)
		base := lognormalValues(rng, 40, 0.1, 0.1)
		checkFinal(t, j, metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(5), Family: 2}, lat, base)
	}
}

func prefix(s metrics.Series, k int) metrics.Series {
	switch {
	case s.IsCounts():
		return metrics.Series{Events: s.Events[:k], Total: s.Total[:k]}
	case s.IsHistogram():
		return metrics.Series{Buckets: s.Buckets[:k], Bounds: s.Bounds}
	}
	return metrics.Series{Values: s.Values[:k]}
}

func checkFinal(t *testing.T, j metrics.Judge, c metrics.Criteria, canary, baseline metrics.Series) {
	t.Helper()
	var final *metrics.Result
	for k := 1; k <= canary.Len(); k++ {
		r := j.Judge(metrics.Input{Criteria: c, Canary: prefix(canary, k), Baseline: prefix(baseline, k)})
		again := j.Judge(metrics.Input{Criteria: c, Canary: prefix(canary, k), Baseline: prefix(baseline, k)})
		if r.Reason != again.Reason {
			t.Fatalf("not deterministic at %d: %q vs %q", k, r.Reason, again.Reason)
		}
		if r.Verdict != metrics.Inconclusive && (r.DecidedAt == nil || *r.DecidedAt >= k) {
			t.Fatalf("%s at look %d decided at %v", r.Verdict, k, r.DecidedAt)
		}
		if final != nil {
			switch {
			case final.Verdict == metrics.Fail && (r.Verdict != metrics.Fail || *r.DecidedAt != *final.DecidedAt):
				t.Fatalf("fail at %d became %s at %v on look %d", *final.DecidedAt, r.Verdict, r.DecidedAt, k)
			case final.Verdict == metrics.Pass && r.Verdict == metrics.Pass && *r.DecidedAt != *final.DecidedAt:
				t.Fatalf("pass at %d moved to %d on look %d", *final.DecidedAt, *r.DecidedAt, k)
			case final.Verdict == metrics.Pass && r.Verdict == metrics.Inconclusive:
				t.Fatalf("pass at %d became inconclusive on look %d", *final.DecidedAt, k)
			}
		}
		if r.Verdict != metrics.Inconclusive {
			final = &r
		}
	}
}
