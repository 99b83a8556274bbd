package datadog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/datadog"
	"github.com/perchhq/perch/metrics/internal/apicall"
	"github.com/perchhq/perch/metrics/internal/apicall/apitest"
)

const (
	apiKey = "dd-api-key-0123456789abcdef"
	appKey = "dd-app-key-fedcba9876543210"
)

// fake is Datadog's "Query timeseries data across multiple products" endpoint as its
// reference describes it
// (https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-data-across-multiple-products):
// POST /api/v2/query/timeseries with the keys in DD-API-KEY and DD-APPLICATION-KEY
// (https://docs.datadoghq.com/api/latest/authentication/), a body
// {"data": {"type": "timeseries_request", "attributes": {"from", "to", "interval" (ms),
// "queries": [{"data_source": "metrics", "query", "name"}], "formulas": [{"formula"}]}}},
// answered with {"data": {"type": "timeseries_response", "attributes": {"series":
// [{"group_tags", "query_index", "unit"}], "times": [ms…], "values": [[v|null…]]}}}.
// Rate limits answer 429 with X-RateLimit-Limit/-Period/-Remaining/-Reset
// (https://docs.datadoghq.com/api/latest/rate-limits/); errors are {"errors": ["…"]}.
type fake struct {
	mu sync.Mutex
	// value is a bucket's value by its start (nil: null); series is how many series answer.
	value  func(query string, start time.Time) *float64
	series int
	// respond, when set, answers instead, the nth call counting from 1.
	respond func(w http.ResponseWriter, n int) bool
	reqs    []received
}

type received struct {
	method, path, rawQuery string
	header                 http.Header
	body                   request
}

