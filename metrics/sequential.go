package metrics

import (
	"fmt"
	"math"
	"strings"
)

// sequential is the default judge: always-valid sequential tests that can be looked at every
// interval without raising the false-alarm rate. At every look it replays the cumulative
// series interval by interval and keeps two running tests against the check's tolerance:
//
//   - harm: "the canary is worse than the baseline by more than the tolerance". When its
//     always-valid p-value falls to alpha/Family the verdict is Fail, for good.
//   - safety: "the canary is worse by less than the tolerance". When its always-valid p-value
//     falls to beta the verdict is Pass, unless a later look finds harm.
//
// Otherwise it is Inconclusive. Each test's e-value is a mixture likelihood ratio, a
// nonnegative supermartingale under its null, so by Ville's inequality it crosses 1/alpha with
// probability at most alpha however many looks are taken. metrics/README.md has the math.
type sequential struct {
	alpha float64 // false rollback rate of a rollout, shared by its family of (check, step) tests
	beta  float64 // chance of passing a check whose harm is beyond tolerance
	scale string  // sample checks: auto, log or linear
	tau   float64 // sample checks: scale of the effect-size mixture, in standard deviations
}

// The scales a sample check can be tested on.
const (
	scaleAuto   = "auto"
	scaleLog    = "log"
	scaleLinear = "linear"
)

func newSequential(o Options) (Judge, error) {
	if err := o.only("alpha", "beta", "scale", "tau"); err != nil {
		return nil, err
	}
	s := sequential{}
	var err error
	if s.alpha, err = o.between("alpha", 0.01, 0, 0.5, false); err != nil {
		return nil, err
	}
	if s.beta, err = o.between("beta", 0.05, 0, 0.5, false); err != nil {
		return nil, err
	}
	if s.scale, err = o.choice("scale", scaleAuto, scaleAuto, scaleLog, scaleLinear); err != nil {
		return nil, err
	}
	if s.tau, err = o.between("tau", 1.0, 0, 100, false); err != nil {
		return nil, err
	}
	return s, nil
}

// evidence is one test's log e-values after one more interval: against "within tolerance"
// (harm) and against "beyond tolerance" (safety). -Inf is no evidence at all.
type evidence struct {
	harm, safe float64
}

// component is one always-valid test over a check's series, fed interval by interval. A check
// with both a relative and an absolute tolerance has two: it is harmed only beyond both.
type component interface {
	// add takes interval i and returns the evidence so far, and whether the interval counted.
	add(i int) (evidence, bool)
}

// seqPlan is what a check's series gives the sequential decision: its tests and how to
// describe the two sides.
type seqPlan struct {
	tests            []component
	length           int // intervals in the series
	canary, baseline float64
	unit             string // "%" for rates shown as percentages
	tolerance        string
	used             func() int // intervals that counted so far
	extra            map[string]Number
	cannot           string // why no decision can ever come of this data, if so
	note             string // what the reason should add about the data (intervals left out)
	estimate         float64
	// totals are each side's requests in interval i, for the sample ratio guard (nil: none),
	// over guarded intervals (a sample check may have requests counted where it has no values).
	totals  func(i int) (nc, nb float64, ok bool)
	guarded int
}

func (s sequential) Judge(in Input) Result {
	nan := Number(math.NaN())
	r := Result{Verdict: Inconclusive, Canary: nan, Baseline: nan, Deviation: nan}
	if in.MaxDeviationPercent == nil && in.MaxIncrease == nil {
		r.Reason = "no tolerance set: give maxDeviationPercent or maxIncrease"
		return r
	}
	if in.Canary.IsCounts() != in.Baseline.IsCounts() || in.Canary.IsHistogram() != in.Baseline.IsHistogram() {
		r.Reason = "canary and baseline differ in kind (one counts, one samples)"
		if in.Canary.IsHistogram() || in.Baseline.IsHistogram() {
			r.Reason = "canary and baseline differ in kind (one a histogram, one not)"
		}
		return r
	}
	var plan seqPlan
	switch {
	case in.Canary.IsHistogram():
		plan = planHistogram(in)
	case in.Canary.IsCounts():
		plan = planCounts(in)
	default:
		plan = s.planSamples(in)
	}
	return s.decide(in.Criteria, in.Traffic, plan)
}

