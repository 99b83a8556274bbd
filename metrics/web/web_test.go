package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/internal/apicall"
	"github.com/perchhq/perch/metrics/internal/apicall/apitest"
	"github.com/perchhq/perch/metrics/web"
)

var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

const step = 30 * time.Second

// endpoint is a JSON metrics endpoint of the kind the web source reads: it answers GET
// requests, and records them.
type endpoint struct {
	mu     sync.Mutex
	reqs   []*http.Request
	answer func(w http.ResponseWriter, r *http.Request, start, end time.Time)
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.reqs = append(e.reqs, r)
	e.mu.Unlock()
	q := r.URL.Query()
	start, _ := strconv.ParseInt(q.Get("start"), 10, 64)
	end, _ := strconv.ParseInt(q.Get("end"), 10, 64)
	w.Header().Set("Content-Type", "application/json")
	e.answer(w, r, time.Unix(start, 0).UTC(), time.Unix(end, 0).UTC())
}

func (e *endpoint) requests() []*http.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*http.Request(nil), e.reqs...)
}

const urlTemplate = "https://metrics.example/api/q?check={{.Check}}&side={{.Side}}&q={{.Query}}&start={{.Start}}&end={{.End}}&token=${TOKEN}"

func newSource(t *testing.T, e http.Handler, path string, limits apicall.Limits) *web.Source {
	t.Helper()
	if limits.Transport == nil {
		limits.Transport = apitest.Transport(e)
	}
	s, err := web.New(web.Config{
		URL:      strings.ReplaceAll(urlTemplate, "${TOKEN}", "s3cr3t-t0ken"),
		JSONPath: path, Headers: map[string]string{"Authorization": "Bearer s3cr3t-bearer"},
		Secrets: []string{"s3cr3t-t0ken", "s3cr3t-bearer"}, Limits: limits,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var query = metrics.Query{Expr: "p99 latency", Check: "latency & co", Side: "canary"}

func TestSeries(t *testing.T) {
	for _, tt := range []struct{ path, body string }{
		{"$.data.values", `{"data": {"values": [[%d, "0.1"], [%d, 0.2], [%d, null], [%d, 0.4]]}}`},
		{"$.points[*]", `{"points": [[%d, 0.1], [%d, 0.2], [%d, null], [%d, 0.4]]}`},
	} {
		t.Run(tt.path, func(t *testing.T) {
			e := &endpoint{answer: func(w http.ResponseWriter, _ *http.Request, start, end time.Time) {
				// Points at each interval's end, one of them a little late.
				fmt.Fprintf(w, tt.body, start.Add(step).Unix(), start.Add(2*step).Unix()+2, start.Add(3*step).Unix(), start.Add(4*step).Unix())
			}}
			got, err := newSource(t, e, tt.path, apicall.Limits{}).Samples(context.Background(), query, t0.Add(step), t0.Add(4*step+7*time.Second), step)
			if err != nil {
				t.Fatal(err)
			}
			want := []metrics.Sample{{Time: t0.Add(step), Value: 0.1}, {Time: t0.Add(2 * step), Value: 0.2}, {Time: t0.Add(4 * step), Value: 0.4}}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v, want %v (null left out)", got, want)
			}
			reqs := e.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1 for the whole window", len(reqs))
			}
			q := reqs[0].URL.Query()
			if q.Get("check") != "latency & co" || q.Get("side") != "canary" || q.Get("q") != "p99 latency" ||
				q.Get("start") != fmt.Sprint(t0.Unix()) || q.Get("end") != fmt.Sprint(t0.Add(4*step).Unix()) || q.Get("token") != "s3cr3t-t0ken" {
				t.Errorf("asked %s: want the check, side and query escaped, the window's buckets %d to %d", reqs[0].URL, t0.Unix(), t0.Add(4*step).Unix())
			}
			if h := reqs[0].Header; h.Get("Authorization") != "Bearer s3cr3t-bearer" || h.Get("Accept") != "application/json" {
				t.Errorf("headers %v: want the configured Authorization and Accept: application/json", h)
			}
		})
	}
}

// TestSingleValue: an endpoint that answers one value is asked once per interval, and an
// interval it has answered is not asked again.
func TestSingleValue(t *testing.T) {
	e := &endpoint{answer: func(w http.ResponseWriter, _ *http.Request, start, end time.Time) {
		fmt.Fprintf(w, `{"result": {"value": %d}}`, end.Sub(t0)/step)
	}}
	s := newSource(t, e, "$.result.value", apicall.Limits{})
	got, err := s.Samples(context.Background(), query, t0.Add(step), t0.Add(step+3*time.Second), step)
	if err != nil || len(got) != 1 || got[0].Value != 1 || !got[0].Time.Equal(t0.Add(step)) {
		t.Fatalf("first look: %v, %v; want 1 at +1 interval", got, err)
	}
	got, err = s.Samples(context.Background(), query, t0.Add(step), t0.Add(3*step), step)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint([]metrics.Sample{{Time: t0.Add(step), Value: 1}, {Time: t0.Add(2 * step), Value: 2}, {Time: t0.Add(3 * step), Value: 3}}) {
		t.Errorf("second look: %v, want 1, 2, 3", got)
	}
	var spans []string
	for _, r := range e.requests() {
		spans = append(spans, r.URL.Query().Get("start")+"-"+r.URL.Query().Get("end"))
	}
	want := []string{
		fmt.Sprintf("%d-%d", t0.Unix(), t0.Add(step).Unix()),
		fmt.Sprintf("%d-%d", t0.Add(step).Unix(), t0.Add(2*step).Unix()),
		fmt.Sprintf("%d-%d", t0.Add(2*step).Unix(), t0.Add(3*step).Unix()),
	}
	if strings.Join(spans, " ") != strings.Join(want, " ") {
		t.Errorf("asked for %v, want %v: each interval once", spans, want)
	}
}

// TestNothingYetIsNotOneValue: an endpoint that answers nothing at first and a series later
// is read as a series once it has one, not asked per interval.
func TestNothingYetIsNotOneValue(t *testing.T) {
	e := &endpoint{}
	e.answer = func(w http.ResponseWriter, _ *http.Request, start, end time.Time) {
		if len(e.requests()) == 1 {
			fmt.Fprint(w, `{"data": null}`)
			return
		}
		fmt.Fprintf(w, `{"data": {"values": [[%d, 1], [%d, 2]]}}`, start.Add(step).Unix(), start.Add(2*step).Unix())
	}
	s := newSource(t, e, "$.data.values", apicall.Limits{})
	if _, err := s.Samples(context.Background(), query, t0.Add(step), t0.Add(2*step), step); !errors.Is(err, metrics.ErrNoData) {
		t.Fatalf("first look: %v, want no data", err)
	}
	got, err := s.Samples(context.Background(), query, t0.Add(step), t0.Add(2*step), step)
	if err != nil || len(got) != 2 || len(e.requests()) != 2 {
		t.Errorf("second look: %v, %v after %d requests; want the series in one more request", got, err, len(e.requests()))
	}
}

func TestNoData(t *testing.T) {
	for name, tt := range map[string]struct{ path, body string }{
		"null value":    {"$.value", `{"value": null}`},
		"missing value": {"$.value", `{"other": 1}`},
		"empty series":  {"$.values", `{"values": []}`},
		"null points":   {"$.values", `{"values": [[1764406800, null]]}`},
	} {
		t.Run(name, func(t *testing.T) {
			e := &endpoint{answer: func(w http.ResponseWriter, _ *http.Request, _, _ time.Time) { fmt.Fprint(w, tt.body) }}
			_, err := newSource(t, e, tt.path, apicall.Limits{}).Samples(context.Background(), query, t0.Add(step), t0.Add(3*step), step)
			if !errors.Is(err, metrics.ErrNoData) {
				t.Errorf("error %v, want metrics.ErrNoData", err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		path   string
		limits apicall.Limits
		want   string
		calls  int
	}{
		{name: "server error echoing the URL", want: "web metrics (metrics.example) answered 500 Internal Server Error: failed on /api/q?check=latency+%26+co", calls: 1,
			answer: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "failed on "+r.URL.RequestURI(), http.StatusInternalServerError)
			}},
		{name: "rate limited beyond the cap", want: "rate limited; retry after 2m0s", calls: 1,
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "120")
				w.WriteHeader(http.StatusTooManyRequests)
			}},
		{name: "malformed JSON", want: "the answer is not JSON", calls: 1,
			answer: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"value": `) }},
		{name: "not a number", want: `at $.value, "fast" is not a number`, calls: 1,
			answer: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"value": "fast"}`) }},
		{name: "not points", path: "$.values", want: `at $.values, [1,2,3] is not a [unixSeconds, value] point`, calls: 1,
			answer: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"values": [[1, 2, 3]]}`) }},
		{name: "oversize answer", want: "answer too large", calls: 1, limits: apicall.Limits{MaxBytes: 100},
			answer: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, `{"value": 1, "pad": "%s"}`, strings.Repeat("x", 1000))
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &endpoint{answer: func(w http.ResponseWriter, r *http.Request, _, _ time.Time) { tt.answer(w, r) }}
			path := tt.path
			if path == "" {
				path = "$.value"
			}
			_, err := newSource(t, e, path, tt.limits).Samples(context.Background(), query, t0.Add(step), t0.Add(step), step)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if errors.Is(err, metrics.ErrNoData) {
				t.Errorf("%v is no data; want an outage", err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows a secret: %v", err)
			}
			if n := len(e.requests()); n != tt.calls {
				t.Errorf("%d requests, want %d", n, tt.calls)
			}
		})
	}
}

// TestUnreachableKeepsTheURLSecret: net/http names the URL in its errors; the source does
// not pass it on.
func TestUnreachableKeepsTheURLSecret(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	s, err := web.New(web.Config{URL: "http://metrics.example/q?token=s3cr3t-t0ken&start={{.Start}}", JSONPath: "$.value", Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Samples(context.Background(), query, t0.Add(step), t0.Add(step), step)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "connect") {
		t.Errorf("error %v: want a connection error without the URL's token", err)
	}
}

func TestRateLimitWaitsAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var first time.Time
		e := &endpoint{}
		e.answer = func(w http.ResponseWriter, _ *http.Request, _, _ time.Time) {
			if len(e.requests()) == 1 {
				first = time.Now()
				w.Header().Set("Retry-After", "4")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			if waited := time.Since(first); waited < 4*time.Second {
				t.Errorf("retried after %s, want the 4s asked", waited)
			}
			fmt.Fprint(w, `{"value": 3}`)
		}
		now := time.Now().Truncate(step)
		got, err := newSource(t, e, "$.value", apicall.Limits{}).Samples(context.Background(), query, now, now, step)
		if err != nil || len(got) != 1 || got[0].Value != 3 {
			t.Fatalf("got %v, %v; want 3 after one retry", got, err)
		}
	})
}

func TestSlowEndpointTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	s, err := web.New(web.Config{URL: "http://metrics.example/q?end={{.End}}", JSONPath: "$.value", Address: srv.URL,
		Limits: apicall.Limits{Timeout: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err = s.Samples(context.Background(), query, t0.Add(step), t0.Add(step), step)
	if err == nil || errors.Is(err, metrics.ErrNoData) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error %v, want a timeout", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("took %s, want about the 200ms timeout", took)
	}
}

func TestAddressReplacesTheHost(t *testing.T) {
	var asked *url.URL
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL
		fmt.Fprint(w, `{"value": 1}`)
	}))
	defer srv.Close()
	s, err := web.New(web.Config{URL: "https://metrics.example/v1/{{.Check}}?end={{.End}}", JSONPath: "$.value", Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Samples(context.Background(), query, t0.Add(step), t0.Add(step), step); err != nil {
		t.Fatal(err)
	}
	if asked == nil || asked.EscapedPath() != "/v1/latency+%26+co" {
		t.Errorf("asked %v, want the template's path at the address", asked)
	}
	if got := s.String(); !strings.Contains(got, strings.TrimPrefix(srv.URL, "http://")) {
		t.Errorf("String() = %q, want the address's host", got)
	}
}

func TestConfigRefuses(t *testing.T) {
	for _, tt := range []struct {
		cfg  web.Config
		want string
	}{
		{web.Config{URL: "https://m.example/{{.Nope}}", JSONPath: "$.v"}, "can't evaluate field Nope"},
		{web.Config{URL: "https://m.example/{{.Check", JSONPath: "$.v"}, "web metrics url"},
		{web.Config{URL: "ftp://m.example/", JSONPath: "$.v"}, "want an http:// or https:// URL"},
		{web.Config{URL: "https://m.example/", JSONPath: "v"}, "start at the root"},
		{web.Config{URL: "https://m.example/", JSONPath: "$.v", Address: "m.example"}, "address"},
	} {
		if _, err := web.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v): %v, want an error saying %q", tt.cfg, err, tt.want)
		}
	}
}
