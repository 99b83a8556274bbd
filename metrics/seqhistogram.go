package metrics

import (
	"fmt"
	"math"
	"slices"
)

// A histogram check compares whole latency distributions, not one quantile's noisy estimate.
// Each finite bucket bound b splits the requests into those slower than b and the rest, so it
// is a count check of its own: events = requests slower than b, total = all requests, with the
// check's tolerance on the share slower than b (maxDeviationPercent: that share may be at most
// so much higher, relatively; maxIncrease: at most so many more, absolutely). A shift of any
// quantile moves the share at the bounds around it.
//
//   - Harm: the canary is beyond tolerance at some bound. The evidence is the mixture, with
//     equal weights, of every bound's harm e-process — itself an e-process, so alpha holds
//     whichever bound the harm is at (at the price of log(bounds) nats).
//   - Safety: the canary is within tolerance at every bound of the distribution's body — the
//     bounds above which the baseline has put 1% to 50% of its requests so far — so the
//     evidence is the smallest of their safety e-processes (intersection-union: beta holds for
//     harm at any of them). Bounds in the far tail, where too few requests fall to show safety,
//     can fail a check but are not needed to pass it.
const (
	bodyLow  = 0.01
	bodyHigh = 0.5
)

// histogramTest is the mixture over bounds, fed interval by interval.
type histogramTest struct {
	bounds [][]component // each finite bound's count tests
	// slower and all are the baseline's pooled requests slower than each bound, and in all,
	// which say which bounds are in the body.
	slower []float64
	all    float64
	total  func(i int) (slowerThan []float64, all float64, ok bool)
}

func (t *histogramTest) add(i int) (evidence, bool) {
	if slower, all, ok := t.total(i); ok {
		for b := range t.slower {
			t.slower[b] += slower[b]
		}
		t.all += all
	}
	harm := make([]float64, len(t.bounds))
	safe := math.Inf(1)
	body := false
	ok := false
	for b, tests := range t.bounds {
		h, sf := math.Inf(1), math.Inf(-1)
		for _, test := range tests {
			ev, used := test.add(i)
			ok = ok || used
			h = math.Min(h, ev.harm)                                 // harm beyond every tolerance
			sf = math.Max(sf, ev.safe-math.Log(float64(len(tests)))) // safety within either
		}
		harm[b] = h
		if share := t.slower[b] / t.all; t.all > 0 && share >= bodyLow && share <= bodyHigh {
			safe, body = math.Min(safe, sf), true
		}
	}
	if !body {
		safe = math.Inf(-1)
	}
	return evidence{harm: logMeanExp(harm), safe: safe}, ok
}

// planHistogram sets up a histogram check: a count check per finite bound, mixed.
func planHistogram(in Input) seqPlan {
	c, b := in.Canary, in.Baseline
	plan := seqPlan{unit: "%", canary: math.NaN(), baseline: math.NaN(), estimate: math.NaN(),
		tolerance: toleranceText(in.Criteria, true) + " on the share slower than each bound"}
	used := 0
	plan.used = func() int { return used }
	bounds := c.Bounds
	switch {
	case !slices.Equal(c.Bounds, b.Bounds):
		plan.cannot = "canary and baseline histograms have different bucket bounds"
		return plan
	case len(bounds) < 2 || !math.IsInf(bounds[len(bounds)-1], 1) || !slices.IsSorted(bounds):
		plan.cannot = "a histogram needs ascending bucket bounds ending in +Inf, and one finite bound at least"
		return plan
	}
	n := min(c.Len(), b.Len())
	finiteBounds := bounds[:len(bounds)-1]
	// side is one side's counts at a bound as a count series: requests slower than it, of all.
	side := func(s Series, bound int) Series {
		out := Series{Events: make([]float64, n), Total: make([]float64, n)}
		for i := range n {
			row := s.Buckets[i]
			if len(row) != len(bounds) {
				out.Events[i], out.Total[i] = math.NaN(), math.NaN()
				continue
			}
			all := row[len(row)-1]
			out.Events[i], out.Total[i] = all-row[bound], all
		}
		return out
	}
	test := &histogramTest{slower: make([]float64, len(finiteBounds))}
	perBound := make([]Input, len(finiteBounds))
	for k := range finiteBounds {
		perBound[k] = Input{Criteria: in.Criteria, Canary: side(c, k), Baseline: side(b, k)}
		tests, _ := countTests(perBound[k])
		test.bounds = append(test.bounds, tests)
	}
	test.total = func(i int) ([]float64, float64, bool) {
		row := b.Buckets[i]
		if len(row) != len(bounds) || !finite(row[len(row)-1]) || row[len(row)-1] <= 0 {
			return nil, 0, false
		}
		slower := make([]float64, len(finiteBounds))
		for k := range finiteBounds {
			slower[k] = row[len(row)-1] - row[k]
		}
		return slower, row[len(row)-1], true
	}
	plan.tests, plan.length = []component{test}, n
	plan.guarded = n
	plan.totals = func(i int) (float64, float64, bool) {
		rc, rb := c.Buckets[i], b.Buckets[i]
		if len(rc) == 0 || len(rb) == 0 {
			return 0, 0, false
		}
		nc, nb := rc[len(rc)-1], rb[len(rb)-1]
		return nc, nb, finite(nc) && finite(nb) && nc >= 0 && nb >= 0
	}
	// Show the body's bound where the canary's share slower than it strays furthest.
	show, worst := -1, math.Inf(-1)
	var ec, nc, eb, nb float64
	for k := range finiteBounds {
		var e1, n1, e2, n2 float64
		for i := range n {
			if x1, t1, x2, t2, ok := countInterval(perBound[k], i); ok {
				e1, n1, e2, n2 = e1+x1, n1+t1, e2+x2, n2+t2
				if k == 0 {
					used++
				}
			}
		}
		if n1 == 0 || n2 == 0 {
			continue
		}
		share := e2 / n2
		if share < bodyLow || share > bodyHigh {
			continue
		}
		if d := orient((e1/n1-share)/share, in.Direction != HigherIsBetter); d > worst {
			show, worst = k, d
			ec, nc, eb, nb = e1, n1, e2, n2
		}
	}
	plan.extra = map[string]Number{"bounds": Number(len(finiteBounds))}
	if show >= 0 {
		plan.canary, plan.baseline = ec/nc, eb/nb
		plan.estimate = plan.canary / plan.baseline
		plan.extra["bound"] = Number(finiteBounds[show])
		plan.tolerance = fmt.Sprintf("%s; shown: the share slower than %s", plan.tolerance, FormatValue(finiteBounds[show]))
	}
	if used == 0 {
		plan.cannot = "no interval with requests on both sides yet"
	}
	return plan
}
