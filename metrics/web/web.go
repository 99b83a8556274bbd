// Package web answers perch's metric queries from any HTTP endpoint that answers JSON: the
// URL is a template filled with the check, the side, the query's name and the window, and a
// JSONPath picks out of the answer either a series of [unixSeconds, value] points or one
// value.
//
// An endpoint that answers a series is asked once per look, for the whole window. One that
// answers a single value is asked once per analysis interval, for that interval alone; a value
// once read for an interval is kept for the rest of the window, so each look asks only for the
// intervals it has no value for yet.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/perchhq/perch/internal/jsonpath"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/internal/apicall"
	"github.com/perchhq/perch/metrics/internal/window"
)

// MaxIntervals is the most intervals a single-value endpoint is asked for in one look.
const MaxIntervals = 240

// Config says what to ask and how to read the answer.
type Config struct {
	// URL is a text/template: {{.Check}}, {{.Side}} (canary or baseline), {{.Query}} (the
	// check's query text), {{.Start}} and {{.End}} (unix seconds) are filled in, each
	// query-escaped (url.QueryEscape).
	URL string
	// JSONPath picks the series or the value out of the answer ($.data.values, $.value).
	JSONPath string
	// Headers are sent with every request (credentials, Accept).
	Headers map[string]string
	// Address replaces the URL's scheme://host[:port] (a proxy, or a test server).
	Address string
	// Secrets are values that must never appear in an error (credentials in the URL or the
	// headers); an answer that echoes one has it replaced by "(redacted)".
	Secrets []string
	Limits  apicall.Limits
}

// Source asks one endpoint. It is safe for concurrent use.
type Source struct {
	url     *template.Template
	path    *jsonpath.Path
	headers http.Header
	address *url.URL
	host    string
	secrets []string
	client  *http.Client
	limits  apicall.Limits
	mu      sync.Mutex
	perSlot map[string]bool                  // by query key: the endpoint answers one value
	values  map[string]map[time.Time]float64 // by query key: single values read, by interval end
}

// New parses cfg's template and path; it does not call the endpoint.
func New(cfg Config) (*Source, error) {
	tmpl, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	path, err := jsonpath.Parse(cfg.JSONPath)
	if err != nil {
		return nil, err
	}
	s := &Source{url: tmpl, path: path, headers: http.Header{}, secrets: cfg.Secrets, client: cfg.Limits.Client(), limits: cfg.Limits,
		perSlot: map[string]bool{}, values: map[string]map[time.Time]float64{}}
	for k, v := range cfg.Headers {
		s.headers.Set(k, v)
	}
	if cfg.Address != "" {
		u, err := url.Parse(cfg.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("web metrics address: want http://HOST[:PORT] or https://…")
		}
		s.address = u
	}
	probe, err := s.build(metrics.Query{Expr: "q", Check: "c", Side: "canary"}, time.Unix(0, 0), time.Unix(1, 0))
	if err != nil {
		return nil, err
	}
	s.host = probe.Host
	return s, nil
}

// fields are what the URL template is filled with.
type fields struct {
	Check, Side, Query, Start, End string
}

// ParseURL parses a URL template, checking that it names only the fields perch fills in.
func ParseURL(text string) (*template.Template, error) {
	tmpl, err := template.New("url").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("web metrics url: %v", err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, fields{Check: "c", Side: "canary", Query: "q", Start: "0", End: "1"}); err != nil {
		return nil, fmt.Errorf("web metrics url: %v (it may use {{.Check}}, {{.Side}}, {{.Query}}, {{.Start}} and {{.End}})", err)
	}
	return tmpl, nil
}

// String names the endpoint's host, for validate --check-access (never its path or query,
// which may hold credentials).
func (s *Source) String() string { return "web metrics at " + s.host }

// build fills the URL template for q and the span from–to.
func (s *Source) build(q metrics.Query, from, to time.Time) (*url.URL, error) {
	var b strings.Builder
	err := s.url.Execute(&b, fields{
		Check: url.QueryEscape(q.Check), Side: url.QueryEscape(q.Side), Query: url.QueryEscape(q.Expr),
		Start: strconv.FormatInt(from.Unix(), 10), End: strconv.FormatInt(to.Unix(), 10),
	})
	if err != nil {
		return nil, fmt.Errorf("web metrics url: %v", err)
	}
	u, err := url.Parse(b.String())
	if err != nil {
		return nil, errors.New("web metrics url: the filled-in template is not a URL")
	}
	if s.address != nil {
		u.Scheme, u.Host = s.address.Scheme, s.address.Host
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("web metrics url: want an http:// or https:// URL")
	}
	return u, nil
}