type request struct {
	Data struct {
		Type       string `json:"type"`
		Attributes struct {
			From     int64 `json:"from"`
			To       int64 `json:"to"`
			Interval int64 `json:"interval"`
			Queries  []struct {
				DataSource string `json:"data_source"`
				Query      string `json:"query"`
				Name       string `json:"name"`
			} `json:"queries"`
			Formulas []struct {
				Formula string `json:"formula"`
			} `json:"formulas"`
		} `json:"attributes"`
	} `json:"data"`
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	var body request
	json.Unmarshal(data, &body)
	f.mu.Lock()
	f.reqs = append(f.reqs, received{method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, header: r.Header.Clone(), body: body})
	n := len(f.reqs)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if f.respond != nil && f.respond(w, n) {
		return
	}
	if r.Header.Get("DD-API-KEY") != apiKey || r.Header.Get("DD-APPLICATION-KEY") != appKey {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"errors":["Forbidden"]}`)
		return
	}
	a := body.Data.Attributes
	var times []int64
	var values []*float64
	for t := a.From; t < a.To; t += a.Interval {
		times = append(times, t)
		values = append(values, f.value(a.Queries[0].Query, time.UnixMilli(t)))
	}
	series := []map[string]any{}
	allValues := [][]*float64{}
	for i := range f.series {
		series = append(series, map[string]any{"group_tags": []string{fmt.Sprintf("version:v%d", i)}, "query_index": 0,
			"unit": []any{map[string]any{"family": "time", "name": "second", "plural": "seconds", "scale_factor": 1, "short_name": "s"}}})
		allValues = append(allValues, values)
	}
	json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"type": "timeseries_response",
		"attributes": map[string]any{"series": series, "times": times, "values": allValues}}})
}

func (f *fake) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.reqs...)
}

func num(v float64) *float64 { return &v }

func newSource(t *testing.T, address string, limits apicall.Limits) *datadog.Source {
	t.Helper()
	s, err := datadog.New(datadog.Config{Site: "datadoghq.eu", APIKey: apiKey, AppKey: appKey, Address: address, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

const step = 30 * time.Second

// TestSamplesThroughTheClient: the official client's request is what the reference
// describes, and the answer's points land on the window's buckets, stamped with their ends.
func TestSamplesThroughTheClient(t *testing.T) {
	f := &fake{series: 1, value: func(_ string, start time.Time) *float64 { return num(float64(start.Sub(t0)/step) + 0.0000001) }}
	srv := httptest.NewServer(f)
	defer srv.Close()
	const query = "sum:trace.http.request.errors{service:checkout,version:canary}.as_count()"
	got, err := newSource(t, srv.URL, apicall.Limits{}).Samples(context.Background(), metrics.Query{Expr: query},
		t0.Add(step+5*time.Second), t0.Add(4*step+10*time.Second), step)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %v, want 3 samples", got)
	}
	for i, smp := range got {
		// The bucket starting at t0+(i+1)step ends at t0+(i+2)step; .as_count() rounds.
		if want := t0.Add(time.Duration(i+2) * step); !smp.Time.Equal(want) || smp.Value != float64(i+1) {
			t.Errorf("sample %d = %v at %s, want %d at %s", i, smp.Value, smp.Time, i+1, want)
		}
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/api/v2/query/timeseries" || r.rawQuery != "" {
		t.Errorf("request %s %s?%s, want POST /api/v2/query/timeseries without query parameters", r.method, r.path, r.rawQuery)
	}
	if r.header.Get("DD-API-KEY") != apiKey || r.header.Get("DD-APPLICATION-KEY") != appKey {
		t.Errorf("keys sent: DD-API-KEY %q, DD-APPLICATION-KEY %q", r.header.Get("DD-API-KEY"), r.header.Get("DD-APPLICATION-KEY"))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	a := r.body.Data.Attributes
	if r.body.Data.Type != "timeseries_request" || a.From != t0.Add(step).UnixMilli() || a.To != t0.Add(4*step).UnixMilli() || a.Interval != 30000 {
		t.Errorf("request %+v: want a timeseries_request from %d to %d every 30000 ms", r.body.Data, t0.Add(step).UnixMilli(), t0.Add(4*step).UnixMilli())
	}
	if len(a.Queries) != 1 || a.Queries[0].DataSource != "metrics" || a.Queries[0].Query != query || a.Queries[0].Name != "a" ||
		len(a.Formulas) != 1 || a.Formulas[0].Formula != "a" {
		t.Errorf("queries %+v, formulas %+v: want the one metrics query named a, and formula a", a.Queries, a.Formulas)
	}
}

func TestSiteNamesTheHost(t *testing.T) {
	var host string
	f := &fake{series: 1, value: func(string, time.Time) *float64 { return num(1) }}
	tr := apitest.Transport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host = r.URL.Scheme + "://" + r.Host; f.ServeHTTP(w, r) }))
	s, err := datadog.New(datadog.Config{Site: "us5.datadoghq.com", APIKey: apiKey, AppKey: appKey, Limits: apicall.Limits{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Samples(context.Background(), metrics.Query{Expr: "avg:x{*}"}, t0.Add(step), t0.Add(2*step), step); err != nil {
		t.Fatal(err)
	}
	if host != "https://api.us5.datadoghq.com" || s.String() != "Datadog at https://api.us5.datadoghq.com" {
		t.Errorf("asked %s (%s), want https://api.us5.datadoghq.com", host, s)
	}
}

func TestNoData(t *testing.T) {
	for name, f := range map[string]*fake{
		"no series":   {series: 0, value: func(string, time.Time) *float64 { return num(1) }},
		"only nulls":  {series: 1, value: func(string, time.Time) *float64 { return nil }},
		"empty times": {series: 1, value: nil},
	} {
		t.Run(name, func(t *testing.T) {
			if f.value == nil {
				f.respond = func(w http.ResponseWriter, _ int) bool {
					fmt.Fprint(w, `{"data":{"type":"timeseries_response","attributes":{"series":[{"group_tags":[],"query_index":0}],"times":[],"values":[[]]}}}`)
					return true
				}
			}
			srv := httptest.NewServer(f)
			defer srv.Close()
			_, err := newSource(t, srv.URL, apicall.Limits{}).Samples(context.Background(), metrics.Query{Expr: "avg:x{*}"}, t0.Add(step), t0.Add(3*step), step)
			if !errors.Is(err, metrics.ErrNoData) {
				t.Errorf("error %v, want metrics.ErrNoData", err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		f       *fake
		limits  apicall.Limits
		want    string
		calls   int
		address string
	}{
		{name: "bad query", want: `Datadog answered 400 Bad Request: Error parsing query: unable to parse avg:x{: Rule 'scope_expr' didn't match`, calls: 1,
			f: &fake{respond: func(w http.ResponseWriter, _ int) bool {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"errors":["Error parsing query: unable to parse avg:x{: Rule 'scope_expr' didn't match"]}`)
				return true
			}}},
		{name: "wrong keys", want: "Datadog answered 403 Forbidden: Forbidden", calls: 1, address: "wrong keys",
			f: &fake{series: 1, value: func(string, time.Time) *float64 { return num(1) }}},
		{name: "server error", want: "Datadog answered 503 Service Unavailable", calls: 1,
			f: &fake{respond: func(w http.ResponseWriter, _ int) bool { w.WriteHeader(http.StatusServiceUnavailable); return true }}},
		{name: "rate limited beyond the cap", want: "rate limited; retry after 45s", calls: 1,
			f: &fake{respond: func(w http.ResponseWriter, _ int) bool {
				w.Header().Set("X-RateLimit-Limit", "1600")
				w.Header().Set("X-RateLimit-Period", "60")
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("X-RateLimit-Reset", "45")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"errors":["Too many requests"]}`)
				return true
			}}},
		{name: "several series", want: `returned 2 series ({version:v0}, {version:v1})`, calls: 1,
			f: &fake{series: 2, value: func(string, time.Time) *float64 { return num(1) }}},
		{name: "coarser interval", want: "answered a point every 1m0s, not every 30s", calls: 1,
			f: &fake{respond: func(w http.ResponseWriter, _ int) bool {
				fmt.Fprintf(w, `{"data":{"type":"timeseries_response","attributes":{"series":[{"query_index":0}],"times":[%d,%d],"values":[[1,2]]}}}`,
					t0.UnixMilli(), t0.Add(time.Minute).UnixMilli())
				return true
			}}},
		{name: "malformed JSON", want: "not the timeseries JSON expected", calls: 1,
			f: &fake{respond: func(w http.ResponseWriter, _ int) bool { fmt.Fprint(w, `{"data": {"attributes": [`); return true }}},
		{name: "oversize answer", want: "answer too large", calls: 1, limits: apicall.Limits{MaxBytes: 2048},
			f: &fake{respond: func(w http.ResponseWriter, _ int) bool {
				fmt.Fprintf(w, `{"data":{"type":"timeseries_response","attributes":{"series":[{"group_tags":["%s"]}]}}}`, strings.Repeat("x", 8192))
				return true
			}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.f)
			defer srv.Close()
			s := newSource(t, srv.URL, tt.limits)
			if tt.address == "wrong keys" {
				var err error
				if s, err = datadog.New(datadog.Config{APIKey: "wrong-api-key", AppKey: "wrong-app-key", Address: srv.URL}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := s.Samples(context.Background(), metrics.Query{Expr: "avg:x{*}"}, t0.Add(step), t0.Add(3*step), step)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if errors.Is(err, metrics.ErrNoData) {
				t.Errorf("%v is no data; want an outage", err)
			}
			for _, secret := range []string{apiKey, appKey, "wrong-api-key", "wrong-app-key"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a key: %v", err)
				}
			}
			if n := len(tt.f.requests()); n != tt.calls {
				t.Errorf("%d requests, want %d", n, tt.calls)
			}
		})
	}
}

