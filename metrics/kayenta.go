package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// The Mann-Whitney classifier's labels, as Kayenta names them.
const (
	ClassPass             = "Pass"
	ClassHigh             = "High"
	ClassLow              = "Low"
	ClassNodata           = "Nodata"
	ClassNodataFailMetric = "NodataFailMetric"
	ClassError            = "Error"
)

// Kayenta's directions: which change of the canary is a problem.
const (
	kayentaIncrease = "increase"
	kayentaDecrease = "decrease"
	kayentaEither   = "either"
)

// Kayenta's NaN strategies: drop NaN values, or count them as zero.
const (
	nanRemove  = "remove"
	nanReplace = "replace"
)

// Effect size measures: the ratio of means (canary/baseline), or the common-language effect
// size (the chance that a canary value exceeds a baseline value).
const (
	measureMeanRatio = "meanRatio"
	measureCLES      = "cles"
)

// kayentaClassifier is Kayenta's MannWhitneyClassifier: a rank-sum confidence interval of the
// shift canary − baseline must clear ±tolerance·|estimate|, and the effect size must reach its
// allowed increase or decrease, for the canary to be High or Low.
type kayentaClassifier struct {
	tolerance        float64
	confLevel        float64
	allowedDecrease  float64
	allowedIncrease  float64
	criticalDecrease float64
	criticalIncrease float64
	measure          string
	// diff writes a difference of values (the shift, its interval) in a reason; nil writes a
	// plain number.
	diff func(float64) string
}

// classification is the classifier's answer with the figures behind it.
type classification struct {
	label      string
	reason     string
	deviation  float64 // mean ratio canary/baseline (NaN if a mean is zero)
	critical   bool
	effectSize float64
	interval   shiftInterval
	tested     bool // the rank-sum interval was computed
}

// classify labels experiment (canary) against control (baseline), which have already had
// NaNs and outliers handled; nanStrategy only decides what missing data means, as in Kayenta.
func (k kayentaClassifier) classify(control, experiment []float64, direction, nanStrategy string, critical, mustHaveData bool) classification {
	if len(experiment) == 0 || len(control) == 0 {
		if nanStrategy == nanReplace {
			return classification{label: ClassPass, deviation: 1}
		}
		reason := "missing data for the canary"
		if len(experiment) > 0 {
			reason = "missing data for the baseline"
		}
		if mustHaveData && !critical {
			return classification{label: ClassNodataFailMetric, reason: reason, deviation: 1}
		}
		return classification{label: ClassNodata, reason: reason, deviation: 1, critical: critical}
	}
	if sameValues(experiment, control) {
		return classification{label: ClassPass, reason: "the canary and baseline data are identical", deviation: 1}
	}
	if distinct(append(slices.Clone(experiment), control...)) == 1 {
		return classification{label: ClassPass, deviation: 1}
	}
	c, err := k.compare(control, experiment, direction)
	if err != nil {
		return classification{label: ClassError, reason: "classification failed: " + err.Error(), deviation: math.NaN()}
	}
	ignoreEffect := math.IsNaN(c.effectSize)
	switch {
	case critical && c.label == ClassHigh && (ignoreEffect || c.effectSize >= k.criticalIncrease):
		c.critical = true
	case critical && c.label == ClassLow && (ignoreEffect || c.effectSize <= k.criticalDecrease):
		c.critical = true
	}
	return c
}