// decide runs the plan's tests over the series and turns their running p-values into a
// verdict: Fail at the first look where every test shows harm at alpha/Family; else
// Inconclusive if the sample ratio guard finds the split off (at the same level); else Pass at
// the first look where any test shows safety at beta/len(tests).
func (s sequential) decide(c Criteria, traffic *Traffic, plan seqPlan) Result {
	alpha := s.alpha / float64(max(c.Family, 1))
	beta := s.beta / float64(max(len(plan.tests), 1))
	k := len(plan.tests)
	harmP, safeP := make([]float64, k), make([]float64, k)
	for j := range k {
		harmP[j], safeP[j] = 1, 1
	}
	failAt, passAt := -1, -1
	last := make([]evidence, k)
	var guard *sampleRatio
	if traffic != nil && plan.totals != nil {
		guard = newSampleRatio(traffic, plan.totals, alpha)
	}
	for i := range plan.length {
		if guard != nil && i < plan.guarded {
			guard.add(i)
		}
		for j, t := range plan.tests {
			ev, _ := t.add(i)
			last[j] = ev
			harmP[j] = math.Min(harmP[j], pFromLogE(ev.harm))
			safeP[j] = math.Min(safeP[j], pFromLogE(ev.safe))
		}
		if failAt < 0 && k > 0 && maxOf(harmP) <= alpha {
			failAt = i
		}
		if passAt < 0 && k > 0 && minOf(safeP) <= beta {
			passAt = i
		}
	}
	for i := plan.length; guard != nil && i < plan.guarded; i++ {
		guard.add(i)
	}
	pHarm, pSafe := 1.0, 1.0
	if k > 0 {
		pHarm, pSafe = maxOf(harmP), math.Min(1, minOf(safeP)*float64(k))
	}
	r := Result{
		Canary:    Number(plan.canary),
		Baseline:  Number(plan.baseline),
		Deviation: Number(relativeChange(plan.canary, plan.baseline)),
		PValue:    numberPtr(pHarm),
		Stats: map[string]Number{
			"pSafe":     Number(pSafe),
			"alpha":     Number(alpha),
			"beta":      Number(s.beta),
			"intervals": Number(plan.used()),
			"estimate":  Number(plan.estimate),
		},
	}
	for name, v := range plan.extra {
		r.Stats[name] = v
	}
	s.timeToDecision(r.Stats, plan, last, alpha, beta, failAt, passAt)
	splitOff := guard != nil && guard.mismatchAt >= 0
	if guard != nil {
		share, weight := guard.share()
		r.Stats["canaryShare"], r.Stats["weight"], r.Stats["pSampleRatio"] = Number(share), Number(weight*100), Number(guard.pMin)
		if splitOff {
			r.Stats["splitOffAt"] = Number(guard.mismatchAt)
		}
	}
	sides := fmt.Sprintf("canary %s vs baseline %s (%s; tolerance %s)", plan.show(plan.canary), plan.show(plan.baseline),
		describeChange(plan.canary, plan.baseline), plan.tolerance)
	switch {
	case failAt >= 0:
		r.Verdict, r.DecidedAt = Fail, intPtr(failAt)
		r.Reason = fmt.Sprintf("harm beyond tolerance: %s; always-valid p %s ≤ %s since interval %d",
			sides, formatP(pHarm), formatP(alpha), failAt+1)
		if splitOff {
			r.Reason += "; and the traffic split is off: " + guard.reason()
		}
	case splitOff:
		// The split is not what was set: misrouted traffic, a canary that receives nothing or a
		// stale provider. Harm still rolls back (above), but nothing passes on such data.
		r.Verdict = Inconclusive
		r.Reason = fmt.Sprintf("traffic split is off, so no verdict: %s; %s", guard.reason(), sides)
	case passAt >= 0:
		r.Verdict, r.DecidedAt = Pass, intPtr(passAt)
		r.Reason = fmt.Sprintf("within tolerance: %s; shown at %s confidence since interval %d (p %s)",
			sides, formatConfidence(s.beta), passAt+1, formatP(pSafe))
	case plan.cannot != "":
		r.Verdict = Inconclusive
		r.Reason = fmt.Sprintf("%s: %s", plan.cannot, sides)
	default:
		r.Verdict = Inconclusive
		r.Reason = fmt.Sprintf("not decided after %d interval(s): %s; harm p %s (rolls back at ≤ %s), safety p %s (passes at ≤ %s)",
			plan.used(), sides, formatP(pHarm), formatP(alpha), formatP(pSafe), formatP(s.beta))
	}
	if plan.note != "" && plan.cannot == "" {
		r.Reason += "; " + plan.note
	}
	return r
}

