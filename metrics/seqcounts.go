package metrics

import "math"

// The discrete mixture of alternatives the count tests average over: effects g (log rate
// ratio beyond the null) spread geometrically from 0.05 to 3 — from ×1.05 the tolerance to ×20 —
// with equal weights, close to the log-uniform prior that costs every effect about the same
// evidence. A mixture with fixed weights of likelihood ratios is itself a likelihood ratio, so
// validity is exact; not knowing the effect costs about ½·log(nI/2π) + log(g·log(60)) − ½ nats
// at the evidence nI where the effect g is detected (Laplace), 1–1.5 nats for moderate effects.
const (
	gridSize = 16
	gridMin  = 0.05
	gridMax  = 3.0
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

// countModel gives interval i's log likelihood ratios (log e-values) of each harm alternative
// and each safety alternative against its null, from the interval's events and totals; ok is
// false for an interval that cannot be used.
type countModel func(ec, nc, eb, nb float64, harm, safe []float64) (ok bool)

// countTest runs a count model interval by interval: harm as an e-detector over the model's
// harm alternatives (a fault may start at any interval), safety as a mixture from the start.
type countTest struct {
	in         Input
	model      countModel
	harm       *changeDetector
	safe       *mixture
	hl, sl     []float64 // this interval's log ratios
	used       int
	complement bool // test the complements (non-events), for higher_is_better rates
	sums       countSums
	outlookOf  func(s *countSums, need float64) outlook
}

func newCountTest(in Input, model countModel, harmAlternatives, safeAlternatives int, outlookOf func(*countSums, float64) outlook) *countTest {
	return &countTest{
		in: in, model: model, outlookOf: outlookOf,
		harm: newChangeDetector(uniformLogWeights(harmAlternatives)),
		safe: newMixture(uniformLogWeights(safeAlternatives)),
		hl:   make([]float64, harmAlternatives), sl: make([]float64, safeAlternatives),
	}
}

func (t *countTest) add(i int) (evidence, bool) {
	ec, nc, eb, nb, ok := countInterval(t.in, i)
	if t.complement {
		ec, eb = nc-ec, nb-eb
	}
	if ok && t.model(ec, nc, eb, nb, t.hl, t.sl) {
		t.used++
		t.sums.add(ec, nc, eb, nb)
		t.harm.add(i, t.hl)
		t.safe.add(t.sl)
	} else {
		clear(t.hl)
		t.harm.add(i, t.hl) // no evidence, but a fault may start here
	}
	return evidence{harm: t.harm.logE(), safe: t.safe.logE()}, ok
}

func (t *countTest) outlook(need float64) outlook { return t.outlookOf(&t.sums, need) }

// ratioModel tests the canary's share of each interval's events against its share of traffic.
// If canary requests fail at r times the baseline's rate, then given the interval's events
// E = ec + eb and requests nc, nb, the canary's events are Binomial(E, r·nc/(r·nc + nb)) —
// whatever the baseline's rate is that interval and however traffic moves. So the test is exact
// for the rate ratio r against the null ratio r0 (1 ± tolerance) under bursts shared by both.
// sign is +1 when a higher rate is harm (errors), -1 when a lower one is (successes).
func ratioModel(r0, sign float64) (countModel, int) {
	g := effectGrid()
	var harmRatios, safeRatios []float64
	for _, e := range g {
		harmRatios = append(harmRatios, r0*math.Exp(sign*e))
		safeRatios = append(safeRatios, r0*math.Exp(-sign*e))
	}
	return func(ec, nc, eb, nb float64, harm, safe []float64) bool {
		events := ec + eb
		if events == 0 {
			clear(harm)
			clear(safe)
			return true
		}
		rho := nc / nb
		null := math.Log1p(r0 * rho)
		for k, e := range g {
			// log(r1/r0) is ±e for the alternative r1 = r0·exp(±e).
			harm[k] = ec*sign*e + events*(null-math.Log1p(harmRatios[k]*rho))
			safe[k] = -ec*sign*e + events*(null-math.Log1p(safeRatios[k]*rho))
		}
		return true
	}, len(g)
}

// absoluteModel tests the difference of the canary's and the baseline's event rates against an
// absolute tolerance a, with both sides' counts random. For a bet λ and the baseline's
// counter-bet μ chosen so that e^(−μ) = 1 − ρ(e^λ − 1), ρ = nc/nb, the interval's e-value
//
//	L = exp(λ·ec − μ·eb) / (1 + a·(e^λ − 1))^nc
//
// has expectation at most 1 whenever the canary's rate is within a of the baseline's (λ > 0:
// the harm test) or beyond it (λ < 0: the safety test), whatever the baseline's rate is that
// interval: for rates p + a and p the two sides' binomial moment generating functions multiply
// to (1 + (p+a)(e^λ−1))^nc·(1 + p(e^(−μ)−1))^nb, which is concave in p with μ chosen so, and
// falls from p = 0, where it is the denominator. So the bets λ = ±g_k mix alternatives a fixed
// log factor beyond the boundary; a harm bet is capped where the baseline's side would stake
// more than half its e-value on one event (e^(−μ) ≥ ½). One more safety bet, λ = −∞, is "no
// events at all": with none a safety bet earns nc·log(1/(1−a)) per interval, so a canary with
// 10,000 requests and no errors is within 0.5%.
func absoluteModel(a float64) (model countModel, harmBets, safeBets int) {
	g := effectGrid()
	return func(ec, nc, eb, nb float64, harm, safe []float64) bool {
		rho := nc / nb
		// Largest harm bet with e^(−μ) ≥ ½.
		capped := math.Log1p(0.5 / rho)
		bet := func(lambda float64) float64 {
			grow := math.Expm1(lambda)
			mu := -math.Log1p(-rho * grow)
			l := lambda*ec - nc*math.Log1p(a*grow)
			if eb > 0 {
				l -= mu * eb
			}
			return l
		}
		for k, e := range g {
			harm[k] = bet(math.Min(e, capped))
			safe[k] = bet(-e)
		}
		// λ = −∞: e^(λ·ec) is 1 with no events and 0 with any; e^(−μ) = 1 + ρ.
		none := math.Inf(-1)
		if ec == 0 {
			none = eb*math.Log1p(rho) - nc*math.Log1p(-a)
		}
		safe[len(g)] = none
		return true
	}, len(g), len(g) + 1
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

// planCounts sets up the tests of a count check.
func planCounts(in Input) seqPlan {
	tests, onlyRatios := countTests(in)
	return countPlan(in, tests, onlyRatios)
}

// countTests are the tests of a count check: a relative tolerance is a ratio test, an
// absolute one an absolute test (or a ratio test of 1 when it is zero); onlyRatios says whether
// they all need events to decide.
func countTests(in Input) (tests []component, onlyRatios bool) {
	sign := 1.0
	if in.Direction == HigherIsBetter {
		sign = -1
	}
	onlyRatios = true
	ratio := func(r0 float64) component {
		model, k := ratioModel(r0, sign)
		return newCountTest(in, model, k, k, func(s *countSums, need float64) outlook {
			return ratioOutlook(s, r0, sign, need)
		})
	}
	if in.MaxDeviationPercent != nil {
		if r0 := 1 + sign**in.MaxDeviationPercent/100; r0 > 0 {
			tests = append(tests, ratio(r0))
		} else {
			tests = append(tests, &neverHarmed{in: in})
		}
	}
	if in.MaxIncrease != nil {
		switch {
		case *in.MaxIncrease == 0:
			tests = append(tests, ratio(1))
		case *in.MaxIncrease >= 1:
			// Rates differ by less than 1: no change exceeds such a tolerance.
			tests = append(tests, &neverHarmed{in: in})
		default:
			a := *in.MaxIncrease
			model, harmBets, safeBets := absoluteModel(a)
			t := newCountTest(in, model, harmBets, safeBets, func(s *countSums, need float64) outlook {
				return absoluteOutlook(s, a, need)
			})
			// A fall in a success rate is a rise in the failure rate.
			t.complement = sign < 0
			tests = append(tests, t)
			onlyRatios = false
		}
	}
	return tests, onlyRatios
}

// countPlan is a count check's plan around its tests.
func countPlan(in Input, tests []component, onlyRatios bool) seqPlan {
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
		tests: tests, length: n, unit: "%", tolerance: toleranceText(in.Criteria, true),
		canary: math.NaN(), baseline: math.NaN(), estimate: math.NaN(),
		used: func() int { return used }, guarded: n,
		totals: func(i int) (float64, float64, bool) {
			if i >= in.Canary.Len() || i >= in.Baseline.Len() {
				return 0, 0, false
			}
			nc, nb := in.Canary.Total[i], in.Baseline.Total[i]
			return nc, nb, finite(nc) && finite(nb) && nc >= 0 && nb >= 0
		},
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
