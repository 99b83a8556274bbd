package newrelic_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/internal/apicall"
	"github.com/perchhq/perch/metrics/internal/apicall/apitest"
	"github.com/perchhq/perch/metrics/newrelic"
)

const apiKey = "NRAK-TESTKEY0123456789"

// fake is NerdGraph as its NRQL tutorial shows it
// (https://docs.newrelic.com/docs/apis/nerdgraph/examples/nerdgraph-nrql-tutorial/): a POST
// of {"query", "variables"} to /graphql with the user key in API-Key, answered with
// {"data": {"actor": {"account": {"nrql": {"results": [...]}}}}}, where a TIMESERIES query's
// results are one object per bucket with beginTimeSeconds, endTimeSeconds and the selected
// value (https://docs.newrelic.com/docs/nrql/nrql-syntax-clauses-functions/#sel-timeseries).
type fake struct {
	mu sync.Mutex
	// value is the selected value of the bucket ending at a time: a number, nil (null) or
	// an object.
	value func(nrql string, end time.Time) any
	// name is the selected value's key in each result ("count", "average.duration").
	name string
	// respond, when set, answers instead (a status, a body), the nth call counting from 1.
	respond func(w http.ResponseWriter, n int) bool
	reqs    []received
}

type received struct {
	method, path, key, contentType string
	query                          string
	vars                           map[string]any
}

var nrqlWindow = regexp.MustCompile(`^(.*) SINCE (\d+) UNTIL (\d+) TIMESERIES (\d+) SECONDS$`)

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	data, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(data, &body); err != nil {
		http.Error(w, `{"errors":[{"message":"bad JSON"}]}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, received{method: r.Method, path: r.URL.Path, key: r.Header.Get("API-Key"),
		contentType: r.Header.Get("Content-Type"), query: body.Query, vars: body.Variables})
	n := len(f.reqs)
	f.mu.Unlock()
	if f.respond != nil && f.respond(w, n) {
		return
	}
	if r.Header.Get("API-Key") != apiKey {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"data":{"actor":{"account":null}},"errors":[{"message":"Invalid API key"}]}`)
		return
	}
	nrql, _ := body.Variables["nrql"].(string)
	m := nrqlWindow.FindStringSubmatch(nrql)
	if m == nil {
		fmt.Fprintf(w, `{"errors":[{"message":"NRQL Syntax Error: %s"}]}`, "unexpected query")
		return
	}
	since, _ := strconv.ParseInt(m[2], 10, 64)
	until, _ := strconv.ParseInt(m[3], 10, 64)
	bucket, _ := strconv.ParseInt(m[4], 10, 64)
	var results []map[string]any
	for t := since / 1000; t < until/1000; t += bucket {
		results = append(results, map[string]any{"beginTimeSeconds": t, "endTimeSeconds": t + bucket,
			f.name: f.value(m[1], time.Unix(t+bucket, 0))})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"actor": map[string]any{"account": map[string]any{
		"nrql": map[string]any{"results": results}}}}})
}

func (f *fake) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.reqs...)
}

