package metrics

import (
	"fmt"
	"math"
	"slices"
)

// tTest is a sequential t-test on the per-interval harm beyond tolerance d_i (canary against
// baseline in the same interval, so load, seasonality and bursts both sides share cancel). The
// e-value is the Bayes factor of a normal mixture N(0, tau²) over the standardized effect
// mean(d)/sd(d) with the scale-invariant prior on sd (Lai 1976; Pérez-Ortiz et al. 2024,
// "E-statistics, group invariance and anytime-valid testing"):
//
//	BF_n = (1+nτ²)^(-1/2) · [(1 + t²/ν) / (1 + t²/(ν(1+nτ²)))]^((ν+1)/2),  ν = n−1,
//
// a test martingale under mean(d) = 0 for normal d with unknown variance, folded onto one side
// for each test (oneSidedLogBFs): harm mixes only harmful effects, safety only safe ones. Since
// t at a null below the tolerance is smaller than at the tolerance, the error stays at most
// alpha for the whole one-sided null.
//
// Harm is an e-detector (detector.go): besides the run from the window's first interval, a run
// starts at every later interval, and harm is shown when some run's factor, times its start's
// weight, reaches 1/alpha (the union bound over starts keeps alpha).
//
// An outlier minute on one side would swell the variance and hide a real shift for the rest of
// the step, so each d_i is winsorized at ±winsorK robust standard deviations (1.4826 MAD) of
// the d's before it; the first winsorMin are winsorized together by their own scale, and the
// test counts no evidence before it has them. So a bound depends only on data up to the look
// that first uses it, and a verdict never changes when later data arrives. Bounds symmetric
// about 0 keep the sign of the mean.
type tTest struct {
	harmOf func(i int) (float64, bool)
	tau2   float64
	// show turns a harm beyond tolerance (in d's units) into the canary's change as the
	// tolerance measures it (percent when relative); for the outlook.
	show     func(d float64) float64
	relative bool
	seen     []float64 // the d's so far, as observed
	// window is the newest winsorWindow d's of seen before the current one, in order: the
	// robust scale of each interval comes from it without sorting the window again.
	window sortedWindow
	// from is the run from the window's first interval: its harm and safety evidence. later
	// are runs started at later intervals, for harm that starts mid-window (the e-detector:
	// see detector.go), at most maxStarts of the newest.
	from  run
	later []run
}

// run is the t-test's running mean and variance of the winsorized d's since interval start.
type run struct {
	logWeight float64 // log w_j of its start j, for a run the e-detector starts mid-window
	n         int
	mean      float64
	m2        float64 // sum of squared deviations (Welford)
}

// Winsorizing uses the scale of at least winsorMin d's, and of the last winsorWindow at most
// (so a long hold stays cheap and the scale follows slow drift); bounds are winsorK robust sds.
const (
	winsorMin    = 5
	winsorWindow = 256
	winsorK      = 1.5
	maxStarts    = 256
	// A run started mid-window counts from its second d, with twice the mixture's scale: to
	// beat the small weight of its start from a few intervals, it needs the wider prior, and a
	// fault that appears at once is a large one.
	laterMin   = 2
	laterScale = 2
)

func (t *tTest) add(i int) (evidence, bool) {
	d, ok := t.harmOf(i)
	if ok {
		t.seen = append(t.seen, d)
		switch n := len(t.seen); {
		case n < winsorMin:
			t.window.insert(d)
		case n == winsorMin:
			t.window.insert(d)
			bound := winsorK * t.window.robustSD()
			for _, early := range t.seen {
				t.from.push(winsorize(early, bound))
			}
		case n > winsorMin:
			// The scale of the d's before this one (the last winsorWindow at most).
			w := winsorize(d, winsorK*t.window.robustSD())
			t.window.insert(d)
			if old := n - 1 - winsorWindow; old >= 0 {
				t.window.remove(t.seen[old])
			}
			t.from.push(w)
			if len(t.later) == maxStarts {
				t.later = t.later[1:]
			}
			t.later = append(t.later, run{logWeight: logStartWeight(i)})
			for k := range t.later {
				t.later[k].push(w)
			}
		}
	}
	none := math.Inf(-1)
	ev := evidence{harm: none, safe: none}
	if t.from.n < winsorMin {
		return ev, ok
	}
	harm, safe := oneSidedLogBFs(t.from.n, t.from.mean, t.from.m2, t.tau2)
	ev.harm, ev.safe = harm+logStartWeight(0), safe
	// Harm since a later start: the union bound over starts, P(∃j: w_j·BF_j ≥ 1/α) ≤ α.
	for _, r := range t.later {
		if r.n < laterMin || r.mean <= 0 {
			continue
		}
		two, x := tMixture(r.n, r.mean, r.m2, t.tau2*laterScale*laterScale)
		// The one-sided factor is at most twice the two-sided one: skip the Student t
		// function where even that would not raise the evidence.
		if lw := r.logWeight; math.Ln2+two+lw > ev.harm {
			ev.harm = math.Max(ev.harm, oneSide(two, x, r.n)+lw)
		}
	}
	return ev, ok
}

