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
	expr := q.Expr
	switch {
	case q.Metric != nil:
		return nil, fmt.Errorf("%s: the prometheus source answers PromQL expressions, not CloudWatch metrics", q)
	case strings.TrimSpace(expr) == "":
		return nil, errors.New("prometheus query: empty expression")
	case step <= 0:
		return nil, fmt.Errorf("query %q: step %s: want a positive step", expr, step)
	case end.Before(start):
		return nil, fmt.Errorf("query %q: window %s to %s has not begun: %w", expr, start.Format(time.RFC3339), end.Format(time.RFC3339), metrics.ErrNoData)
	case end.Sub(start)/step >= maxPoints:
		return nil, fmt.Errorf("query %q: %s at a %s step is more than Prometheus's %d points per series", expr, end.Sub(start), step, maxPoints)
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
		return nil, fmt.Errorf("query %q on %s: %w", expr, s.address, err)
	}
	matrix, ok := value.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("query %q: want a range vector, got a %s", expr, value.Type())
	}
	switch len(matrix) {
	case 0:
		return nil, fmt.Errorf("query %q: %w (it matched no series between %s and %s)", expr, metrics.ErrNoData,
			start.Format(time.RFC3339), end.Format(time.RFC3339))
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