func newSource(t *testing.T, address string, limits apicall.Limits) *newrelic.Source {
	t.Helper()
	s, err := newrelic.New(newrelic.Config{AccountID: 1234567, APIKey: apiKey, Region: "US", Address: address, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

const step = 30 * time.Second

func TestSamplesAsksNerdGraph(t *testing.T) {
	f := &fake{name: "count", value: func(_ string, end time.Time) any { return float64(end.Sub(t0) / step) }}
	srv := httptest.NewServer(f)
	defer srv.Close()
	s := newSource(t, srv.URL, apicall.Limits{})
	const nrql = "SELECT count(*) FROM Transaction WHERE appName = 'checkout' AND version = 'canary'"
	got, err := s.Samples(context.Background(), metrics.Query{Expr: nrql}, t0.Add(step+5*time.Second), t0.Add(4*step+10*time.Second), step)
	if err != nil {
		t.Fatal(err)
	}
	// Buckets ending at t0+2step, +3step, +4step: the whole ones inside the window.
	if len(got) != 3 {
		t.Fatalf("got %d samples %v, want 3", len(got), got)
	}
	for i, smp := range got {
		if want := t0.Add(time.Duration(i+2) * step); !smp.Time.Equal(want) || smp.Value != float64(i+2) {
			t.Errorf("sample %d = %v at %s, want %d at %s", i, smp.Value, smp.Time, i+2, want)
		}
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/graphql" || r.key != apiKey || r.contentType != "application/json" {
		t.Errorf("request %s %s API-Key %q Content-Type %q; want POST /graphql with the key, JSON", r.method, r.path, r.key, r.contentType)
	}
	if !strings.Contains(r.query, "account(id: $accountId)") || !strings.Contains(r.query, "nrql(query: $nrql") || !strings.Contains(r.query, "results") {
		t.Errorf("GraphQL query %q does not ask for the account's nrql results through the variables", r.query)
	}
	wantNRQL := fmt.Sprintf("%s SINCE %d UNTIL %d TIMESERIES 30 SECONDS", nrql, t0.Add(step).UnixMilli(), t0.Add(4*step).UnixMilli())
	if r.vars["nrql"] != wantNRQL || r.vars["accountId"] != float64(1234567) {
		t.Errorf("variables %v, want accountId 1234567 and nrql %q", r.vars, wantNRQL)
	}
}

func TestSamplesReadsPercentilesAndNulls(t *testing.T) {
	f := &fake{name: "percentile.duration", value: func(_ string, end time.Time) any {
		if end.Equal(t0.Add(2 * step)) {
			return map[string]any{"99": nil} // no transactions in that bucket
		}
		return map[string]any{"99": 0.25}
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	got, err := newSource(t, srv.URL, apicall.Limits{}).Samples(context.Background(),
		metrics.Query{Expr: "SELECT percentile(duration, 99) FROM Transaction"}, t0.Add(step), t0.Add(3*step), step)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Value != 0.25 || !got[1].Time.Equal(t0.Add(3*step)) {
		t.Errorf("got %v, want 0.25 at +1 and +3 intervals, the null bucket left out", got)
	}
}

func TestNoDataIsNoData(t *testing.T) {
	f := &fake{name: "average.duration", value: func(string, time.Time) any { return nil }}
	srv := httptest.NewServer(f)
	defer srv.Close()
	_, err := newSource(t, srv.URL, apicall.Limits{}).Samples(context.Background(),
		metrics.Query{Expr: "SELECT average(duration) FROM Transaction"}, t0.Add(step), t0.Add(3*step), step)
	if !errors.Is(err, metrics.ErrNoData) {
		t.Errorf("all buckets null: %v, want metrics.ErrNoData", err)
	}
}

func TestLongWindowsAreAskedInParts(t *testing.T) {
	f := &fake{name: "count", value: func(string, time.Time) any { return 1.0 }}
	srv := httptest.NewServer(f)
	defer srv.Close()
	got, err := newSource(t, srv.URL, apicall.Limits{}).Samples(context.Background(),
		metrics.Query{Expr: "SELECT count(*) FROM Transaction"}, t0.Add(step), t0.Add(400*step), step)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 400 || len(f.requests()) != 2 {
		t.Errorf("%d samples in %d requests, want 400 in 2 (NRQL answers at most 366 buckets)", len(got), len(f.requests()))
	}
}

func TestErrors(t *testing.T) {
	query := metrics.Query{Expr: "SELECT count(*) FROM Transaction"}
	for _, tt := range []struct {
		name    string
		respond func(w http.ResponseWriter, n int) bool
		limits  apicall.Limits
		want    string
		calls   int
	}{
		{name: "server error", want: "New Relic answered 502 Bad Gateway: upstream down", calls: 1,
			respond: func(w http.ResponseWriter, _ int) bool {
				http.Error(w, "upstream down", http.StatusBadGateway)
				return true
			}},
		{name: "rate limited too long", want: "rate limited; retry after 1m0s", calls: 1,
			respond: func(w http.ResponseWriter, _ int) bool {
				w.Header().Set("Retry-After", "60")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}},
		{name: "rate limited every time", want: "rate limited", calls: apicall.MaxAttempts, limits: apicall.Limits{MaxRetryWait: 2 * time.Second},
			respond: func(w http.ResponseWriter, _ int) bool {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}},
		{name: "malformed JSON", want: "not NerdGraph's JSON", calls: 1,
			respond: func(w http.ResponseWriter, _ int) bool { fmt.Fprint(w, `{"data": {"actor": [`); return true }},
		{name: "GraphQL errors", want: "New Relic: NRQL Syntax Error: Error at line 1 position 8", calls: 1,
			respond: func(w http.ResponseWriter, _ int) bool {
				fmt.Fprint(w, `{"data":{"actor":{"account":{"nrql":null}}},"errors":[{"message":"NRQL Syntax Error: Error at line 1 position 8","path":["actor","account","nrql"]}]}`)
				return true
			}},
		{name: "oversize answer", want: "answer too large", calls: 1, limits: apicall.Limits{MaxBytes: 1024},
			respond: func(w http.ResponseWriter, _ int) bool {
				fmt.Fprintf(w, `{"data":{"actor":{"account":{"nrql":{"results":[{"x":"%s"}]}}}}}`, strings.Repeat("a", 4096))
				return true
			}},
		{name: "facet", want: "has a FACET", calls: 1,
			respond: func(w http.ResponseWriter, _ int) bool {
				fmt.Fprint(w, `{"data":{"actor":{"account":{"nrql":{"results":[{"beginTimeSeconds":1,"endTimeSeconds":2,"facet":"a","count":1}]}}}}}`)
				return true
			}},
		{name: "two values", want: "selects 2 values (average.duration, count): select one", calls: 1,
			respond: func(w http.ResponseWriter, _ int) bool {
				fmt.Fprint(w, `{"data":{"actor":{"account":{"nrql":{"results":[{"beginTimeSeconds":1,"endTimeSeconds":2,"count":1,"average.duration":2}]}}}}}`)
				return true
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{respond: tt.respond}
			srv := httptest.NewServer(f)
			defer srv.Close()
			_, err := newSource(t, srv.URL, tt.limits).Samples(context.Background(), query, t0.Add(step), t0.Add(3*step), step)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if errors.Is(err, metrics.ErrNoData) {
				t.Errorf("%v is no data; want an outage", err)
			}
			if strings.Contains(err.Error(), apiKey) {
				t.Errorf("the error shows the API key: %v", err)
			}
			if n := len(f.requests()); n != tt.calls {
				t.Errorf("%d requests, want %d", n, tt.calls)
			}
		})
	}
}

// TestRateLimitWaitsAndRetries: a 429 asking for 2 s is sent again after 2 s (virtual time)
// and its answer used.
func TestRateLimitWaitsAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var first time.Time
		f := &fake{name: "count", value: func(string, time.Time) any { return 7.0 }}
		f.respond = func(w http.ResponseWriter, n int) bool {
			if n == 1 {
				first = time.Now()
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}
			if waited := time.Since(first); waited < 2*time.Second {
				t.Errorf("retried after %s, want the 2s Retry-After asked", waited)
			}
			return false
		}
		s := newSource(t, "https://api.newrelic.com", apicall.Limits{Transport: apitest.Transport(f)})
		now := time.Now().Truncate(step)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := s.Samples(ctx, metrics.Query{Expr: "SELECT count(*) FROM Transaction"}, now.Add(-2*step), now, step)
		if err != nil || len(got) != 3 || got[0].Value != 7 {
			t.Fatalf("got %v, %v; want three 7s after one retry", got, err)
		}
	})
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
		metrics.Query{Expr: "SELECT count(*) FROM Transaction"}, t0.Add(step), t0.Add(3*step), step)
	if err == nil || errors.Is(err, metrics.ErrNoData) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error %v, want a timeout", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("took %s to give up, want about the 200ms timeout", took)
	}
}

