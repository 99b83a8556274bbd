package metrics

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// A q-quantile estimated from n requests sits, on average, near the level q − 1/(n+1) rather
// than at q (the sample maximum of 4 requests is their 80th percentile, not their 99th), so a
// canary's p99 from a few requests is biased low against a baseline's from hundreds. Two sides'
// estimates are comparable when their levels differ by at most a tenth of the tail beyond q:
//
//	|1/(n_c+1) − 1/(n_b+1)| ≤ (1−q)/quantileTail.
//
// For a log-normal latency with log-sd 0.5 that bounds the bias between the sides at about 2% of
// the p99 or p95, well inside the usual 5–10% tolerance; equal sides are always comparable.
const quantileTail = 10

// quantileComparable reports whether a q-quantile from nc canary requests and one from nb
// baseline requests estimate the same level closely enough to compare.
func quantileComparable(q, nc, nb float64) bool {
	if nc < 1 || nb < 1 {
		return false
	}
	return math.Abs(1/(nc+1)-1/(nb+1)) <= (1-q)/quantileTail
}

// quantileNeed is how many requests the smaller side needs for its q-quantile to be comparable
// with one from the other side's n requests.
func quantileNeed(q, n float64) float64 {
	return math.Ceil(1/(1/(n+1)+(1-q)/quantileTail) - 1)
}

// quantileName is "p99" for 0.99.
func quantileName(q float64) string {
	return "p" + strconv.FormatFloat(q*100, 'f', -1, 64)
}

var (
	histogramQuantile = regexp.MustCompile(`histogram_quantile\(\s*([0-9]*\.?[0-9]+)\s*,`)
	statQuantile      = regexp.MustCompile(`(?:^|['"\s(,])[pP]([0-9]{1,2}(?:\.[0-9]+)?)(?:$|['"\s),])`)
)

// QuantileOf is the quantile a query's values estimate (0.99 for a p99), or 0 when it is not
// recognisably a quantile: a builtin latency_p99, PromQL's histogram_quantile(0.99, …), a
// CloudWatch metric with the statistic p99, or a metric-math expression asking for 'p99'. The
// engine can set Criteria.Quantile from it.
func QuantileOf(q Query) float64 {
	if measure, _, err := ParseBuiltinQuery(q); err == nil {
		if p, ok := strings.CutPrefix(measure, "latency_p"); ok {
			v, err := strconv.ParseFloat(p, 64)
			if err == nil {
				return v / 100
			}
		}
		return 0
	}
	if q.Metric != nil {
		return percentile(statQuantile.FindStringSubmatch(q.Metric.Stat))
	}
	if m := histogramQuantile.FindStringSubmatch(q.Expr); m != nil {
		v, err := strconv.ParseFloat(m[1], 64)
		if err == nil && v > 0 && v < 1 {
			return v
		}
		return 0
	}
	return percentile(statQuantile.FindStringSubmatch(q.Expr))
}

// percentile reads the percent a pNN match holds as a quantile.
func percentile(m []string) float64 {
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || v <= 0 || v >= 100 {
		return 0
	}
	return v / 100
}

// quantileGate marks the intervals (of n) whose two quantiles are not comparable, given each
// side's requests, and says why they were left out ("" when none were). An interval whose
// requests are unknown is kept: there is nothing to tell.
func quantileGate(q float64, n int, canary, baseline []float64) (left []bool, note string) {
	left = make([]bool, n)
	var count, seen int
	var nc, nb float64 // requests over the intervals left out
	for i := range min(n, len(canary), len(baseline)) {
		c, b := canary[i], baseline[i]
		if !finite(c) || !finite(b) {
			continue
		}
		seen++
		if !quantileComparable(q, c, b) {
			left[i] = true
			count++
			nc, nb = nc+c, nb+b
		}
	}
	if count == 0 {
		return left, ""
	}
	nc, nb = nc/float64(count), nb/float64(count)
	side, small, large := "canary", nc, nb
	if nb < nc {
		side, small, large = "baseline", nb, nc
	}
	return left, fmt.Sprintf("%d of %d intervals left out: the %s's %s rests on %s requests an interval against %s (about %s needed to compare the two %ss)",
		count, seen, side, quantileName(q), FormatValue(small), FormatValue(large), FormatValue(quantileNeed(q, large)), quantileName(q))
}
