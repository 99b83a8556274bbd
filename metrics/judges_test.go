package metrics_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/perchhq/perch/metrics"
)

func values(v ...float64) metrics.Series { return metrics.Series{Values: v} }

func TestNew(t *testing.T) {
	if got := metrics.Names(); !slices.Equal(got, []string{"mannwhitney", "sequential", "threshold"}) {
		t.Fatalf("Names() = %v", got)
	}
	for _, name := range metrics.Names() {
		if _, err := metrics.New(name, nil); err != nil {
			t.Errorf("New(%s, nil): %v", name, err)
		}
	}
	_, err := metrics.New("bayes", nil)
	if err == nil || err.Error() != `unknown judge "bayes" (want one of mannwhitney, sequential, threshold)` {
		t.Fatalf("unknown judge: %v", err)
	}
}

func TestThreshold(t *testing.T) {
	lower := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)}
	tests := []struct {
		name     string
		criteria metrics.Criteria
		canary   metrics.Series
		baseline metrics.Series
		want     metrics.Verdict
		reason   string
	}{
		{"too few samples", lower, values(1, 2), values(1, 2, 3), metrics.Inconclusive, "too few samples (canary 2, baseline 3; need 3 each)"},
		{"no tolerance", metrics.Criteria{Direction: metrics.LowerIsBetter}, values(1, 2, 3), values(1, 2, 3), metrics.Inconclusive, "no tolerance set"},
		{"within relative", lower, values(1.05, 1.05, 1.05), values(1, 1, 1), metrics.Pass, "+5.0%; tolerance 10%"},
		{"beyond relative", lower, values(1.2, 1.2, 1.2), values(1, 1, 1), metrics.Fail, "+20.0%"},
		{"higher is better", metrics.Criteria{Direction: metrics.HigherIsBetter, MaxDeviationPercent: pf(10)},
			values(80, 80, 80), values(100, 100, 100), metrics.Fail, "-20.0%"},
		{"absolute", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: pf(0.5)},
			values(1.4, 1.4, 1.4), values(1, 1, 1), metrics.Pass, "tolerance 0.5"},
		{"both must be exceeded", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10), MaxIncrease: pf(1)},
			values(1.5, 1.5, 1.5), values(1, 1, 1), metrics.Pass, "tolerance 10% and 1"},
		{"zero baseline, harm", lower, values(0.1, 0.1, 0.1), values(0, 0, 0), metrics.Fail, "+0.1 over a zero baseline"},
		{"zero baseline, none", lower, values(0, 0, 0), values(0, 0, 0), metrics.Pass, "+0.0%"},
		{"NaN values skipped", lower, values(math.NaN(), 1, 1, 1), values(1, 1, 1), metrics.Pass, "canary 1 vs baseline 1"},
		{"counts as rates", metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: pf(0.005)},
			metrics.Series{Events: []float64{2, 2, 2}, Total: []float64{100, 100, 100}},
			metrics.Series{Events: []float64{10, 10, 10}, Total: []float64{1000, 1000, 1000}}, metrics.Fail, "canary 0.02 vs baseline 0.01"},
	}
	j := mustJudge(t, "threshold", nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := j.Judge(metrics.Input{Criteria: tt.criteria, Canary: tt.canary, Baseline: tt.baseline})
			if r.Verdict != tt.want || !strings.Contains(r.Reason, tt.reason) {
				t.Fatalf("got %s %q, want %s containing %q", r.Verdict, r.Reason, tt.want, tt.reason)
			}
		})
	}
	if _, err := metrics.New("threshold", metrics.Options{"minSamples": 0}); err == nil {
		t.Error("minSamples 0 accepted")
	}
}

func TestMannWhitneyOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    metrics.Options
		wantErr string
	}{
		{"defaults", nil, ""},
		{"Kayenta's nested names", metrics.Options{"direction": "either", "nanStrategy": "replace", "critical": true, "mustHaveData": true,
			"outliers":   map[string]any{"strategy": "remove", "outlierFactor": 1.5},
			"effectSize": map[string]any{"measure": "cles", "allowedIncrease": 0.8, "allowedDecrease": 0.2, "criticalIncrease": 0.9, "criticalDecrease": 0.1}}, ""},
		{"flat names", metrics.Options{"effectSize.measure": "meanRatio", "tolerance": 0.1, "confLevel": 0.95}, ""},
		{"bad direction", metrics.Options{"direction": "up"}, `option direction: want one of , increase, decrease, either, got "up"`},
		{"bad nested", metrics.Options{"effectSize": map[string]any{"measure": "cohen"}}, `option effectSize.measure: want one of meanRatio, cles, got "cohen"`},
		{"confLevel 1", metrics.Options{"confLevel": 1}, "option confLevel: want a number in (0, 1), got 1"},
		{"unknown nested", metrics.Options{"outliers": map[string]any{"factor": 2}}, `unknown option "outliers.factor"`},
		{"critical not bool", metrics.Options{"critical": "yes"}, "option critical: want true or false, got yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := metrics.New("mannwhitney", tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestMannWhitneyVerdicts(t *testing.T) {
	low := []float64{9.8, 10.6, 7.8, 9.3, 8.4, 8.9, 8.3, 9.7, 11.6, 9.3, 8.2, 10.6, 13.5, 11.1, 7.0}
	high := []float64{20.9, 21.8, 19.7, 15.9, 19.5, 19.4, 22.9, 17.2, 18.7, 23.4, 24.1, 22.6, 22.0, 21.7, 20.1}
	lower := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)}
	tests := []struct {
		name     string
		opts     metrics.Options
		criteria metrics.Criteria
		canary   metrics.Series
		baseline metrics.Series
		want     metrics.Verdict
		class    string
	}{
		{"higher is harm", nil, lower, values(high...), values(low...), metrics.Fail, metrics.ClassHigh},
		{"lower is fine when lower is better", nil, lower, values(low...), values(high...), metrics.Pass, metrics.ClassPass},
		{"either direction", metrics.Options{"direction": "either"}, lower, values(low...), values(high...), metrics.Fail, metrics.ClassLow},
		{"higher is better", nil, metrics.Criteria{Direction: metrics.HigherIsBetter, MaxDeviationPercent: pf(10)},
			values(low...), values(high...), metrics.Fail, metrics.ClassLow},
		{"within the check's tolerance", nil, metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(150)},
			values(high...), values(low...), metrics.Pass, metrics.ClassPass},
		{"explicit effect size wins", metrics.Options{"effectSize": map[string]any{"allowedIncrease": 1.5}},
			metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(150)}, values(high...), values(low...), metrics.Fail, metrics.ClassHigh},
		{"no canary data", nil, lower, values(math.NaN()), values(low...), metrics.Inconclusive, metrics.ClassNodata},
		{"no canary data, critical", metrics.Options{"critical": true}, lower, values(), values(low...), metrics.Fail, metrics.ClassNodata},
		{"no canary data, must have", metrics.Options{"mustHaveData": true}, lower, values(), values(low...), metrics.Fail, metrics.ClassNodataFailMetric},
		{"replace never passes emptiness", metrics.Options{"nanStrategy": "replace"}, lower, values(), values(), metrics.Inconclusive, metrics.ClassPass},
		{"identical", nil, lower, values(1, 2, 3), values(3, 2, 1), metrics.Pass, metrics.ClassPass},
		{"counts judged as rates", nil, metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: pf(0.001)},
			metrics.Series{Events: repeat(10, 5, 6, 7), Total: repeat(10, 100)},
			metrics.Series{Events: repeat(10, 1, 2, 1), Total: repeat(10, 100)}, metrics.Fail, metrics.ClassHigh},
		{"outliers removed", metrics.Options{"outliers": map[string]any{"strategy": "remove"}}, lower,
			values(append(slices.Clone(low), 1e6)...), values(low...), metrics.Pass, metrics.ClassPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustJudge(t, "mannwhitney", tt.opts).Judge(metrics.Input{Criteria: tt.criteria, Canary: tt.canary, Baseline: tt.baseline})
			if r.Verdict != tt.want || r.Classification != tt.class {
				t.Fatalf("got %s (%s) %q, want %s (%s)", r.Verdict, r.Classification, r.Reason, tt.want, tt.class)
			}
			if r.Reason == "" || strings.Contains(r.Reason, "\n") {
				t.Fatalf("reason %q", r.Reason)
			}
		})
	}
}

