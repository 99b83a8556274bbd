package metrics

import (
	"fmt"
	"math"
)

// mannWhitney is Kayenta's classifier as a judge. It takes Kayenta's parameter names as
// options (flat or nested as in Kayenta's analysisConfigurations.canary):
//
//	tolerance (0.25), confLevel (0.98), direction (increase | decrease | either; default from
//	the check's direction), nanStrategy (remove | replace), outliers.strategy (remove | keep),
//	outliers.outlierFactor (3), effectSize.measure (meanRatio | cles),
//	effectSize.allowedIncrease / allowedDecrease / criticalIncrease / criticalDecrease,
//	critical, mustHaveData.
//
// Without effectSize thresholds, the check's tolerance becomes the allowed mean ratio
// (maxDeviationPercent 10 allows a ratio of 1.1), so a change within tolerance passes as it
// does with the other judges. It looks at each interval's value (a count check's rate per
// interval) and, like Kayenta, does nothing about repeated looks.
type mannWhitney struct {
	classifier    kayentaClassifier
	direction     string // "" follows the check
	nanStrategy   string
	outlierFactor float64 // 0 keeps outliers
	critical      bool
	mustHaveData  bool
	// Which effect-size thresholds were given; the others come from the check's tolerance.
	setIncrease, setDecrease bool
}

var mannWhitneyOptions = []string{
	"tolerance", "confLevel", "direction", "nanStrategy", "outliers.strategy", "outliers.outlierFactor",
	"effectSize.measure", "effectSize.allowedIncrease", "effectSize.allowedDecrease",
	"effectSize.criticalIncrease", "effectSize.criticalDecrease", "critical", "mustHaveData",
}

func newMannWhitney(opts Options) (Judge, error) {
	o := opts.flatten()
	if err := o.only(mannWhitneyOptions...); err != nil {
		return nil, err
	}
	m := mannWhitney{}
	k := &m.classifier
	var err error
	read := []func() error{
		func() (e error) { k.tolerance, e = o.between("tolerance", 0.25, 0, math.MaxFloat64, true); return },
		func() (e error) { k.confLevel, e = o.between("confLevel", 0.98, 0, 1, false); return },
		func() (e error) {
			m.direction, e = o.choice("direction", "", "", kayentaIncrease, kayentaDecrease, kayentaEither)
			return
		},
		func() (e error) { m.nanStrategy, e = o.choice("nanStrategy", nanRemove, nanRemove, nanReplace); return },
		func() error {
			strategy, e := o.choice("outliers.strategy", "keep", "keep", "remove")
			if e != nil {
				return e
			}
			factor, e := o.between("outliers.outlierFactor", 3, 0, math.MaxFloat64, false)
			if strategy == "remove" {
				m.outlierFactor = factor
			}
			return e
		},
		func() (e error) {
			k.measure, e = o.choice("effectSize.measure", measureMeanRatio, measureMeanRatio, measureCLES)
			return
		},
		func() (e error) { m.critical, e = o.bool("critical", false); return },
		func() (e error) { m.mustHaveData, e = o.bool("mustHaveData", false); return },
	}
	for _, r := range read {
		if err = r(); err != nil {
			return nil, err
		}
	}
	def := 1.0
	if k.measure == measureCLES {
		def = 0.5
	}
	for _, f := range []struct {
		key string
		to  *float64
		set *bool
	}{
		{"effectSize.allowedIncrease", &k.allowedIncrease, &m.setIncrease},
		{"effectSize.allowedDecrease", &k.allowedDecrease, &m.setDecrease},
		{"effectSize.criticalIncrease", &k.criticalIncrease, nil},
		{"effectSize.criticalDecrease", &k.criticalDecrease, nil},
	} {
		if *f.to, err = o.float(f.key, def); err != nil {
			return nil, err
		}
		if _, ok := o[f.key]; ok && f.set != nil {
			*f.set = true
		}
	}
	return m, nil
}

