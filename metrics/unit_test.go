package metrics_test

import (
	"math"
	"strings"
	"testing"

	"github.com/perchhq/perch/metrics"
)

func TestUnitWritesValues(t *testing.T) {
	inc, dev := 0.005, 15.0
	ms, rate, pct, rps, plain := metrics.Unit{Name: "s"}, metrics.Unit{Name: "%", Rate: true}, metrics.Unit{Name: "%"},
		metrics.Unit{Name: "req/s"}, metrics.Unit{}
	for _, c := range []struct{ got, want string }{
		{ms.Value(0.05513), "55.13 ms"}, {ms.Value(1.5), "1.5 s"}, {ms.Value(0), "0 s"}, {ms.Diff(-0.0062), "-6.2 ms"},
		{rate.Value(0.0913), "9.13%"}, {rate.Diff(0.00143), "+0.143pp"}, {rate.Change(0.0913, 0), "+9.13pp over a zero baseline"},
		{pct.Value(45), "45%"}, {pct.Diff(5), "+5pp"}, {rps.Value(412), "412 req/s"}, {rps.Diff(-3), "-3 req/s"},
		{plain.Value(0.0913), "0.0913"}, {plain.Change(0.1, 0), "+0.1 over a zero baseline"}, {ms.Value(math.NaN()), "n/a"},
		{rate.Tolerance(metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: &inc}), "+0.5pp"},
		{ms.Tolerance(metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: &dev, MaxIncrease: &inc}), "+15% and +5 ms"},
		{rps.Tolerance(metrics.Criteria{Direction: metrics.HigherIsBetter, MaxDeviationPercent: &dev}), "−15%"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestReasonsInTheCheckUnit: with Criteria.Unit set every judge writes its reason's values in
// it — no bare fraction for a latency in seconds or an error rate.
func TestReasonsInTheCheckUnit(t *testing.T) {
	dev, inc := 15.0, 0.05
	latency := metrics.Input{Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: &dev, Unit: "s"},
		Canary: values(0.055, 0.056, 0.054, 0.055, 0.056, 0.055), Baseline: values(0.061, 0.062, 0.060, 0.061, 0.061, 0.062)}
	errors := metrics.Input{Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: &inc, Unit: "%"},
		Canary:   metrics.Series{Events: []float64{9, 10, 9}, Total: []float64{100, 100, 100}},
		Baseline: metrics.Series{Events: []float64{0, 0, 0}, Total: []float64{1000, 1000, 1000}}}
	for _, name := range metrics.Names() {
		j := mustJudge(t, name, nil)
		for _, c := range []struct {
			in   metrics.Input
			want []string
			not  []string
		}{
			{latency, []string{" ms vs baseline ", " ms"}, []string{"0.055", "0.061"}},
			{errors, []string{"% vs baseline 0%"}, []string{"0.09", "+0.0", "tolerance 0.05"}},
		} {
			r := j.Judge(c.in)
			for _, w := range c.want {
				if !strings.Contains(r.Reason, w) {
					t.Errorf("%s: reason %q lacks %q", name, r.Reason, w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(r.Reason, n) {
					t.Errorf("%s: reason %q holds %q", name, r.Reason, n)
				}
			}
		}
	}
}
