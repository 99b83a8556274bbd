package metrics_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/perchhq/perch/metrics"
)

// aaNoise is a value around level with ±10% noise, roughly normal: the mean of four uniform
// draws, each rounded to a thousandth (a quantised noise, as a source that rounds gives).
func aaNoise(rng *rand.Rand, level float64) float64 {
	var noise float64
	for range 4 {
		noise += float64(rng.IntN(2001))/1000 - 1
	}
	return level * (1 + 0.1*noise/4)
}

// A long window of a healthy canary far inside a wide tolerance (+0.2% against +20%, with 4%
// noise): every d is several standard deviations below the tolerance, so the winsorized d's
// are nearly all the same and the test's variance all but vanishes. The harm evidence must
// still fall, not climb to a false rollback after a few hundred intervals (as it did when the
// Student t tail underflowed).
func TestSequentialLongWindowAA(t *testing.T) {
	runs := statRuns(t, 40)
	const alpha = 0.01
	j := mustJudge(t, "sequential", metrics.Options{"alpha": alpha})
	tol := 20.0
	fails := 0
	for run := range runs {
		rng := rand.New(rand.NewPCG(uint64(run), 7))
		const n = 900
		c, b := metrics.Series{Values: make([]float64, n)}, metrics.Series{Values: make([]float64, n)}
		for i := range n {
			c.Values[i], b.Values[i] = aaNoise(rng, 0.05), aaNoise(rng, 0.05)
		}
		r := j.Judge(metrics.Input{Criteria: metrics.Criteria{MaxDeviationPercent: &tol, Family: 3}, Canary: c, Baseline: b})
		if r.Verdict == metrics.Fail {
			fails++
			if fails == 1 {
				t.Errorf("run %d: false rollback at interval %d: %s", run, *r.DecidedAt, r.Reason)
			}
		}
	}
	if fails > 0 {
		t.Errorf("%d of %d healthy long windows rolled back", fails, runs)
	}
}

// Identical values on both sides (a throughput both versions serve alike, a quantile that sits
// in the same bucket) give the same d at every interval: no spread at all. That is evidence of
// safety, never of harm, however long the window.
func TestSequentialConstantValuesNeverFail(t *testing.T) {
	j := mustJudge(t, "sequential", nil)
	tol := 20.0
	for _, n := range []int{10, 100, 300, 1000} {
		v := make([]float64, n)
		for i := range v {
			v[i] = 100
		}
		r := j.Judge(metrics.Input{Criteria: metrics.Criteria{MaxDeviationPercent: &tol}, Canary: metrics.Series{Values: v}, Baseline: metrics.Series{Values: v}})
		if r.Verdict == metrics.Fail {
			t.Errorf("%d intervals of identical values: %s", n, r.Reason)
		}
		if p := float64(*r.PValue); !(p == 1 || math.IsNaN(p)) && n > 10 && p < 0.5 {
			t.Errorf("%d intervals of identical values: harm p %g, want no evidence of harm", n, p)
		}
	}
}

// What one look of the sequential judge costs on a sample check as the step's window grows:
// the judge replays the whole window at every look, so this is the cost of a look at interval
// n. A healthy canary (as cmd/fleetbench's source gives) and one at the tolerance, where the
// runs the e-detector starts mid-window have evidence to weigh.
//
//	go test -run XXX -bench SequentialLook ./metrics/
func BenchmarkSequentialLook(b *testing.B) {
	j := mustJudge(b, "sequential", nil)
	tol := 20.0
	for _, shift := range []struct {
		name  string
		ratio float64
	}{{"healthy", 1}, {"at-tolerance", 1.2}} {
		for _, n := range []int{60, 300, 900} {
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			c, bl := metrics.Series{Values: make([]float64, n)}, metrics.Series{Values: make([]float64, n)}
			for i := range n {
				c.Values[i], bl.Values[i] = aaNoise(rng, 0.05*shift.ratio), aaNoise(rng, 0.05)
			}
			in := metrics.Input{Criteria: metrics.Criteria{MaxDeviationPercent: &tol, Family: 12}, Canary: c, Baseline: bl}
			b.Run(fmt.Sprintf("%s/n=%d", shift.name, n), func(b *testing.B) {
				for b.Loop() {
					j.Judge(in)
				}
			})
		}
	}
}