func (m mannWhitney) Judge(in Input) Result {
	canary := m.prepare(in.Canary)
	baseline := m.prepare(in.Baseline)
	k := m.classifier
	m.thresholdsFromCriteria(&k, in.Criteria, baseline)
	if in.Unit != "" {
		k.diff = UnitOf(in).Diff
	}
	direction := m.direction
	if direction == "" {
		direction = kayentaIncrease
		if in.Direction == HigherIsBetter {
			direction = kayentaDecrease
		}
	}
	c := k.classify(baseline, canary, direction, m.nanStrategy, m.critical, m.mustHaveData)
	r := Result{
		Canary:         Number(mean(canary)),
		Baseline:       Number(mean(baseline)),
		Classification: c.label,
		Stats: map[string]Number{
			"canaryCount":   Number(len(canary)),
			"baselineCount": Number(len(baseline)),
			"ratio":         Number(c.deviation),
		},
	}
	r.Deviation = Number(relativeChange(float64(r.Canary), float64(r.Baseline)))
	if c.tested {
		r.Stats["lower"] = Number(c.interval.Lower)
		r.Stats["upper"] = Number(c.interval.Upper)
		r.Stats["estimate"] = Number(c.interval.Estimate)
		r.Stats["effectSize"] = Number(c.effectSize)
		if z, err := wilcoxonDiff(0, 0, canary, baseline); err == nil {
			p := Number(math.Min(1, 2*normalSurvival(math.Abs(z))))
			r.PValue = &p
		}
	}
	r.Verdict, r.Reason = m.verdict(c, k, len(canary)+len(baseline) == 0)
	show, change := FormatValue, describeChange
	if in.Unit != "" { // the values in the check's unit; plain numbers otherwise
		u := UnitOf(in)
		show, change = u.Value, u.Change
	}
	r.Reason = fmt.Sprintf("%s (canary %s vs baseline %s, %s)", r.Reason,
		show(float64(r.Canary)), show(float64(r.Baseline)), change(float64(r.Canary), float64(r.Baseline)))
	return r
}

// verdict maps a classification to pass, fail or inconclusive. High and Low only happen in a
// direction Kayenta was told to watch, so both fail; missing data fails where Kayenta would
// fail the canary (critical or mustHaveData) and is inconclusive otherwise. perch never
// passes a check that had no data, even where Kayenta's replace strategy would.
func (m mannWhitney) verdict(c classification, k kayentaClassifier, empty bool) (Verdict, string) {
	reason := c.describe(k)
	switch c.label {
	case ClassHigh, ClassLow:
		return Fail, reason
	case ClassPass:
		if empty {
			return Inconclusive, "Pass by Kayenta's replace strategy, but there is no data at all"
		}
		return Pass, reason
	case ClassNodata:
		if c.critical {
			return Fail, reason + " (critical)"
		}
		return Inconclusive, reason
	case ClassNodataFailMetric:
		return Fail, reason + " (mustHaveData)"
	}
	return Inconclusive, reason
}

// prepare turns a series into the values Kayenta classifies: samples as they are, counts as
// the rate of each interval (NaN when the interval had no traffic); then NaNs and outliers.
func (m mannWhitney) prepare(s Series) []float64 {
	v := s.Values
	if s.IsCounts() {
		v = make([]float64, s.Len())
		for i := range v {
			v[i] = math.NaN()
			if s.Total[i] > 0 {
				v[i] = s.Events[i] / s.Total[i]
			}
		}
	}
	v = handleNaNs(v, m.nanStrategy)
	if m.outlierFactor > 0 {
		v = removeOutliers(v, m.outlierFactor)
	}
	return v
}

// thresholdsFromCriteria sets the allowed mean ratio from the check's tolerance where the
// options did not: a relative tolerance p allows 1 ± p/100, an absolute one a ± a/baseline,
// and with both a change must exceed both.
func (m mannWhitney) thresholdsFromCriteria(k *kayentaClassifier, c Criteria, baseline []float64) {
	if k.measure != measureMeanRatio {
		return
	}
	base := mean(baseline)
	var allowed []float64
	if c.MaxDeviationPercent != nil {
		allowed = append(allowed, *c.MaxDeviationPercent/100)
	}
	if c.MaxIncrease != nil && base > 0 {
		allowed = append(allowed, *c.MaxIncrease/base)
	}
	if len(allowed) == 0 {
		return
	}
	widest := allowed[0]
	for _, a := range allowed[1:] {
		widest = math.Max(widest, a)
	}
	if !m.setIncrease && c.Direction != HigherIsBetter {
		k.allowedIncrease = 1 + widest
	}
	if !m.setDecrease && c.Direction == HigherIsBetter {
		k.allowedDecrease = 1 - widest
	}
}