func (t *tTest) outlook(need float64) outlook { return tOutlook(t.from, need, t.show, t.relative) }

// push adds one winsorized d to the running mean and variance (Welford).
func (r *run) push(d float64) {
	r.n++
	delta := d - r.mean
	r.mean += delta / float64(r.n)
	r.m2 += delta * (d - r.mean)
}

// winsorize clips d to ±bound; a zero bound (no spread yet) leaves it alone.
func winsorize(d, bound float64) float64 {
	if bound <= 0 {
		return d
	}
	return math.Max(-bound, math.Min(bound, d))
}

// robustSD is 1.4826 times the median absolute deviation: the standard deviation for normal
// data, unmoved by a few outliers.
func robustSD(v []float64) float64 {
	med := median(v)
	dev := make([]float64, len(v))
	for i, x := range v {
		dev[i] = math.Abs(x - med)
	}
	return 1.4826 * median(dev)
}

// sortedWindow keeps a window of d's sorted as they come and go, so its robust scale costs a
// walk over half the window rather than two sorts: a look replays every interval of its
// window, and sorting the scale window at each interval would make a look cost O(n·W log W).
type sortedWindow struct{ sorted []float64 }

// insert adds d in order (a binary search and one shift of the larger values).
func (w *sortedWindow) insert(d float64) {
	i, _ := slices.BinarySearch(w.sorted, d)
	w.sorted = slices.Insert(w.sorted, i, d)
}

// remove takes out one value equal to d, which the window holds.
func (w *sortedWindow) remove(d float64) {
	if i, found := slices.BinarySearch(w.sorted, d); found {
		w.sorted = slices.Delete(w.sorted, i, i+1)
	}
}

// robustSD is robustSD of the window's values, the same float for float: the median of the
// sorted values, then the middle of the absolute deviations, which grow outward from the
// median on both sides, so the k smallest are found by merging the two sides from the middle.
func (w *sortedWindow) robustSD() float64 {
	s := w.sorted
	m := len(s)
	if m == 0 {
		return math.NaN()
	}
	med := s[m/2]
	if m%2 == 0 {
		med = (s[m/2-1] + s[m/2]) / 2
	}
	// left walks down from the last value below the median, right up from the first at or
	// above it; each step takes the smaller deviation, the k-th of which is kept.
	right, _ := slices.BinarySearch(s, med)
	left := right - 1
	next := func() float64 {
		if left >= 0 && (right >= m || math.Abs(s[left]-med) <= math.Abs(s[right]-med)) {
			left--
			return math.Abs(s[left+1] - med)
		}
		right++
		return math.Abs(s[right-1] - med)
	}
	for range (m - 1) / 2 {
		next()
	}
	mid := next() // the ((m−1)/2)-th smallest deviation, 0-based: the middle for odd m
	if m%2 == 1 {
		return 1.4826 * mid
	}
	// An even count averages the two middle deviations, the (m/2−1)-th and the (m/2)-th.
	return 1.4826 * (mid + next()) / 2
}

// oneSidedLogBFs are the t-mixture Bayes factors with the prior on the standardized effect θ
// folded onto one side: 2·N(0, τ²) on θ > 0 (harm) or on θ < 0 (safety). Integrating the
// fixed-θ factors over the half-line gives the two-sided factor times the chance that a
// Student t with n degrees of freedom falls below ±κ√n:
//
//	BF± = 2·BF_n·F_t,n(±κ√n),  κ = a/√(1−a²),  a² = (Σd)²/Σd² · τ²/(1+nτ²).
//
// Each is a mixture of likelihood ratios of effects on its side only, so it is still a test
// martingale at θ = 0, and it earns up to log 2 more than the two-sided factor when the data
// lean its way.
func oneSidedLogBFs(n int, mean, m2, tau2 float64) (harm, safe float64) {
	two, x := tMixture(n, mean, m2, tau2)
	return oneSide(two, x, n), oneSide(two, -x, n)
}

// tMixture is the two-sided factor log BF_n and κ√n, the point where the Student t
// distribution function folds it onto a side (−Inf and 0 without spread).
func tMixture(n int, mean, m2, tau2 float64) (two, x float64) {
	nf := float64(n)
	sum, sumSq := nf*mean, m2+nf*mean*mean
	if n < 2 || sumSq <= 0 {
		return math.Inf(-1), 0
	}
	g := 1 + nf*tau2
	a2 := sum * sum / sumSq * tau2 / g
	rest := math.Max(1-a2, 1/g) // 1/g when every d is the same (rounding aside)
	two = -0.5*math.Log(g) - nf/2*math.Log(rest)
	return two, math.Copysign(math.Sqrt(a2/rest), sum) * math.Sqrt(nf)
}

// oneSide is log(2·BF_n·F_t,n(x)) from the two-sided factor. The distribution function is
// taken in logs: when the d's barely vary, BF_n grows like n^(n/2) and F_t,n(x) on the other
// side falls about as fast, so neither fits in a float64 though their product does.
func oneSide(two, x float64, n int) float64 {
	if math.IsInf(two, -1) {
		return two
	}
	return math.Ln2 + two + logStudentCDF(x, float64(n))
}

