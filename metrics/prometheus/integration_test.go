package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	client "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/prometheus"
)

// prometheusBinary finds Debian's prometheus; without it the test fails in CI and skips
// elsewhere.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus is not installed: .ci/run installs the Debian package prometheus")
		}
		t.Skip("prometheus is not installed; apt-get install -y prometheus to run this test")
	}
	return path
}

// service is a test HTTP service that counts requests and observes latency per version the
// way an instrumented app does, with a steady made-up load: each 50 ms tick, stable serves 10
// requests (one error every 10th tick: 1%) in 0.1 s, canary 5 requests (one error: 20%) in 0.3 s.
type service struct {
	requests *client.CounterVec
	duration *client.HistogramVec
}

func newService(t *testing.T) (addr string) {
	t.Helper()
	reg := client.NewRegistry()
	s := service{
		requests: client.NewCounterVec(client.CounterOpts{Name: "http_requests_total", Help: "Requests served."}, []string{"version", "code"}),
		duration: client.NewHistogramVec(client.HistogramOpts{Name: "http_request_duration_seconds", Help: "Request latency.",
			Buckets: []float64{0.05, 0.1, 0.2, 0.4, 0.8}}, []string{"version"}),
	}
	reg.MustRegister(s.requests, s.duration)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		began, n := time.Now(), 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// Catch up on ticks a busy machine delayed, so the load is exact over time.
			for due := int(time.Since(began) / (50 * time.Millisecond)); n < due; n++ {
				s.serve("stable", 10, n%10 == 0, 0.1)
				s.serve("canary", 5, true, 0.3)
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait(); srv.Close() })
	return strings.TrimPrefix(srv.URL, "http://")
}

func (s service) serve(version string, n int, oneError bool, latency float64) {
	errors := 0
	if oneError {
		errors = 1
	}
	s.requests.WithLabelValues(version, "500").Add(float64(errors))
	s.requests.WithLabelValues(version, "200").Add(float64(n - errors))
	for range n {
		s.duration.WithLabelValues(version).Observe(latency)
	}
}

