package metrics

import (
	"fmt"
	"math"
)

// threshold is the plain rule: the canary's mean (or rate) against the baseline's, failing
// beyond a relative and/or absolute tolerance. It ignores how often it is asked, so it raises
// false alarms when looked at often; it is kept because people know it.
type threshold struct{ minSamples int }

func newThreshold(o Options) (Judge, error) {
	if err := o.only("minSamples"); err != nil {
		return nil, err
	}
	n, err := o.int("minSamples", 3)
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("option minSamples: want at least 1, got %d", n)
	}
	return threshold{minSamples: n}, nil
}

func (t threshold) Judge(in Input) Result {
	canary, canaryN := summarize(in.Canary)
	baseline, baselineN := summarize(in.Baseline)
	r := Result{Canary: Number(canary), Baseline: Number(baseline), Deviation: Number(relativeChange(canary, baseline))}
	switch {
	case canaryN < t.minSamples || baselineN < t.minSamples:
		r.Verdict = Inconclusive
		r.Reason = fmt.Sprintf("too few samples (canary %d, baseline %d; need %d each)", canaryN, baselineN, t.minSamples)
		return r
	case in.MaxDeviationPercent == nil && in.MaxIncrease == nil:
		r.Verdict = Inconclusive
		r.Reason = "no tolerance set"
		return r
	}
	exceeded, tolerance := exceeds(in.Criteria, canary, baseline)
	r.Verdict = Pass
	if exceeded {
		r.Verdict = Fail
	}
	show, change := FormatValue, describeChange
	if in.Unit != "" { // the values in the check's unit; plain numbers otherwise
		u := UnitOf(in)
		show, change, tolerance = u.Value, u.Change, u.Tolerance(in.Criteria)
	}
	r.Reason = fmt.Sprintf("canary %s vs baseline %s (%s; tolerance %s)",
		show(canary), show(baseline), change(canary, baseline), tolerance)
	return r
}

// summarize is the mean of finite sample values, or the rate of events in total for counts,
// with how many intervals contributed.
func summarize(s Series) (value float64, n int) {
	if s.IsCounts() {
		var events, total float64
		for i := range s.Len() {
			e, t := s.Events[i], s.Total[i]
			if !finite(e) || !finite(t) || t <= 0 {
				continue
			}
			events += e
			total += t
			n++
		}
		if total == 0 {
			return math.NaN(), 0
		}
		return events / total, n
	}
	var sum float64
	for _, v := range s.Values {
		if finite(v) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return sum / float64(n), n
}

// exceeds applies the tolerances to the harm done by the canary (an increase when lower is
// better, a decrease when higher is better). With both tolerances set, a change must exceed both
// to fail: the absolute one keeps a tiny baseline from turning noise into a large percentage.
func exceeds(c Criteria, canary, baseline float64) (bool, string) {
	harm := canary - baseline
	if c.Direction == HigherIsBetter {
		harm = baseline - canary
	}
	relative := relativeHarm(harm, baseline)
	var checks []bool
	var tolerance string
	if c.MaxDeviationPercent != nil {
		checks = append(checks, relative > *c.MaxDeviationPercent)
		tolerance = fmt.Sprintf("%s%%", FormatValue(*c.MaxDeviationPercent))
	}
	if c.MaxIncrease != nil {
		checks = append(checks, harm > *c.MaxIncrease)
		if tolerance != "" {
			tolerance += " and "
		}
		tolerance += FormatValue(*c.MaxIncrease)
	}
	for _, ok := range checks {
		if !ok {
			return false, tolerance
		}
	}
	return len(checks) > 0, tolerance
}

// relativeHarm is harm as a percentage of the baseline. Against a zero baseline any harm is
// infinitely large and no harm is zero.
func relativeHarm(harm, baseline float64) float64 {
	if baseline == 0 {
		switch {
		case harm > 0:
			return math.Inf(1)
		case harm < 0:
			return math.Inf(-1)
		}
		return 0
	}
	return harm / math.Abs(baseline) * 100
}

// relativeChange is canary against baseline in percent, NaN when either is missing.
func relativeChange(canary, baseline float64) float64 {
	if !finite(canary) || !finite(baseline) {
		return math.NaN()
	}
	return relativeHarm(canary-baseline, baseline)
}

func describeChange(canary, baseline float64) string {
	d := relativeChange(canary, baseline)
	switch {
	case math.IsNaN(d):
		return "no change measurable"
	case math.IsInf(d, 0):
		return fmt.Sprintf("%+.4g over a zero baseline", canary-baseline)
	}
	return fmt.Sprintf("%+.1f%%", d)
}

// FormatValue prints a metric value compactly: four significant digits, no exponent for
// everyday magnitudes.
func FormatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return fmt.Sprintf("%.4g", v)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