// planSamples sets up the tests of a sample check. A relative tolerance p is tested on log
// values, log(canary) − log(baseline) − log(1+p/100), when scale is log, or auto and every value
// is positive (latencies); otherwise on values, canary − (1+p/100)·baseline. An absolute
// tolerance a is tested on canary − baseline − a. For higher_is_better the signs turn.
func (s sequential) planSamples(in Input) seqPlan {
	x, y := in.Canary.Values, in.Baseline.Values
	n := min(len(x), len(y))
	left, leftOut := make([]bool, n), ""
	if tr := in.Traffic; in.Quantile > 0 && in.Quantile < 1 && tr != nil {
		left, leftOut = quantileGate(in.Quantile, n, tr.Canary, tr.Baseline)
	}
	pair := func(i int) (float64, float64, bool) {
		return x[i], y[i], finite(x[i]) && finite(y[i]) && !left[i]
	}
	lowerBetter := in.Direction != HigherIsBetter
	useLog := s.scale == scaleLog || (s.scale == scaleAuto && in.MaxIncrease == nil && allPositive(x[:n], y[:n]))
	var tests []component
	var baseMean float64 // the baseline's mean, for outlooks on the linear scale
	if in.MaxDeviationPercent != nil {
		p := *in.MaxDeviationPercent / 100
		t := &tTest{tau2: s.tau * s.tau, relative: true}
		switch {
		case useLog && (lowerBetter || p < 1):
			margin := math.Log1p(p)
			if !lowerBetter {
				margin = -math.Log1p(-p)
			}
			t.harmOf = func(i int) (float64, bool) {
				cv, bv, ok := pair(i)
				if !ok || cv <= 0 || bv <= 0 {
					return 0, false
				}
				return orient(math.Log(cv)-math.Log(bv), lowerBetter) - margin, true
			}
			t.show = func(d float64) float64 { return math.Expm1(orient(d+margin, lowerBetter)) * 100 }
		default:
			useLog = false
			t.harmOf = func(i int) (float64, bool) {
				cv, bv, ok := pair(i)
				if lowerBetter {
					return cv - (1+p)*bv, ok
				}
				return (1-p)*bv - cv, ok
			}
			t.show = func(d float64) float64 { return orient(p+d/baseMean, lowerBetter) * 100 }
		}
		tests = append(tests, t)
	}
	if in.MaxIncrease != nil {
		a := *in.MaxIncrease
		tests = append(tests, &tTest{tau2: s.tau * s.tau, harmOf: func(i int) (float64, bool) {
			cv, bv, ok := pair(i)
			return orient(cv-bv, lowerBetter) - a, ok
		}, show: func(d float64) float64 { return a + d }})
	}
	var cs, bs, logRatio float64
	used := 0
	for i := range n {
		if cv, bv, ok := pair(i); ok && (!useLog || (cv > 0 && bv > 0)) {
			cs, bs = cs+cv, bs+bv
			if useLog {
				logRatio += math.Log(cv) - math.Log(bv)
			}
			used++
		}
	}
	plan := seqPlan{
		tests: tests, length: n, unit: seqUnit(in.Criteria, false), tolerance: toleranceText(in.Criteria, false),
		canary: math.NaN(), baseline: math.NaN(), estimate: math.NaN(),
		used: func() int { return used },
	}
	if sp := in.Traffic; sp != nil && sp.Canary != nil && sp.Baseline != nil {
		plan.guarded = min(len(sp.Canary), len(sp.Baseline))
		plan.totals = func(i int) (float64, float64, bool) {
			if i >= len(sp.Canary) || i >= len(sp.Baseline) {
				return 0, 0, false
			}
			nc, nb := sp.Canary[i], sp.Baseline[i]
			return nc, nb, finite(nc) && finite(nb) && nc >= 0 && nb >= 0
		}
	}
	if useLog {
		plan.tolerance += " on log values"
	}
	if used > 0 {
		plan.canary, plan.baseline = cs/float64(used), bs/float64(used)
		baseMean = plan.baseline
		plan.estimate = plan.canary - plan.baseline
		if useLog {
			plan.estimate = math.Exp(logRatio / float64(used))
		}
	}
	plan.note = leftOut
	switch {
	case used < winsorMin && leftOut != "":
		plan.cannot = fmt.Sprintf("fewer than %d intervals whose quantiles can be compared (%s)", winsorMin, leftOut)
	case used < winsorMin:
		plan.cannot = fmt.Sprintf("fewer than %d intervals with values on both sides", winsorMin)
	}
	return plan
}

// orient turns a canary-minus-baseline difference into harm: as is when lower is better,
// negated when higher is.
func orient(diff float64, lowerBetter bool) float64 {
	if lowerBetter {
		return diff
	}
	return -diff
}

func allPositive(vs ...[]float64) bool {
	for _, v := range vs {
		for _, x := range v {
			if finite(x) && x <= 0 {
				return false
			}
		}
	}
	return true
}