// Samples asks the endpoint for q over the step-long buckets that end inside [start, end]
// and returns one sample per bucket that has a value, stamped with the bucket's end. A series
// point belongs to the bucket whose end is nearest its time; a single value is the value of
// the interval asked for. Nothing at the JSONPath, null, or an empty series is no data
// (metrics.ErrNoData).
func (s *Source) Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	out, err := s.samples(ctx, q, start, end, step)
	return out, s.redact(err)
}

func (s *Source) samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	if q.Metric != nil {
		return nil, fmt.Errorf("%s: the web source asks by name, not for CloudWatch metrics", q)
	}
	from, to, ok := window.Buckets(start, end, step)
	if !ok {
		return nil, fmt.Errorf("%s: %w (no whole interval in the window yet)", s.describe(q), metrics.ErrNoData)
	}
	key := q.Check + "\x00" + q.Side + "\x00" + q.Expr
	s.mu.Lock()
	perSlot := s.perSlot[key]
	s.mu.Unlock()
	if !perSlot {
		sel, err := s.ask(ctx, q, from, to)
		if err != nil {
			return nil, err
		}
		if series, ok, err := s.series(q, sel); ok || err != nil {
			if err != nil {
				return nil, err
			}
			return onBuckets(series, from, to, step, s.describe(q))
		}
		v, ok, err := s.single(q, sel)
		if err != nil || !ok {
			// Nothing or null says nothing about which kind of endpoint this is: ask the
			// whole window again next time.
			return nil, s.noValue(q, err, from, to)
		}
		s.mu.Lock()
		s.perSlot[key] = true
		s.mu.Unlock()
		if to.Sub(from) == step { // the window is one interval: this is its value
			s.keep(key, from, to, v)
			return []metrics.Sample{{Time: to, Value: v}}, nil
		}
	}
	if n := to.Sub(from) / step; n > MaxIntervals {
		return nil, fmt.Errorf("%s answers one value per request, and the window has %d intervals (at most %d are asked for): "+
			"answer a series of [unixSeconds, value] points instead", s.describe(q), n, MaxIntervals)
	}
	known := s.known(key, from)
	var out []metrics.Sample
	for b := from; b.Before(to); b = b.Add(step) {
		bEnd := b.Add(step)
		if v, ok := known[bEnd]; ok {
			out = append(out, metrics.Sample{Time: bEnd, Value: v})
			continue
		}
		sel, err := s.ask(ctx, q, b, bEnd)
		if err != nil {
			return nil, err
		}
		v, ok, err := s.single(q, sel)
		if err != nil {
			return nil, err
		}
		if ok {
			s.keep(key, from, bEnd, v)
			out = append(out, metrics.Sample{Time: bEnd, Value: v})
		}
	}
	if len(out) == 0 {
		return nil, s.noValue(q, nil, from, to)
	}
	return out, nil
}

// known is a copy of the values read for key's intervals ending after from.
func (s *Source) known(key string, from time.Time) map[time.Time]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[time.Time]float64{}
	for t, v := range s.values[key] {
		if t.After(from) {
			out[t] = v
		}
	}
	return out
}

// keep remembers the value of key's interval ending at at, and forgets those ending at or
// before from: windows only move forward, so the memory is one window's worth.
func (s *Source) keep(key string, from, at time.Time, v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.values[key]
	if m == nil {
		m = map[time.Time]float64{}
		s.values[key] = m
	}
	for t := range m {
		if !t.After(from) {
			delete(m, t)
		}
	}
	m[at] = v
}

func (s *Source) noValue(q metrics.Query, err error, from, to time.Time) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%s: %w (no value at %s between %s and %s)", s.describe(q), metrics.ErrNoData, s.path,
		from.Format(time.RFC3339), to.Format(time.RFC3339))
}

// describe names a query in messages: its check, side and text, and the endpoint's host.
func (s *Source) describe(q metrics.Query) string {
	d := fmt.Sprintf("query %q", q.Expr)
	if q.Check != "" {
		d = fmt.Sprintf("%s %s query %q", q.Check, q.Side, q.Expr)
	}
	return d + " on " + s.host
}

