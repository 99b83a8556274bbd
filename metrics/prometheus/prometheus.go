// Package prometheus answers perch's metric queries from a Prometheus server's HTTP API with
// range queries (client_golang's api/prometheus/v1).
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/perchhq/perch/metrics"
)

// maxPoints is the most points Prometheus returns per series from one range query.
const maxPoints = 11000

// Source runs PromQL range queries against one Prometheus server. It is safe for concurrent
// use.
type Source struct {
	address string
	api     v1.API
}

// New connects to the Prometheus HTTP API at address ("http://prometheus:9090"). client may be
// nil for http.DefaultTransport's settings.
func New(address string, client *http.Client) (*Source, error) {
	if !strings.HasPrefix(address, "http://") && !strings.HasPrefix(address, "https://") {
		return nil, fmt.Errorf("prometheus address %q: want http://HOST:PORT or https://…", address)
	}
	c, err := api.NewClient(api.Config{Address: address, Client: client})
	if err != nil {
		return nil, fmt.Errorf("prometheus address %q: %w", address, err)
	}
	return &Source{address: address, api: v1.NewAPI(c)}, nil
}

// WarningsError is a query's answer that came with warnings from Prometheus: the data may be
// partial (a store that did not answer, samples dropped), so it is not to be judged as if it
// were whole. Samples holds what came back, for whoever wants to look anyway.
type WarningsError struct {
	Query    string
	Warnings []string
	Samples  []metrics.Sample
}

func (e *WarningsError) Error() string {
	return fmt.Sprintf("query %q: prometheus warned the answer may be partial: %s", e.Query, strings.Join(e.Warnings, "; "))
}

// Samples evaluates q.Expr from start to end at every step and returns one sample per step, in
// time order. A step the query had no value for is NaN,
// so the canary's and the baseline's series line up by index; NaN and ±Inf from Prometheus
// itself pass through (judges count non-finite values as missing). A query with "increase(" in
// it counts events, so its values are rounded to whole numbers: increase() extrapolates to the
// window's edges and answers 2.07 for 2 requests.
//
// A query that matches no series is metrics.ErrNoData; one that matches several is an error
// naming it, since a check compares one number per side. Warnings make a *WarningsError.
// The context's deadline is also sent to Prometheus as the query's timeout.
func (s *Source) Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	matrix, warnings, err := s.rangeQuery(ctx, q, start, end, step)
	if err != nil {
		return nil, err
	}
	expr := q.Expr
	switch len(matrix) {
	case 0:
		return nil, noSeries(expr, start, end)
	case 1:
	default:
		return nil, fmt.Errorf("query %q returned %d series (%s): aggregate it to one, e.g. sum(…)", expr, len(matrix), seriesNames(matrix))
	}
	samples := onGrid(matrix[0].Values, start, end, step, strings.Contains(expr, "increase("))
	if len(warnings) > 0 {
		return nil, &WarningsError{Query: expr, Warnings: warnings, Samples: samples}
	}
	return samples, nil
}

func noSeries(expr string, start, end time.Time) error {
	return fmt.Errorf("query %q: %w (it matched no series between %s and %s)", expr, metrics.ErrNoData,
		start.Format(time.RFC3339), end.Format(time.RFC3339))
}

// rangeQuery evaluates q.Expr from start to end at every step.
func (s *Source) rangeQuery(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) (model.Matrix, v1.Warnings, error) {
	expr := q.Expr
	switch {
	case q.Metric != nil:
		return nil, nil, fmt.Errorf("%s: the prometheus source answers PromQL expressions, not CloudWatch metrics", q)
	case strings.TrimSpace(expr) == "":
		return nil, nil, errors.New("prometheus query: empty expression")
	case step <= 0:
		return nil, nil, fmt.Errorf("query %q: step %s: want a positive step", expr, step)
	case end.Before(start):
		return nil, nil, fmt.Errorf("query %q: window %s to %s has not begun: %w", expr, start.Format(time.RFC3339), end.Format(time.RFC3339), metrics.ErrNoData)
	case end.Sub(start)/step >= maxPoints:
		return nil, nil, fmt.Errorf("query %q: %s at a %s step is more than Prometheus's %d points per series", expr, end.Sub(start), step, maxPoints)
	}
	var opts []v1.Option
	if deadline, ok := ctx.Deadline(); ok {
		// Whole seconds: Prometheus 2.x cannot parse Go's "59.98s" in the timeout parameter.
		if left := time.Until(deadline).Truncate(time.Second); left > 0 {
			opts = append(opts, v1.WithTimeout(left))
		}
	}
	value, warnings, _, err := s.api.QueryRange(ctx, expr, v1.Range{Start: start, End: end, Step: step}, opts...)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return nil, nil, fmt.Errorf("query %q on %s: %w", expr, s.address, err)
	}
	matrix, ok := value.(model.Matrix)
	if !ok {
		return nil, nil, fmt.Errorf("query %q: want a range vector, got a %s", expr, value.Type())
	}
	return matrix, warnings, nil
}