// timeToDecision adds the outlook to stats: how many more intervals until the check should fail
// (every test's harm evidence reaches its threshold) or pass (some test's safety evidence
// does) if the canary goes on as it has at the current traffic, and the smallest harm the data
// so far would show (detectablePercent for a relative tolerance, detectableIncrease for an
// absolute one). Names whose figure is unknown or not expected are left out.
func (s sequential) timeToDecision(stats map[string]Number, plan seqPlan, last []evidence, alpha, beta float64, failAt, passAt int) {
	harmNeed, safeNeed := -math.Log(alpha), -math.Log(beta)
	// A fresh start of the e-detector bounds how far behind the harm evidence can be.
	restart := harmNeed - logStartWeight(plan.length)
	toFail, toPass := 0.0, math.Inf(1)
	for j, t := range plan.tests {
		f, ok := t.(forecaster)
		if !ok {
			toFail = math.Inf(1)
			continue
		}
		o := f.outlook(harmNeed - logStartWeight(0) + mixtureCost)
		name := "detectableIncrease"
		if o.relative {
			name = "detectablePercent"
		}
		if finite(o.detectable) {
			stats[name] = Number(o.detectable)
		}
		toFail = math.Max(toFail, intervalsTo(math.Min(harmNeed-last[j].harm, restart), o.harmRate))
		toPass = math.Min(toPass, intervalsTo(safeNeed-last[j].safe, o.safeRate))
	}
	if failAt >= 0 {
		toFail = 0
	}
	if passAt >= 0 {
		toPass = 0
	}
	if len(plan.tests) > 0 && finite(toFail) {
		stats["intervalsToFail"] = Number(toFail)
	}
	if finite(toPass) {
		stats["intervalsToPass"] = Number(toPass)
	}
}

// intervalsTo is how many intervals a deficit of evidence takes at rate nats per interval,
// rounded up (+Inf when it does not grow).
func intervalsTo(deficit, rate float64) float64 {
	switch {
	case deficit <= 0:
		return 0
	case !(rate > 0):
		return math.Inf(1)
	}
	return math.Ceil(deficit / rate)
}

// pFromLogE is the p-value an e-value stands for (1/e, at most 1).
func pFromLogE(logE float64) float64 {
	if math.IsNaN(logE) || logE <= 0 {
		return 1
	}
	return math.Exp(-logE)
}

func (p seqPlan) show(v float64) string {
	if p.unit == "%" && finite(v) {
		return FormatValue(v*100) + "%"
	}
	return FormatValue(v)
}

// toleranceText describes the check's tolerance the way a person would write it; for rates
// (shown as percentages) an absolute tolerance is in percentage points.
func toleranceText(c Criteria, rates bool) string {
	sign := "+"
	if c.Direction == HigherIsBetter {
		sign = "−"
	}
	var parts []string
	if c.MaxDeviationPercent != nil {
		parts = append(parts, sign+FormatValue(*c.MaxDeviationPercent)+"%")
	}
	switch {
	case c.MaxIncrease != nil && rates:
		parts = append(parts, sign+FormatValue(*c.MaxIncrease*100)+" pp")
	case c.MaxIncrease != nil:
		parts = append(parts, sign+FormatValue(*c.MaxIncrease))
	}
	return strings.Join(parts, " and ")
}

func formatP(p float64) string {
	if p < 1e-4 {
		return fmt.Sprintf("%.1e", p)
	}
	return fmt.Sprintf("%.4g", p)
}

func formatConfidence(beta float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", (1-beta)*100), "0"), ".") + "%"
}

func numberPtr(v float64) *Number {
	n := Number(v)
	return &n
}

func intPtr(v int) *int { return &v }

// logMeanExp is log(mean(exp(v))) without overflow.
func logMeanExp(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	if math.IsInf(m, -1) {
		return m
	}
	var sum float64
	for _, x := range v {
		sum += math.Exp(x - m)
	}
	return m + math.Log(sum/float64(len(v)))
}