func TestInvalidKeySaysSo(t *testing.T) {
	f := &fake{name: "count", value: func(string, time.Time) any { return 1.0 }}
	srv := httptest.NewServer(f)
	defer srv.Close()
	s, err := newrelic.New(newrelic.Config{AccountID: 1, APIKey: "NRAK-WRONG", Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Samples(context.Background(), metrics.Query{Expr: "SELECT count(*) FROM Transaction"}, t0.Add(step), t0.Add(3*step), step)
	if err == nil || !strings.Contains(err.Error(), "Invalid API key") || strings.Contains(err.Error(), "NRAK-WRONG") {
		t.Errorf("error %v, want New Relic's message without the key", err)
	}
}

func TestConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  newrelic.Config
		want string
	}{
		{newrelic.Config{AccountID: 1, APIKey: "k"}, "https://api.newrelic.com/graphql"},
		{newrelic.Config{AccountID: 1, APIKey: "k", Region: "EU"}, "https://api.eu.newrelic.com/graphql"},
		{newrelic.Config{AccountID: 1, APIKey: "k", Region: "EU", Address: "http://127.0.0.1:9/"}, "http://127.0.0.1:9/graphql"},
		{newrelic.Config{AccountID: 1, APIKey: "k", Region: "APAC"}, `region "APAC": want US or EU`},
		{newrelic.Config{APIKey: "k"}, "want a positive number"},
		{newrelic.Config{AccountID: 1}, "no API key"},
	} {
		s, err := newrelic.New(tt.cfg)
		got := fmt.Sprint(err)
		if err == nil {
			got = s.String()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("New(%+v): %s, want %q", tt.cfg, got, tt.want)
		}
	}
}

func TestCheckQuery(t *testing.T) {
	for nrql, want := range map[string]string{
		"SELECT count(*) FROM Transaction":                            "",
		"SELECT count(*) FROM Transaction WHERE name = 'since until'": "",
		"SELECT count(*) FROM Transaction SINCE 1 hour ago":           "has SINCE",
		"SELECT count(*) FROM Transaction timeseries":                 "has TIMESERIES",
		"  ": "empty",
	} {
		if got := newrelic.CheckQuery(nrql); (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("CheckQuery(%q) = %q, want %q", nrql, got, want)
		}
	}
}