// Histogram evaluates a bucket query, one series per le label (e.g. sum by (le)
// (increase(http_request_duration_seconds_bucket{version="canary"}[1m]))), from start to end
// at every step, and returns each step's counts at the le bounds in ascending order, +Inf
// last. Values are rounded as Samples rounds counts. A step where no bucket has a value is a
// point without counts (no data for that interval).
//
// The series must be one histogram: each with an le label that is a number or +Inf, no le
// twice (buckets not aggregated by le), an le="+Inf" bucket, and at every step either all
// buckets or none with a value and counts that grow with le. Anything else is an error naming
// the query, since buckets from histograms of different layouts cannot be compared. No series
// is metrics.ErrNoData; warnings make a *WarningsError.
func (s *Source) Histogram(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) (metrics.Histogram, error) {
	matrix, warnings, err := s.rangeQuery(ctx, q, start, end, step)
	if err != nil {
		return metrics.Histogram{}, err
	}
	expr := q.Expr
	if len(matrix) == 0 {
		return metrics.Histogram{}, noSeries(expr, start, end)
	}
	type bucket struct {
		le     float64
		series *model.SampleStream
	}
	buckets := make([]bucket, 0, len(matrix))
	for _, ss := range matrix {
		le, ok := ss.Metric[model.BucketLabel]
		if !ok {
			return metrics.Histogram{}, fmt.Errorf("query %q returned series %s without an le label: a histogram check wants one series per bucket, "+
				"e.g. sum by (le) (increase(…_bucket[1m]))", expr, ss.Metric)
		}
		bound, err := metrics.ParseBound(string(le))
		if err != nil {
			return metrics.Histogram{}, fmt.Errorf("query %q: series %s: %w", expr, ss.Metric, err)
		}
		buckets = append(buckets, bucket{le: bound, series: ss})
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].le < buckets[j].le })
	h := metrics.Histogram{Bounds: make(metrics.Bounds, len(buckets))}
	for i, b := range buckets {
		if i > 0 && b.le == buckets[i-1].le {
			return metrics.Histogram{}, fmt.Errorf("query %q returned several series for le=%q (%s, %s): aggregate them to one histogram, "+
				"e.g. sum by (le) (…)", expr, b.series.Metric[model.BucketLabel], buckets[i-1].series.Metric, b.series.Metric)
		}
		h.Bounds[i] = b.le
	}
	if !math.IsInf(h.Bounds[len(h.Bounds)-1], 1) {
		return metrics.Histogram{}, fmt.Errorf("query %q returned no le=\"+Inf\" bucket (bounds %v): a histogram's buckets end with +Inf, which counts every request",
			expr, h.Bounds)
	}
	round := strings.Contains(expr, "increase(")
	grids := make([][]metrics.Sample, len(buckets))
	for i, b := range buckets {
		grids[i] = onGrid(b.series.Values, start, end, step, round)
	}
	for t := range grids[0] {
		p := metrics.HistogramPoint{Time: grids[0][t].Time}
		missing := 0
		for _, g := range grids {
			if v := g[t].Value; math.IsNaN(v) || math.IsInf(v, 0) {
				missing++
			}
		}
		switch missing {
		case len(grids):
			h.Points = append(h.Points, p)
			continue
		case 0:
		default:
			return metrics.Histogram{}, fmt.Errorf("query %q: at %s %d of its %d buckets have no value: the series are not one histogram's buckets over the window",
				expr, p.Time.Format(time.RFC3339), missing, len(grids))
		}
		p.Counts = make([]float64, len(grids))
		for b, g := range grids {
			p.Counts[b] = g[t].Value
			if b > 0 && p.Counts[b] < p.Counts[b-1]-1e-9*math.Abs(p.Counts[b-1]) {
				return metrics.Histogram{}, fmt.Errorf("query %q: at %s le=%s counts %s but le=%s %s: a histogram's buckets count every request at most their bound, "+
					"so the counts grow with le (are these buckets of histograms with different layouts?)", expr, p.Time.Format(time.RFC3339),
					metrics.FormatValue(h.Bounds[b-1]), metrics.FormatValue(p.Counts[b-1]), metrics.FormatValue(h.Bounds[b]), metrics.FormatValue(p.Counts[b]))
			}
		}
		h.Points = append(h.Points, p)
	}
	if len(warnings) > 0 {
		return metrics.Histogram{}, &WarningsError{Query: expr, Warnings: warnings}
	}
	return h, nil
}

// onGrid places Prometheus's points on the steps start, start+step, … ≤ end, NaN where a step
// has none. Every sample carries its step's time (start rounded to the millisecond, as
// Prometheus rounds it), so the series of different queries over one window pair up exactly.
func onGrid(points []model.SamplePair, start, end time.Time, step time.Duration, round bool) []metrics.Sample {
	first := start.Round(time.Millisecond)
	n := int(end.Sub(first)/step) + 1
	out := make([]metrics.Sample, n)
	for i := range out {
		out[i] = metrics.Sample{Time: first.Add(time.Duration(i) * step), Value: math.NaN()}
	}
	for _, p := range points {
		i := int(math.Round(float64(p.Timestamp.Time().Sub(first)) / float64(step)))
		if i < 0 || i >= n {
			continue
		}
		v := float64(p.Value)
		if round && !math.IsNaN(v) && !math.IsInf(v, 0) {
			v = math.Round(v)
		}
		out[i].Value = v
	}
	return out
}

// seriesNames lists up to three series' labels for an error message.
func seriesNames(m model.Matrix) string {
	var names []string
	for _, s := range m {
		names = append(names, s.Metric.String())
	}
	sort.Strings(names)
	if len(names) > 3 {
		names = append(names[:3], "…")
	}
	return strings.Join(names, ", ")
}
