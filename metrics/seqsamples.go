package metrics

import (
	"fmt"
	"math"
)

// tTest is a sequential t-test on the per-interval harm beyond tolerance d_i (canary against
// baseline in the same interval, so load, seasonality and bursts both sides share cancel). The
// e-value is the Bayes factor of a normal mixture N(0, tau²) over the standardized effect
// mean(d)/sd(d) with the scale-invariant prior on sd (Lai 1976; Pérez-Ortiz et al. 2024,
// "E-statistics, group invariance and anytime-valid testing"):
//
//	BF_n = (1+nτ²)^(-1/2) · [(1 + t²/ν) / (1 + t²/(ν(1+nτ²)))]^((ν+1)/2),  ν = n−1,
//
// a test martingale under mean(d) = 0 for normal d with unknown variance. It counts as evidence
// of harm only while the mean is positive (and of safety only while it is negative): since t
// at a null below the tolerance is smaller than at the tolerance, that keeps the error at most
// alpha for the whole one-sided null.
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
	seen   []float64 // the d's so far, as observed, for the robust scale
	n      int
	mean   float64
	m2     float64 // sum of squared deviations (Welford)
}

// Winsorizing uses the scale of at least winsorMin d's, and of the last winsorWindow at most
// (so a long hold stays cheap and the scale follows slow drift); bounds are winsorK robust sds.
const (
	winsorMin    = 5
	winsorWindow = 256
	winsorK      = 2.0
)

func (t *tTest) add(i int) (evidence, bool) {
	d, ok := t.harmOf(i)
	if ok {
		t.seen = append(t.seen, d)
		switch n := len(t.seen); {
		case n == winsorMin:
			bound := winsorK * robustSD(t.seen)
			for _, early := range t.seen {
				t.push(winsorize(early, bound))
			}
		case n > winsorMin:
			t.push(winsorize(d, winsorK*robustSD(t.seen[max(0, n-1-winsorWindow):n-1])))
		}
	}
	none := math.Inf(-1)
	if t.n < winsorMin || t.mean == 0 {
		return evidence{harm: none, safe: none}, ok
	}
	logBF := tMixtureLogBF(t.n, t.mean, t.m2/float64(t.n-1), t.tau2)
	if t.mean > 0 {
		return evidence{harm: logBF, safe: none}, ok
	}
	return evidence{harm: none, safe: logBF}, ok
}

// push adds one winsorized d to the running mean and variance (Welford).
func (t *tTest) push(d float64) {
	t.n++
	delta := d - t.mean
	t.mean += delta / float64(t.n)
	t.m2 += delta * (d - t.mean)
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

// tMixtureLogBF is log BF_n for n observations with the given mean and sample variance.
func tMixtureLogBF(n int, mean, variance, tau2 float64) float64 {
	nu := float64(n - 1)
	g := 1 + float64(n)*tau2
	if variance <= 0 {
		// Every d the same: t is infinite and BF reaches its bound g^(ν/2).
		return nu / 2 * math.Log(g)
	}
	t2 := float64(n) * mean * mean / variance
	return -0.5*math.Log(g) + (nu+1)/2*(math.Log1p(t2/nu)-math.Log1p(t2/(nu*g)))
}

// planSamples sets up the tests of a sample check. A relative tolerance p is tested on log
// values, log(canary) − log(baseline) − log(1+p/100), when scale is log, or auto and every value
// is positive (latencies); otherwise on values, canary − (1+p/100)·baseline. An absolute
// tolerance a is tested on canary − baseline − a. For higher_is_better the signs turn.
func (s sequential) planSamples(in Input) seqPlan {
	x, y := in.Canary.Values, in.Baseline.Values
	n := min(len(x), len(y))
	pair := func(i int) (float64, float64, bool) {
		return x[i], y[i], finite(x[i]) && finite(y[i])
	}
	lowerBetter := in.Direction != HigherIsBetter
	useLog := s.scale == scaleLog || (s.scale == scaleAuto && in.MaxIncrease == nil && allPositive(x[:n], y[:n]))
	var tests []component
	if in.MaxDeviationPercent != nil {
		p := *in.MaxDeviationPercent / 100
		var harmOf func(i int) (float64, bool)
		switch {
		case useLog && (lowerBetter || p < 1):
			margin := math.Log1p(p)
			if !lowerBetter {
				margin = -math.Log1p(-p)
			}
			harmOf = func(i int) (float64, bool) {
				cv, bv, ok := pair(i)
				if !ok || cv <= 0 || bv <= 0 {
					return 0, false
				}
				return orient(math.Log(cv)-math.Log(bv), lowerBetter) - margin, true
			}
		default:
			useLog = false
			harmOf = func(i int) (float64, bool) {
				cv, bv, ok := pair(i)
				if lowerBetter {
					return cv - (1+p)*bv, ok
				}
				return (1-p)*bv - cv, ok
			}
		}
		tests = append(tests, &tTest{harmOf: harmOf, tau2: s.tau * s.tau})
	}
	if in.MaxIncrease != nil {
		a := *in.MaxIncrease
		tests = append(tests, &tTest{tau2: s.tau * s.tau, harmOf: func(i int) (float64, bool) {
			cv, bv, ok := pair(i)
			return orient(cv-bv, lowerBetter) - a, ok
		}})
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
	if useLog {
		plan.tolerance += " on log values"
	}
	if used > 0 {
		plan.canary, plan.baseline = cs/float64(used), bs/float64(used)
		plan.estimate = plan.canary - plan.baseline
		if useLog {
			plan.estimate = math.Exp(logRatio / float64(used))
		}
	}
	if used < winsorMin {
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