// compare runs the rank-sum interval and checks the size of the effect.
func (k kayentaClassifier) compare(control, experiment []float64, direction string) (classification, error) {
	if distinct(experiment) == 1 && distinct(control) == 1 {
		// Two constant samples have no rank variance at the ends of the search range; Kayenta
		// adds Gaussian noise of 1e-5 of the value. A fixed seed keeps the judge deterministic.
		rng := rand.New(rand.NewPCG(0x6b617965, 0x6e7461))
		experiment = withNoise(experiment, rng)
		control = withNoise(control, rng)
	}
	iv, err := rankSumInterval(experiment, control, k.confLevel)
	if err != nil {
		return classification{}, err
	}
	c := classification{interval: iv, tested: true, deviation: meanRatio(control, experiment)}
	c.effectSize = c.deviation
	if k.measure == measureCLES {
		c.effectSize = cles(control, experiment)
	}
	bound := k.tolerance * math.Abs(iv.Estimate)
	effectUnknown := math.IsNaN(c.effectSize)
	high := (direction == kayentaIncrease || direction == kayentaEither) && iv.Lower > bound &&
		(effectUnknown || c.effectSize >= k.allowedIncrease)
	low := (direction == kayentaDecrease || direction == kayentaEither) && iv.Upper < -bound &&
		(effectUnknown || c.effectSize <= k.allowedDecrease)
	switch {
	case high:
		c.label = ClassHigh
	case low:
		c.label = ClassLow
	default:
		c.label = ClassPass
	}
	return c, nil
}

func withNoise(v []float64, rng *rand.Rand) []float64 {
	sd := math.Abs(v[0] * 1e-5)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x + rng.NormFloat64()*sd
	}
	return out
}

// meanRatio is mean(experiment)/mean(control), NaN when either mean is zero.
func meanRatio(control, experiment []float64) float64 {
	c, e := mean(control), mean(experiment)
	if c == 0 || e == 0 {
		return math.NaN()
	}
	return e / c
}

// cles is the common-language effect size (Vargha and Delaney's A): the share of
// (experiment, control) pairs in which the experiment value is higher, ties counting half.
func cles(control, experiment []float64) float64 {
	m, n := float64(len(experiment)), float64(len(control))
	r1, _ := rankSum(experiment, control)
	return (2*r1 - m*(m+1)) / (2 * n * m)
}

// sameValues reports whether a and b hold the same values, in any order.
func sameValues(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	sort.Float64s(x)
	sort.Float64s(y)
	return slices.Equal(x, y)
}

func distinct(v []float64) int {
	seen := make(map[float64]bool, len(v))
	for _, x := range v {
		seen[x] = true
	}
	return len(seen)
}

// removeOutliers drops values outside Kayenta's fences with reduced sensitivity: below
// min(p1, Q1 − factor·IQR) or above max(p99, Q3 + factor·IQR).
func removeOutliers(v []float64, factor float64) []float64 {
	p25, p75 := percentileR7(v, 25), percentileR7(v, 75)
	iqr := p75 - p25
	lower := math.Min(percentileR7(v, 1), p25-factor*iqr)
	upper := math.Max(percentileR7(v, 99), p75+factor*iqr)
	out := v[:0:0]
	for _, x := range v {
		if !(x > upper || x < lower) {
			out = append(out, x)
		}
	}
	return out
}

// handleNaNs applies a NaN strategy; ±Inf counts as NaN (Prometheus can answer +Inf).
func handleNaNs(v []float64, strategy string) []float64 {
	out := make([]float64, 0, len(v))
	for _, x := range v {
		switch {
		case finite(x):
			out = append(out, x)
		case strategy == nanReplace:
			out = append(out, 0)
		}
	}
	return out
}

// describe is the classification in one line, for a Result's reason.
func (c classification) describe(k kayentaClassifier) string {
	if !c.tested {
		if c.reason != "" {
			return c.label + ": " + c.reason
		}
		return c.label
	}
	label := c.label
	if c.critical {
		label += " (critical)"
	}
	effect := fmt.Sprintf("mean ratio %s", FormatValue(c.effectSize))
	if k.measure == measureCLES {
		effect = fmt.Sprintf("CLES %s", FormatValue(c.effectSize))
	}
	diff := FormatValue
	if k.diff != nil {
		diff = k.diff
	}
	size := func(v float64) string { return strings.TrimLeft(diff(v), "+-") }
	return fmt.Sprintf("%s: shift %s, %g%% interval [%s, %s] against ±%s (tolerance %g of the estimate); %s (allowed %s–%s)",
		label, diff(c.interval.Estimate), k.confLevel*100, diff(c.interval.Lower), diff(c.interval.Upper),
		size(k.tolerance*math.Abs(c.interval.Estimate)), k.tolerance, effect,
		FormatValue(k.allowedDecrease), FormatValue(k.allowedIncrease))
}
