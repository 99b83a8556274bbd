package metrics

import "math"

// The discrete mixture of alternatives the count tests average over: effects (log rate ratio
// or log odds beyond the null) spread geometrically from 0.02 to 5, with equal weights. A
// mixture with fixed weights of likelihood ratios is itself a likelihood ratio, so validity is
// exact; the price of not knowing the effect is log(gridSize) ≈ 3.2 nats of evidence.
const (
	gridSize = 24
	gridMin  = 0.02
	gridMax  = 5.0
)

func effectGrid() []float64 {
	g := make([]float64, gridSize)
	for j := range g {
		g[j] = gridMin * math.Pow(gridMax/gridMin, float64(j)/(gridSize-1))
	}
	return g
}

// countInterval is interval i of a count check, and whether it can be used: finite, with
// traffic on both sides and no more events than requests.
func countInterval(in Input, i int) (ec, nc, eb, nb float64, ok bool) {
	c, b := in.Canary, in.Baseline
	if i >= c.Len() || i >= b.Len() {
		return 0, 0, 0, 0, false
	}
	ec, nc, eb, nb = c.Events[i], c.Total[i], b.Events[i], b.Total[i]
	ok = finite(ec) && finite(nc) && finite(eb) && finite(nb) &&
		nc > 0 && nb > 0 && ec >= 0 && eb >= 0 && ec <= nc && eb <= nb
	return ec, nc, eb, nb, ok
}

// ratioTest tests the canary's share of each interval's events against its share of traffic.
// If canary requests fail at r times the baseline's rate, then given the interval's events
// E = ec + eb and requests nc, nb, the canary's events are Binomial(E, r·nc/(r·nc + nb)) —
// whatever the baseline's rate is that interval and however traffic moves. So the test is exact
// for the rate ratio r against the null ratio r0 (1 ± tolerance) under bursts shared by both.
type ratioTest struct {
	in         Input
	r0         float64
	harmRatios []float64 // alternatives on the harmful side of r0
	safeRatios []float64 // and on the safe side
	harm, safe []float64 // log likelihood ratio of each alternative so far
	used       int
}

// newRatioTest tests ratio r0; sign is +1 when a higher rate is harm (errors), -1 when a lower
// one is (successes).
func newRatioTest(in Input, r0, sign float64) *ratioTest {
	g := effectGrid()
	t := &ratioTest{in: in, r0: r0, harm: make([]float64, len(g)), safe: make([]float64, len(g))}
	for _, e := range g {
		t.harmRatios = append(t.harmRatios, r0*math.Exp(sign*e))
		t.safeRatios = append(t.safeRatios, r0*math.Exp(-sign*e))
	}
	return t
}

func (t *ratioTest) add(i int) (evidence, bool) {
	ec, nc, eb, nb, ok := countInterval(t.in, i)
	if ok {
		t.used++
		if events := ec + eb; events > 0 {
			rho := nc / nb
			null := math.Log1p(t.r0 * rho)
			step := func(r1 float64) float64 {
				return ec*math.Log(r1/t.r0) + events*(null-math.Log1p(r1*rho))
			}
			for j := range t.harm {
				t.harm[j] += step(t.harmRatios[j])
				t.safe[j] += step(t.safeRatios[j])
			}
		}
	}
	return evidence{harm: logMeanExp(t.harm), safe: logMeanExp(t.safe)}, ok
}

// absTest tests the canary's rate against the baseline's rate of the same interval plus
// (errors) or minus (successes) an absolute tolerance: canary events are Binomial(nc, q) with
// the null q = baseline rate ± tolerance. The baseline's rate is taken as measured, which is
// exact for a large stable fleet and approximate when the baseline is as small as the canary.
// Unlike the ratio test it can show safety with no events at all.
type absTest struct {
	in         Input
	tolerance  float64
	sign       float64
	shifts     []float64 // log-odds shifts of the alternatives
	harm, safe []float64
	used       int
}

