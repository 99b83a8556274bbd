// Package metrics holds what perch measures and how it judges it: samples, queries, and the
// judges that turn a canary's and a baseline's series into pass, fail or inconclusive.
//
// Judges are pure functions of their input: no I/O, no clock. Sources of samples live in
// subpackages (metrics/prometheus, metrics/cloudwatch, metrics/datadog, metrics/newrelic,
// metrics/web) and in providers/proxy.
package metrics

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
)

// ErrNoData is returned by a source whose query matched nothing in the window.
var ErrNoData = errors.New("no data")

// Sample is one observation of a metric at a point in time.
type Sample struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// Query names what a source should measure: an expression in the source's own language
// (PromQL, a CloudWatch metric-math expression, a builtin measure) or a CloudWatch metric.
type Query struct {
	Expr   string      `json:"expr,omitempty"`
	Metric *MetricStat `json:"metric,omitempty"`
	// Check and Side say where the query is written: the check's name, and "canary" or
	// "baseline". A source that asks by name rather than by expression (web) sends them along.
	// Loading a rollout fills them in; journals do not record them.
	Check string `json:"-"`
	Side  string `json:"-"`
}

// IsZero reports whether the query names nothing.
func (q Query) IsZero() bool { return q.Expr == "" && q.Metric == nil }

// String is a short human form of the query, for messages.
func (q Query) String() string {
	if q.Metric != nil {
		return q.Metric.Namespace + "/" + q.Metric.MetricName + " " + q.Metric.Stat
	}
	return q.Expr
}

// MetricStat is a CloudWatch metric and the statistic to take of it each period.
type MetricStat struct {
	Namespace  string      `json:"namespace"`
	MetricName string      `json:"metricName"`
	Dimensions []Dimension `json:"dimensions,omitempty"`
	Stat       string      `json:"stat"`
	Unit       string      `json:"unit,omitempty"`
}

// Dimension is one CloudWatch dimension name and value.
type Dimension struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Number is a float64 that survives JSON: NaN and ±Inf are written as null and null reads
// back as NaN, so a journal line never fails to encode because a metric had no data.
type Number float64

// MarshalJSON writes finite values as numbers and anything else as null.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (n *Number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Number(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Number(f)
	return nil
}

// Valid reports whether the number is finite.
func (n Number) Valid() bool { return !math.IsNaN(float64(n)) && !math.IsInf(float64(n), 0) }
