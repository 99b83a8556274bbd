// Package datadog answers perch's metric queries from Datadog's metrics, with the official
// client (github.com/DataDog/datadog-api-client-go/v2): a check's query is a Datadog metric
// query ("sum:trace.http.request.errors{version:canary}.as_count()"), asked for as a time
// series at the analysis interval.
//
// It uses the v2 timeseries query API (POST /api/v2/query/timeseries,
// https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-data-across-multiple-products)
// rather than v1's GET /api/v1/query: v2 takes the interval the points are rolled up to as a
// field of the request, so every query is answered on the analysis interval's buckets
// without rewriting the user's query with a .rollup(); v1 picks the rollup from the length
// of the window.
package datadog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV2"

	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/internal/apicall"
	"github.com/perchhq/perch/metrics/internal/window"
)

// DefaultSite is the site of Datadog's US1 region.
const DefaultSite = "datadoghq.com"

// Config says which Datadog to ask and how.
type Config struct {
	// Site is the Datadog site (datadoghq.com, datadoghq.eu, us3.datadoghq.com, …); the API
	// is at https://api.SITE. Empty: DefaultSite.
	Site string
	// APIKey and AppKey are sent as DD-API-KEY and DD-APPLICATION-KEY.
	APIKey, AppKey string
	// Address replaces https://api.SITE (scheme://host, perhaps with a path prefix): a proxy,
	// a regional endpoint, or a test server.
	Address string
	Limits  apicall.Limits
}

// Source runs Datadog metric queries. It is safe for concurrent use.
type Source struct {
	api    *datadogV2.MetricsApi
	keys   map[string]datadog.APIKey
	server []any // the context values that pick the server: index and variables
	base   string
	limits apicall.Limits
}

// New checks cfg and makes a source; it does not call Datadog.
func New(cfg Config) (*Source, error) {
	if cfg.APIKey == "" || cfg.AppKey == "" {
		return nil, errors.New("Datadog: an API key and an application key are both needed")
	}
	site := cfg.Site
	if site == "" {
		site = DefaultSite
	}
	if strings.ContainsAny(site, "/:") {
		return nil, fmt.Errorf("Datadog site %q: want a site name such as datadoghq.eu; an endpoint goes in address", site)
	}
	// The client's servers: 1 is "{protocol}://{name}", 2 is "https://{subdomain}.{site}" for
	// any site (0 takes only the sites the client knew when it was released).
	s := &Source{server: []any{datadog.ContextServerIndex, 2, datadog.ContextServerVariables, map[string]string{"site": site}},
		base: "https://api." + site, limits: cfg.Limits}
	if cfg.Address != "" {
		u, err := url.Parse(cfg.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("Datadog address %q: want https://HOST[:PORT][/PATH]", cfg.Address)
		}
		name := u.Host + strings.TrimRight(u.Path, "/")
		s.server = []any{datadog.ContextServerIndex, 1, datadog.ContextServerVariables, map[string]string{"protocol": u.Scheme, "name": name}}
		s.base = u.Scheme + "://" + name
	}
	s.keys = map[string]datadog.APIKey{"apiKeyAuth": {Key: cfg.APIKey}, "appKeyAuth": {Key: cfg.AppKey}}
	conf := datadog.NewConfiguration()
	conf.HTTPClient = cfg.Limits.Client()
	// perch retries rate limits itself, within the look (apicall.Limits.Retry); the client's
	// own retries would wait past it, and retry 5xx answers the next look asks again anyway.
	conf.RetryConfiguration.EnableRetry = false
	conf.UserAgent = "perch " + conf.UserAgent
	s.api = datadogV2.NewMetricsApi(datadog.NewAPIClient(conf))
	return s, nil
}

// String names the API the source asks, for validate --check-access.
func (s *Source) String() string { return "Datadog at " + s.base }

// queryName names the one query of a request, which its one formula returns.
const queryName = "a"