// ask fetches the answer for q and the span from–to, and selects the JSONPath from it.
func (s *Source) ask(ctx context.Context, q metrics.Query, from, to time.Time) ([]any, error) {
	u, err := s.build(q, from, to)
	if err != nil {
		return nil, err
	}
	var data []byte
	err = s.limits.Retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		for k, v := range s.headers {
			req.Header[k] = v
		}
		if req.Header.Get("Accept") == "" {
			req.Header.Set("Accept", "application/json")
		}
		data, err = apicall.Do(s.client, req, "web metrics ("+s.host+")", nil)
		return err
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return nil, fmt.Errorf("%s: %w", s.describe(q), err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: the answer is not JSON: %v", s.describe(q), err)
	}
	return s.path.Select(doc), nil
}

// point is a series point.
type point struct {
	at    time.Time
	value float64
	ok    bool
}

// series reads a selection as a series of [unixSeconds, value] points: the selection is the
// points themselves (a wildcard path), or one array of them. ok is false when the selection
// is not a series (one value, or nothing).
func (s *Source) series(q metrics.Query, sel []any) ([]point, bool, error) {
	items := sel
	if !s.path.Wild() {
		if len(sel) != 1 {
			return nil, false, nil
		}
		arr, isArr := sel[0].([]any)
		if !isArr {
			return nil, false, nil
		}
		if len(arr) == 2 && !isPair(arr[0]) && isPair(arr) { // [t, v] itself: one point
			items = []any{arr}
		} else {
			items = arr
		}
	} else if len(sel) > 0 && !isPair(sel[0]) {
		if _, isArr := sel[0].([]any); !isArr {
			return nil, false, fmt.Errorf("%s: %s selects %d values; want one value, or [unixSeconds, value] points", s.describe(q), s.path, len(sel))
		}
	}
	out := make([]point, 0, len(items))
	for _, it := range items {
		pair, _ := it.([]any)
		if len(pair) != 2 {
			return nil, false, fmt.Errorf("%s: at %s, %s is not a [unixSeconds, value] point", s.describe(q), s.path, brief(it))
		}
		secs, ok := number(pair[0])
		if !ok {
			return nil, false, fmt.Errorf("%s: at %s, %s has no time in unix seconds", s.describe(q), s.path, brief(it))
		}
		v, has := number(pair[1])
		if !has && pair[1] != nil {
			return nil, false, fmt.Errorf("%s: at %s, %s has no number for a value", s.describe(q), s.path, brief(it))
		}
		out = append(out, point{at: time.Unix(0, int64(secs*float64(time.Second))).UTC(), value: v, ok: has})
	}
	return out, true, nil
}

// isPair reports whether v looks like a [time, value] point.
func isPair(v any) bool {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return false
	}
	_, isNum := number(a[0])
	return isNum
}

// single reads a selection as one value; ok is false for nothing or null.
func (s *Source) single(q metrics.Query, sel []any) (float64, bool, error) {
	switch {
	case len(sel) == 0 || len(sel) == 1 && sel[0] == nil:
		return 0, false, nil
	case len(sel) > 1:
		return 0, false, fmt.Errorf("%s: %s selects %d values, want one", s.describe(q), s.path, len(sel))
	}
	v, ok := number(sel[0])
	if !ok {
		return 0, false, fmt.Errorf("%s: at %s, %s is not a number", s.describe(q), s.path, brief(sel[0]))
	}
	return v, true, nil
}

// number reads a JSON number, or a string holding one (Prometheus writes values as strings);
// NaN and infinities are no number.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// onBuckets places series points on the buckets ending inside (from, to]: each point on the
// bucket end nearest its time, the later point winning a bucket.
func onBuckets(points []point, from, to time.Time, step time.Duration, what string) ([]metrics.Sample, error) {
	n := int(to.Sub(from) / step)
	at := map[int]float64{}
	for _, p := range points {
		i := int(math.Round(float64(p.at.Sub(from)) / float64(step)))
		if i < 1 || i > n || !p.ok {
			continue
		}
		at[i] = p.value
	}
	if len(at) == 0 {
		return nil, fmt.Errorf("%s: %w (no points between %s and %s)", what, metrics.ErrNoData, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	out := make([]metrics.Sample, 0, len(at))
	for i, v := range at {
		out = append(out, metrics.Sample{Time: from.Add(time.Duration(i) * step), Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// brief is a JSON value in a few printable characters, for messages.
func brief(v any) string {
	b, _ := json.Marshal(v)
	s := printable.Line(string(b))
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60]) + "…"
	}
	return s
}

// redact replaces the secrets in err's text, keeping what it wraps (metrics.ErrNoData).
func (s *Source) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := msg
	for _, secret := range s.secrets {
		if len(secret) >= 4 {
			changed = strings.ReplaceAll(changed, secret, "(redacted)")
		}
	}
	if changed == msg {
		return err
	}
	return &redacted{msg: changed, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