// startPrometheus runs prometheus on a free loopback port, scraping target every 500ms, and
// returns its address once it is ready. Four scrapes in each 2s window: on a busy machine a
// scrape comes late or not at all, and increase() over a window holding one sample is no data.
func startPrometheus(t *testing.T, bin, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	err = os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 500ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: perch-test
    static_configs:
      - targets: ['%s']
`, target), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	addr := "http://" + listen
	waitFor(t, 15*time.Second, "prometheus to be ready", func() bool {
		resp, err := http.Get(addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %s for %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestAgainstRealPrometheus(t *testing.T) {
	bin := prometheusBinary(t)
	addr := startPrometheus(t, bin, newService(t))
	src, err := prometheus.New(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const step = 2 * time.Second
	total := func(version string) metrics.Query {
		return metrics.Query{Expr: fmt.Sprintf(`sum(increase(http_requests_total{version=%q}[2s]))`, version)}
	}
	errs := func(version string) metrics.Query {
		return metrics.Query{Expr: fmt.Sprintf(`sum(increase(http_requests_total{version=%q,code="500"}[2s]))`, version)}
	}
	// The first scrape comes about 5 s after start; then wait for four whole intervals.
	var start time.Time
	waitFor(t, 30*time.Second, "the first scrapes", func() bool {
		now := time.Now()
		s, err := src.Samples(ctx, total("canary"), now.Add(-time.Second), now, step)
		if err == nil && len(s) > 0 && s[len(s)-1].Value > 0 {
			start = now.Truncate(step).Add(step)
			return true
		}
		return false
	})
	// Four whole intervals, then two scrape intervals more, so every target has been scraped
	// past the last sample's time: without the margin the newest sample can be NaN.
	end := start.Add(4 * step)
	time.Sleep(time.Until(end.Add(2 * time.Second)))

	fetch := func(q metrics.Query) []float64 {
		t.Helper()
		samples, err := src.Samples(ctx, q, start, end, step)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if len(samples) < 4 {
			t.Fatalf("%s: %d samples from %s to %s at %s, want at least 4", q, len(samples), start, end, step)
		}
		var v []float64
		for i, s := range samples {
			if want := start.Add(time.Duration(i) * step); !s.Time.Equal(want) {
				t.Fatalf("%s: sample %d at %s, want %s", q, i, s.Time, want)
			}
			v = append(v, s.Value)
		}
		return v
	}
	canaryTotal, canaryErrors := fetch(total("canary")), fetch(errs("canary"))
	stableTotal, stableErrors := fetch(total("stable")), fetch(errs("stable"))
	checkCounts(t, canaryTotal, canaryErrors, stableTotal)

	// The default judge, as the engine asks it, rolls this canary back.
	tolerance := 0.01
	judge, err := metrics.New("sequential", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := judge.Judge(metrics.Input{
		Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: &tolerance, Family: 2},
		Canary:   metrics.Series{Events: canaryErrors, Total: canaryTotal},
		Baseline: metrics.Series{Events: stableErrors, Total: stableTotal},
	})
	if r.Verdict != metrics.Fail || math.Abs(float64(r.Canary)-0.2) > 0.03 || float64(r.Baseline) > 0.02 {
		t.Fatalf("errors: %s (canary %v, baseline %v): %s", r.Verdict, r.Canary, r.Baseline, r.Reason)
	}

	// Latency quantiles from the histograms: canary requests take 0.3 s (bucket 0.2–0.4).
	p50 := func(version string) metrics.Query {
		return metrics.Query{Expr: fmt.Sprintf(`histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{version=%q}[2s])))`, version)}
	}
	for _, v := range fetch(p50("canary")) {
		if v < 0.2 || v > 0.4 {
			t.Errorf("canary p50 %v, want within the 0.2–0.4 bucket", v)
		}
	}

	// The histograms themselves, one series per le: every canary request in the 0.2–0.4
	// bucket, every stable one in the 0.05–0.1 bucket; the default judge rolls the canary back.
	buckets := func(version string) metrics.Query {
		return metrics.Query{Expr: fmt.Sprintf(`sum by (le) (increase(http_request_duration_seconds_bucket{version=%q}[2s]))`, version)}
	}
	histogram := func(version string) metrics.Series {
		t.Helper()
		h, err := src.Histogram(ctx, buckets(version), start, end, step)
		if err != nil {
			t.Fatalf("%s: %v", version, err)
		}
		if want := (metrics.Bounds{0.05, 0.1, 0.2, 0.4, 0.8, math.Inf(1)}); !slices.Equal(h.Bounds, want) || len(h.Points) < 4 {
			t.Fatalf("%s: bounds %v and %d points, want %v and at least 4", version, h.Bounds, len(h.Points), want)
		}
		s := metrics.Series{Bounds: h.Bounds}
		for i, p := range h.Points {
			if want := start.Add(time.Duration(i) * step); !p.Time.Equal(want) {
				t.Fatalf("%s: point %d at %s, want %s", version, i, p.Time, want)
			}
			s.Buckets = append(s.Buckets, p.Counts)
		}
		return s
	}
	canaryHist, stableHist := histogram("canary"), histogram("stable")
	for i, row := range canaryHist.Buckets {
		if n := row[5]; row[2] != 0 || row[3] != n || row[4] != n || n != canaryTotal[i] {
			t.Errorf("canary interval %d: counts %v, want none by 0.2 and all %v by 0.4", i, row, canaryTotal[i])
		}
	}
	for i, row := range stableHist.Buckets {
		if n := row[5]; row[0] != 0 || row[1] != n || n != stableTotal[i] {
			t.Errorf("stable interval %d: counts %v, want none by 0.05 and all %v by 0.1", i, row, stableTotal[i])
		}
	}
	r = judge.Judge(metrics.Input{Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: &tolerance, Family: 2},
		Canary: canaryHist, Baseline: stableHist})
	if r.Verdict != metrics.Fail || !strings.Contains(r.Reason, "the share slower than") {
		t.Errorf("histograms: %s: %s", r.Verdict, r.Reason)
	}
	// Buckets not aggregated by le, and a query that lost its le label, are refused.
	_, err = src.Histogram(ctx, metrics.Query{Expr: `increase(http_request_duration_seconds_bucket[2s])`}, start, end, step)
	if err == nil || !strings.Contains(err.Error(), `returned several series for le=`) || !strings.Contains(err.Error(), "sum by (le)") {
		t.Errorf("buckets of two versions: got %v", err)
	}
	_, err = src.Histogram(ctx, metrics.Query{Expr: `sum(increase(http_request_duration_seconds_bucket{version="canary"}[2s]))`}, start, end, step)
	if err == nil || !strings.Contains(err.Error(), "without an le label") {
		t.Errorf("buckets summed over le: got %v", err)
	}

	// No series, and several series, are told apart from data.
	_, err = src.Samples(ctx, metrics.Query{Expr: `sum(http_requests_total{version="nope"})`}, start, end, step)
	if !errors.Is(err, metrics.ErrNoData) {
		t.Errorf("no series: want ErrNoData, got %v", err)
	}
	_, err = src.Samples(ctx, metrics.Query{Expr: `http_requests_total{version="canary"}`}, start, end, step)
	if err == nil || !strings.Contains(err.Error(), `returned 2 series`) {
		t.Errorf("two series: got %v", err)
	}
}

// checkCounts compares each interval's counts with the service's load: 2 s is 40 ticks, 200
// canary requests with 40 errors and 400 stable ones. Scrape timing and increase()'s
// extrapolation move the counts a little; rounding keeps them whole.
func checkCounts(t *testing.T, canaryTotal, canaryErrors, stableTotal []float64) {
	t.Helper()
	for i := range canaryTotal {
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"canary requests", canaryTotal[i], 200}, {"canary errors", canaryErrors[i], 40}, {"stable requests", stableTotal[i], 400}} {
			if c.got != math.Round(c.got) || math.Abs(c.got-c.want) > 0.35*c.want {
				t.Errorf("interval %d: %s %v, want a whole number near %v", i, c.name, c.got, c.want)
			}
		}
	}
}
