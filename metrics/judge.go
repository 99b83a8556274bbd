package metrics

import (
	"fmt"
	"strings"
)

// Verdict is a judge's decision on one check.
type Verdict string

// The three verdicts. A metrics outage, too little data or NaN is Inconclusive, never Pass.
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
)

// Direction says which way a metric gets worse.
type Direction string

// The two directions of the rollout file.
const (
	LowerIsBetter  Direction = "lower_is_better"
	HigherIsBetter Direction = "higher_is_better"
)

// Series is what a check observed on one side (canary or baseline), in time order: sample
// values, counts per interval (Events out of Total, e.g. errors out of requests), or a
// histogram per interval (Buckets at Bounds).
type Series struct {
	Values []float64 `json:"values,omitempty"`
	Events []float64 `json:"events,omitempty"`
	Total  []float64 `json:"total,omitempty"`
	// Buckets[i][b] is how many requests of interval i took at most Bounds[b] (cumulative, as
	// Prometheus' le buckets: the increase of each bucket's counter over the interval). Bounds
	// ascend and the last is +Inf, so the last bucket counts every request.
	Buckets [][]float64 `json:"buckets,omitempty"`
	Bounds  Bounds      `json:"bounds,omitempty"`
}

// IsCounts reports whether the series holds counts rather than sample values.
func (s Series) IsCounts() bool { return s.Events != nil || s.Total != nil }

// IsHistogram reports whether the series holds a histogram per interval.
func (s Series) IsHistogram() bool { return s.Buckets != nil }

// Len is the number of intervals observed.
func (s Series) Len() int {
	switch {
	case s.IsCounts():
		return min(len(s.Events), len(s.Total))
	case s.IsHistogram():
		return len(s.Buckets)
	}
	return len(s.Values)
}

// Criteria are what a check counts as harm: the direction and the tolerances.
type Criteria struct {
	Direction           Direction `json:"direction,omitempty"`
	MaxDeviationPercent *float64  `json:"maxDeviationPercent,omitempty"` // relative tolerance, percent of baseline
	MaxIncrease         *float64  `json:"maxIncrease,omitempty"`         // absolute tolerance, in the metric's unit
	// Quantile is the quantile a sample check's values estimate (0.99 for a p99; 0 when they
	// are not quantiles). With each side's requests (Input.Traffic), the sequential judge
	// leaves out intervals where one side has too few requests for its quantile to compare
	// with the other's, and says so. QuantileOf reads it from a query.
	Quantile float64 `json:"quantile,omitempty"`
	// Family is how many tests share one false-alarm budget: the engine passes its checks
	// times its analysed steps, so the budget holds per rollout. Judges that control a
	// false-alarm rate split it across the family; 0 or 1 means this test alone.
	Family int `json:"family,omitempty"`
	// Unit is what the values are measured in ("s", "%", "req/s"; "%" for a rate written as a
	// percentage), for the numbers in a Result's reason (see Unit); empty: plain numbers.
	Unit string `json:"unit,omitempty"`
}

// Input is everything a judge sees of one check at one look.
type Input struct {
	Criteria
	Canary   Series
	Baseline Series
	// Traffic, when set, is the traffic behind the check: the weights the router was set to
	// (the sequential judge holds, inconclusive, when the canary's share of requests is far
	// from its weight) and, for a sample check, each side's requests per interval.
	Traffic *Traffic `json:"traffic,omitempty"`
}

// Result is a judge's verdict on one check, with the statistics behind it.
type Result struct {
	Verdict Verdict `json:"verdict"`
	// Reason is one line a human can act on: the numbers that decided.
	Reason string `json:"reason"`
	// Canary and Baseline are the judge's summary of each side (a mean, or a rate for counts).
	Canary   Number `json:"canary"`
	Baseline Number `json:"baseline"`
	// Deviation is the relative change of canary against baseline, in percent (NaN if undefined).
	Deviation Number `json:"deviation"`
	// PValue is the evidence of harm, for statistical judges (always valid for sequential).
	PValue *Number `json:"pValue,omitempty"`
	// DecidedAt is the index of the look (0-based) at which a sequential verdict became final.
	DecidedAt *int `json:"decidedAt,omitempty"`
	// Classification is the Mann-Whitney classifier's label (High, Low, Pass, Nodata, NodataFailMetric).
	Classification string `json:"classification,omitempty"`
	// Stats holds further judge-specific figures by name.
	Stats map[string]Number `json:"stats,omitempty"`
}

// Judge decides one check from its input. Implementations are pure and safe to share.
type Judge interface {
	Judge(in Input) Result
}

// Options are judge-specific parameters from a rollout file or `perch analyze` input.
type Options map[string]any

// Names lists the judges perch knows, sorted.
func Names() []string { return []string{"mannwhitney", "sequential", "threshold"} }

// New builds the named judge with its options, or says what is wrong with them.
func New(name string, opts Options) (Judge, error) {
	switch name {
	case "threshold":
		return newThreshold(opts)
	case "mannwhitney":
		return newMannWhitney(opts)
	case "sequential":
		return newSequential(opts)
	}
	return nil, fmt.Errorf("unknown judge %q (want one of %s)", name, strings.Join(Names(), ", "))
}