// Samples asks for q.Expr rolled up to step over the step-long buckets that end inside
// [start, end], and returns one sample per bucket that has a value, stamped with the bucket's
// end (as a Prometheus range query stamps each point with the end of what it measured).
// Values of a query with .as_count() are counts, rounded to whole numbers. Buckets without a
// value are left out; when none has one, or the query matches no series, the error is
// metrics.ErrNoData. A query that returns several series (a "by {…}") is an error.
func (s *Source) Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	expr := strings.TrimSpace(q.Expr)
	switch {
	case q.Metric != nil:
		return nil, fmt.Errorf("%s: the datadog source answers Datadog metric queries, not CloudWatch metrics", q)
	case expr == "":
		return nil, errors.New("Datadog: empty query")
	case step < time.Millisecond:
		return nil, fmt.Errorf("Datadog query %q: step %s is too short", expr, step)
	}
	from, to, ok := window.Buckets(start, end, step)
	if !ok {
		return nil, fmt.Errorf("Datadog query %q: %w (no whole interval in the window yet)", expr, metrics.ErrNoData)
	}
	body := datadogV2.TimeseriesFormulaQueryRequest{Data: datadogV2.TimeseriesFormulaRequest{
		Type: datadogV2.TIMESERIESFORMULAREQUESTTYPE_TIMESERIES_REQUEST,
		Attributes: datadogV2.TimeseriesFormulaRequestAttributes{
			From: from.UnixMilli(), To: to.UnixMilli(), Interval: datadog.PtrInt64(step.Milliseconds()),
			Formulas: []datadogV2.QueryFormula{{Formula: queryName}},
			Queries: []datadogV2.TimeseriesQuery{datadogV2.MetricsTimeseriesQueryAsTimeseriesQuery(&datadogV2.MetricsTimeseriesQuery{
				DataSource: datadogV2.METRICSDATASOURCE_METRICS, Query: expr, Name: datadog.PtrString(queryName),
			})},
		},
	}}
	callCtx := context.WithValue(ctx, datadog.ContextAPIKeys, s.keys)
	for i := 0; i+1 < len(s.server); i += 2 {
		callCtx = context.WithValue(callCtx, s.server[i], s.server[i+1])
	}
	var resp datadogV2.TimeseriesFormulaQueryResponse
	err := s.limits.Retry(ctx, func() error {
		var httpResp *http.Response
		var err error
		resp, httpResp, err = s.api.QueryTimeseriesData(callCtx, body)
		return explain(httpResp, err)
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return nil, fmt.Errorf("Datadog query %q: %w", expr, err)
	}
	if msg := printable.Line(strings.TrimSpace(resp.GetErrors())); msg != "" {
		return nil, fmt.Errorf("Datadog query %q: Datadog: %s", expr, cut(msg))
	}
	return samples(expr, resp.GetData().Attributes, from, to, step)
}

// explain turns the client's error into one line: an error status as an
// *apicall.StatusError (rate limits included, so they are retried), anything else without the
// request's URL.
func explain(resp *http.Response, err error) error {
	if err == nil {
		return nil
	}
	var oe datadog.GenericOpenAPIError
	if resp != nil && resp.StatusCode >= 300 && errors.As(err, &oe) {
		msg := string(oe.Body())
		if m, ok := oe.Model().(datadogV2.APIErrorResponse); ok && len(m.Errors) > 0 {
			msg = strings.Join(m.Errors, "; ")
		}
		return apicall.NewStatusError("Datadog", resp, msg)
	}
	if errors.As(err, &oe) && resp != nil {
		return fmt.Errorf("Datadog's answer is not the timeseries JSON expected: %s", cut(printable.Line(oe.Error())))
	}
	return fmt.Errorf("Datadog: %w", apicall.Unwrap(err))
}

// samples reads the one series of an answer onto the window's buckets.
func samples(expr string, attrs *datadogV2.TimeseriesResponseAttributes, from, to time.Time, step time.Duration) ([]metrics.Sample, error) {
	if attrs == nil || len(attrs.Series) == 0 {
		return nil, fmt.Errorf("Datadog query %q: %w (it matched no series between %s and %s)", expr, metrics.ErrNoData,
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if len(attrs.Series) > 1 {
		var names []string
		for _, s := range attrs.Series {
			names = append(names, "{"+strings.Join(s.GroupTags, ",")+"}")
		}
		sort.Strings(names)
		if len(names) > 3 {
			names = append(names[:3], "…")
		}
		return nil, fmt.Errorf("Datadog query %q returned %d series (%s): aggregate it to one (drop the \"by {…}\")", expr,
			len(attrs.Series), cut(printable.Line(strings.Join(names, ", "))))
	}
	if len(attrs.Values) == 0 {
		return nil, fmt.Errorf("Datadog query %q: %w (its series has no values)", expr, metrics.ErrNoData)
	}
	values := attrs.Values[0]
	if len(values) != len(attrs.Times) {
		return nil, fmt.Errorf("Datadog query %q: the answer has %d times and %d values", expr, len(attrs.Times), len(values))
	}
	for i := 1; i < len(attrs.Times); i++ {
		if got := time.Duration(attrs.Times[i]-attrs.Times[i-1]) * time.Millisecond; got != step {
			return nil, fmt.Errorf("Datadog query %q: Datadog answered a point every %s, not every %s (analysis.interval): "+
				"the window has more points than Datadog returns, or the metric is coarser than the interval", expr, got, step)
		}
	}
	count := strings.Contains(expr, ".as_count()")
	var out []metrics.Sample
	for i, ms := range attrs.Times {
		at := time.UnixMilli(ms).Add(step).UTC() // a point is stamped with its bucket's start
		v := values[i]
		if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) || !at.After(from) || at.After(to) {
			continue
		}
		val := *v
		if count {
			val = math.Round(val) // counts of a rate metric are interpolated: 2.0000001 requests
		}
		out = append(out, metrics.Sample{Time: at, Value: val})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("Datadog query %q: %w (no values between %s and %s)", expr, metrics.ErrNoData,
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return out, nil
}

// cut bounds a line taken from an answer.
func cut(s string) string {
	if r := []rune(s); len(r) > 300 {
		return string(r[:300]) + "…"
	}
	return s
}
