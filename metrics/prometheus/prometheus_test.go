package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/prometheus"
)

// fakeAPI answers /api/v1/query_range with body, for the answers a real Prometheus is hard to
// make give (warnings, odd values, failures).
func fakeAPI(t *testing.T, status int, body string) *prometheus.Source {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query_range" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	src, err := prometheus.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// matrix is a query_range answer with one series per element of series, each a list of
// [unix seconds, "value"] points.
func matrix(warnings string, series ...string) string {
	var results []string
	for i, s := range series {
		results = append(results, fmt.Sprintf(`{"metric":{"pod":"p%d"},"values":[%s]}`, i, s))
	}
	w := ""
	if warnings != "" {
		w = fmt.Sprintf(`,"warnings":[%q]`, warnings)
	}
	return fmt.Sprintf(`{"status":"success","data":{"resultType":"matrix","result":[%s]}%s}`, strings.Join(results, ","), w)
}

var t0 = time.Unix(1_700_000_000, 0)

func TestSamplesAnswers(t *testing.T) {
	tests := []struct {
		name   string
		expr   string
		body   string
		want   []float64
		errIs  error
		errMsg string
	}{
		{"one series on the grid", "up", matrix("", `[1700000000,"1"],[1700000030,"2"],[1700000060,"3"]`), []float64{1, 2, 3}, nil, ""},
		{"gaps are NaN", "up", matrix("", `[1700000000,"1"],[1700000060,"3"]`), []float64{1, math.NaN(), 3}, nil, ""},
		{"NaN and Inf pass through", "up", matrix("", `[1700000000,"NaN"],[1700000030,"+Inf"],[1700000060,"-Inf"]`),
			[]float64{math.NaN(), math.Inf(1), math.Inf(-1)}, nil, ""},
		{"increase() is rounded", `sum(increase(x[30s]))`, matrix("", `[1700000000,"2.07"],[1700000030,"0.4"],[1700000060,"NaN"]`),
			[]float64{2, 0, math.NaN()}, nil, ""},
		{"other queries are not", `sum(rate(x[30s]))`, matrix("", `[1700000000,"2.07"],[1700000030,"0.4"],[1700000060,"1"]`),
			[]float64{2.07, 0.4, 1}, nil, ""},
		{"no series", "up", matrix(""), nil, metrics.ErrNoData, `query "up": no data (it matched no series`},
		{"two series", "http_requests_total", matrix("", `[1700000000,"1"]`, `[1700000000,"2"]`), nil, nil,
			`query "http_requests_total" returned 2 series ({pod="p0"}, {pod="p1"}): aggregate it to one, e.g. sum(…)`},
		{"warnings", "up", matrix("remote store down", `[1700000000,"1"]`), nil, nil,
			`query "up": prometheus warned the answer may be partial: remote store down`},
		{"bad query", "up{", `{"status":"error","errorType":"bad_data","error":"parse error: unexpected end of input"}`, nil, nil,
			`query "up{" on http://`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := http.StatusOK
			if strings.Contains(tt.body, `"status":"error"`) {
				status = http.StatusBadRequest
			}
			src := fakeAPI(t, status, tt.body)
			got, err := src.Samples(context.Background(), metrics.Query{Expr: tt.expr}, t0, t0.Add(time.Minute), 30*time.Second)
			if tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Fatalf("error %v, want %v", err, tt.errIs)
			}
			if tt.errMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errMsg) {
					t.Fatalf("error %v, want it to contain %q", err, tt.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d samples, want %d: %v", len(got), len(tt.want), got)
			}
			for i, s := range got {
				if want := t0.Add(time.Duration(i) * 30 * time.Second); !s.Time.Equal(want) {
					t.Errorf("sample %d at %s, want %s", i, s.Time, want)
				}
				if !same(s.Value, tt.want[i]) {
					t.Errorf("sample %d = %v, want %v", i, s.Value, tt.want[i])
				}
			}
		})
	}
}

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

func TestSamplesWarningsKeepTheData(t *testing.T) {
	src := fakeAPI(t, http.StatusOK, matrix("partial", `[1700000000,"5"]`))
	_, err := src.Samples(context.Background(), metrics.Query{Expr: "up"}, t0, t0, time.Second)
	var w *prometheus.WarningsError
	if !errors.As(err, &w) || len(w.Samples) != 1 || w.Samples[0].Value != 5 {
		t.Fatalf("want a *WarningsError carrying the sample, got %v", err)
	}
}

func TestSamplesRefusals(t *testing.T) {
	src := fakeAPI(t, http.StatusOK, matrix("", `[1700000000,"1"]`))
	tests := []struct {
		name       string
		q          metrics.Query
		start, end time.Time
		step       time.Duration
		want       string
	}{
		{"CloudWatch metric", metrics.Query{Metric: &metrics.MetricStat{Namespace: "AWS/ApplicationELB", MetricName: "RequestCount", Stat: "Sum"}},
			t0, t0, time.Second, "the prometheus source answers PromQL expressions"},
		{"empty", metrics.Query{Expr: " "}, t0, t0, time.Second, "empty expression"},
		{"no step", metrics.Query{Expr: "up"}, t0, t0, 0, "want a positive step"},
		{"window not begun", metrics.Query{Expr: "up"}, t0, t0.Add(-time.Second), time.Second, "has not begun: no data"},
		{"too many points", metrics.Query{Expr: "up"}, t0, t0.Add(4 * time.Hour), time.Second, "more than Prometheus's 11000 points"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := src.Samples(context.Background(), tt.q, tt.start, tt.end, tt.step)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSamplesTimesOutWithTheContext(t *testing.T) {
	timeouts := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		timeouts <- r.Form.Get("timeout")
		<-r.Context().Done()
	}))
	defer srv.Close()
	src, err := prometheus.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	_, err = src.Samples(ctx, metrics.Query{Expr: "up"}, t0, t0.Add(time.Minute), 30*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	if got := <-timeouts; got != "1s" {
		t.Errorf("timeout sent to Prometheus %q, want whole seconds (1s)", got)
	}
}

func TestNewRefusesBadAddresses(t *testing.T) {
	for _, addr := range []string{"", "prometheus:9090", "ftp://x"} {
		if _, err := prometheus.New(addr, nil); err == nil {
			t.Errorf("New(%q) accepted", addr)
		}
	}
}