func newAbsTest(in Input, tolerance, sign float64) *absTest {
	g := effectGrid()
	return &absTest{in: in, tolerance: tolerance, sign: sign, shifts: g, harm: make([]float64, len(g)), safe: make([]float64, len(g))}
}

func (t *absTest) add(i int) (evidence, bool) {
	ec, nc, eb, nb, ok := countInterval(t.in, i)
	q0 := eb/nb + t.sign*t.tolerance
	if ok && q0 > 0 && q0 < 1 {
		t.used++
		l0 := math.Log(q0 / (1 - q0))
		// log q = -softplus(-l), log(1-q) = -softplus(l) for log odds l.
		step := func(l1 float64) float64 {
			return ec*(softplus(-l0)-softplus(-l1)) + (nc-ec)*(softplus(l0)-softplus(l1))
		}
		for j, s := range t.shifts {
			t.harm[j] += step(l0 + t.sign*s)
			t.safe[j] += step(l0 - t.sign*s)
		}
	}
	return evidence{harm: logMeanExp(t.harm), safe: logMeanExp(t.safe)}, ok
}

// softplus is log(1 + e^x), computed without overflow.
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

// neverHarmed stands for a tolerance no change can exceed (a decrease of 100% or more): it
// shows safety as soon as there is data.
type neverHarmed struct {
	in   Input
	seen bool
}

func (t *neverHarmed) add(i int) (evidence, bool) {
	_, _, _, _, ok := countInterval(t.in, i)
	t.seen = t.seen || ok
	if t.seen {
		return evidence{harm: math.Inf(-1), safe: math.Inf(1)}, ok
	}
	return evidence{harm: math.Inf(-1), safe: math.Inf(-1)}, ok
}

// planCounts sets up the tests of a count check: a relative tolerance is a ratio test, an
// absolute one an absolute test (or a ratio test of 1 when it is zero).
func planCounts(in Input) seqPlan {
	sign := 1.0
	if in.Direction == HigherIsBetter {
		sign = -1
	}
	var tests []component
	onlyRatios := true
	if in.MaxDeviationPercent != nil {
		if r0 := 1 + sign**in.MaxDeviationPercent/100; r0 > 0 {
			tests = append(tests, newRatioTest(in, r0, sign))
		} else {
			tests = append(tests, &neverHarmed{in: in})
		}
	}
	if in.MaxIncrease != nil {
		if *in.MaxIncrease == 0 {
			tests = append(tests, newRatioTest(in, 1, sign))
		} else {
			tests = append(tests, newAbsTest(in, *in.MaxIncrease, sign))
			onlyRatios = false
		}
	}
	var ec, nc, eb, nb float64
	n := min(in.Canary.Len(), in.Baseline.Len())
	used := 0
	for i := range n {
		if e1, n1, e2, n2, ok := countInterval(in, i); ok {
			ec, nc, eb, nb = ec+e1, nc+n1, eb+e2, nb+n2
			used++
		}
	}
	plan := seqPlan{
		tests: tests, length: n, unit: seqUnit(in.Criteria, true), tolerance: toleranceText(in.Criteria, true),
		canary: math.NaN(), baseline: math.NaN(), estimate: math.NaN(),
		used: func() int { return used },
		extra: map[string]Number{
			"canaryEvents": Number(ec), "canaryTotal": Number(nc),
			"baselineEvents": Number(eb), "baselineTotal": Number(nb),
		},
	}
	if nc > 0 && nb > 0 {
		plan.canary, plan.baseline = ec/nc, eb/nb
		plan.estimate = plan.canary / plan.baseline
	}
	switch {
	case used == 0:
		plan.cannot = "no interval with traffic on both sides yet"
	case onlyRatios && ec+eb == 0:
		plan.cannot = "no events in either version yet; a relative tolerance needs events to compare (maxIncrease can pass rare events)"
	}
	return plan
}