// Swapping canary and baseline, and the direction with them, mirrors the verdict wherever the
// tolerance means the same both ways round (absolute, or a relative one of zero).
func TestJudgesMirrorWhenSidesSwap(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, name := range metrics.Names() {
		j := mustJudge(t, name, nil)
		seen := map[metrics.Verdict]int{}
		for run := range 40 {
			shift := []float64{0, 0.02, 0.05, 0.2}[run%4]
			a := lognormalValues(rng, 30, 1+shift, 0.05)
			b := lognormalValues(rng, 30, 1, 0.05)
			ca := noisyCounts(rng, 30, 500, 0.01*(1+10*shift))
			cb := noisyCounts(rng, 30, 500, 0.01)
			for _, pair := range []struct {
				c         metrics.Criteria
				x, y      metrics.Series
				ratioZero bool
			}{
				{c: metrics.Criteria{MaxIncrease: pf(0.03)}, x: a, y: b},
				{c: metrics.Criteria{MaxDeviationPercent: pf(0)}, x: ca, y: cb, ratioZero: true},
			} {
				if pair.ratioZero && name == "mannwhitney" {
					continue // rates per interval have ties; Kayenta's bounds are not exactly symmetric there
				}
				c := pair.c
				c.Direction = metrics.LowerIsBetter
				one := j.Judge(metrics.Input{Criteria: c, Canary: pair.x, Baseline: pair.y})
				c.Direction = metrics.HigherIsBetter
				other := j.Judge(metrics.Input{Criteria: c, Canary: pair.y, Baseline: pair.x})
				if one.Verdict != other.Verdict {
					t.Fatalf("%s run %d: %s %q, swapped %s %q", name, run, one.Verdict, one.Reason, other.Verdict, other.Reason)
				}
				seen[one.Verdict]++
			}
		}
		if seen[metrics.Pass] == 0 || seen[metrics.Fail] == 0 {
			t.Errorf("%s: verdicts %v; the cases should both pass and fail", name, seen)
		}
	}
}

// Scaling every value (seconds to milliseconds) leaves judges with relative tolerances where
// they were.
func TestJudgesIgnoreScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, name := range metrics.Names() {
		for _, scale := range []string{"auto", "linear"} {
			if name != "sequential" && scale == "linear" {
				continue
			}
			opts := metrics.Options{}
			if name == "sequential" {
				opts["scale"] = scale
			}
			j := mustJudge(t, name, opts)
			seen := map[metrics.Verdict]int{}
			for run := range 40 {
				shift := []float64{0, 0.05, 0.1, 0.3}[run%4]
				a := lognormalValues(rng, 30, 0.1*(1+shift), 0.08)
				b := lognormalValues(rng, 30, 0.1, 0.08)
				c := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(8)}
				before := j.Judge(metrics.Input{Criteria: c, Canary: a, Baseline: b})
				after := j.Judge(metrics.Input{Criteria: c, Canary: scaled(a, 1000), Baseline: scaled(b, 1000)})
				if before.Verdict != after.Verdict || before.Classification != after.Classification {
					t.Fatalf("%s (%s) run %d: %s %q, ×1000 %s %q", name, scale, run, before.Verdict, before.Reason, after.Verdict, after.Reason)
				}
				seen[before.Verdict]++
			}
			if seen[metrics.Pass] == 0 || seen[metrics.Fail] == 0 {
				t.Errorf("%s (%s): verdicts %v; the cases should both pass and fail", name, scale, seen)
			}
		}
	}
}

func scaled(s metrics.Series, by float64) metrics.Series {
	out := make([]float64, len(s.Values))
	for i, v := range s.Values {
		out[i] = v * by
	}
	return metrics.Series{Values: out}
}
