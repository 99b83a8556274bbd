package metrics

import (
	"fmt"
	"regexp"
	"slices"
)

// The proxy's own measures, as a builtin metrics source answers them. Counts (requests,
// errors) are per query step; latencies are in seconds; throughput is requests per second.
const (
	MeasureRequests   = "requests"
	MeasureErrors     = "errors"
	MeasureLatencyP50 = "latency_p50"
	MeasureLatencyP95 = "latency_p95"
	MeasureLatencyP99 = "latency_p99"
	MeasureThroughput = "throughput"
	// MeasureLatencyHistogram is a histogram measure: it is asked with Histogram, not Samples.
	MeasureLatencyHistogram = "latency_histogram"
)

// The two versions the proxy labels its observations with.
const (
	VersionCanary = "canary"
	VersionStable = "stable"
)

// builtinMeasures lists every measure a builtin source answers.
func builtinMeasures() []string {
	return []string{MeasureRequests, MeasureErrors, MeasureLatencyP50, MeasureLatencyP95, MeasureLatencyP99, MeasureThroughput, MeasureLatencyHistogram}
}

// BuiltinQuery is the query for one of the proxy's measures on one version, written the way
// the proxy exports it: errors{version="canary"}.
func BuiltinQuery(measure, version string) Query {
	return Query{Expr: fmt.Sprintf("%s{version=%q}", measure, version)}
}

var builtinQuery = regexp.MustCompile(`^([a-z0-9_]+)\{version="(canary|stable)"\}$`)

// ParseBuiltinQuery splits a builtin query into its measure and version.
func ParseBuiltinQuery(q Query) (measure, version string, err error) {
	m := builtinQuery.FindStringSubmatch(q.Expr)
	if m == nil || !slices.Contains(builtinMeasures(), m[1]) {
		return "", "", fmt.Errorf("not a builtin query: %q (want MEASURE{version=\"canary|stable\"}, MEASURE one of %v)", q.Expr, builtinMeasures())
	}
	return m[1], m[2], nil
}