// TestRateLimitWaitsAndRetries: a 429 whose X-RateLimit-Reset is 3 s is sent again once
// that has passed (virtual time), and a Retry-After too.
func TestRateLimitWaitsAndRetries(t *testing.T) {
	for _, header := range []string{"X-RateLimit-Reset", "Retry-After"} {
		t.Run(header, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var first time.Time
				f := &fake{series: 1, value: func(string, time.Time) *float64 { return num(4) }}
				f.respond = func(w http.ResponseWriter, n int) bool {
					if n > 1 {
						if waited := time.Since(first); waited < 3*time.Second {
							t.Errorf("retried after %s, want the 3s asked", waited)
						}
						return false
					}
					first = time.Now()
					w.Header().Set(header, "3")
					w.WriteHeader(http.StatusTooManyRequests)
					fmt.Fprint(w, `{"errors":["Too many requests"]}`)
					return true
				}
				s := newSource(t, "", apicall.Limits{Transport: apitest.Transport(f)})
				now := time.Now().Truncate(step)
				got, err := s.Samples(context.Background(), metrics.Query{Expr: "avg:x{*}"}, now.Add(-step), now, step)
				if err != nil || len(got) != 2 || len(f.requests()) != 2 {
					t.Fatalf("got %v, %v after %d requests; want 2 samples after 2", got, err, len(f.requests()))
				}
			})
		})
	}
}

func TestSlowServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	began := time.Now()
	_, err := newSource(t, srv.URL, apicall.Limits{Timeout: 200 * time.Millisecond}).Samples(context.Background(),
		metrics.Query{Expr: "avg:x{*}"}, t0.Add(step), t0.Add(3*step), step)
	if err == nil || errors.Is(err, metrics.ErrNoData) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error %v, want a timeout", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("took %s to give up, want about the 200ms timeout", took)
	}
}

func TestConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  datadog.Config
		want string
	}{
		{datadog.Config{APIKey: "a", AppKey: "b"}, "Datadog at https://api.datadoghq.com"},
		{datadog.Config{APIKey: "a", AppKey: "b", Site: "ddog-gov.com"}, "Datadog at https://api.ddog-gov.com"},
		{datadog.Config{APIKey: "a", AppKey: "b", Address: "http://127.0.0.1:8126/dd/"}, "Datadog at http://127.0.0.1:8126/dd"},
		{datadog.Config{APIKey: "a", AppKey: "b", Site: "https://api.datadoghq.eu"}, "an endpoint goes in address"},
		{datadog.Config{APIKey: "a", AppKey: "b", Address: "api.datadoghq.eu"}, "want https://HOST"},
		{datadog.Config{APIKey: "a"}, "both needed"},
	} {
		s, err := datadog.New(tt.cfg)
		got := fmt.Sprint(err)
		if err == nil {
			got = s.String()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("New(%+v): %s, want %q", tt.cfg, got, tt.want)
		}
	}
}
