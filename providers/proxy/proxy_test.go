package proxy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/providers/proxy"
)

// backend answers with its name, and echoes what the tests ask of it.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) })
	mux.HandleFunc("/hash", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%s %d %s", name, n, hex.EncodeToString(h.Sum(nil)))
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "secret=%q host=%q", r.Header.Get("X-Secret"), r.Host)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, name+" broke", http.StatusInternalServerError)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type fixture struct {
	proxy  *proxy.Server
	client *http.Client
}

func start(t *testing.T, cfg proxy.Config) *fixture {
	t.Helper()
	if cfg.Stable == "" {
		cfg.Stable = backend(t, "stable").URL
	}
	if cfg.Canary == "" {
		cfg.Canary = backend(t, "canary").URL
	}
	p, err := proxy.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &fixture{proxy: p, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (f *fixture) setWeight(t *testing.T, percent int) {
	t.Helper()
	if err := f.proxy.SetWeight(context.Background(), percent); err != nil {
		t.Fatal(err)
	}
}

// get sends one request and returns the status and the body (the backend's name).
func (f *fixture) get(t *testing.T, path string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.proxy.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// count sends n requests from a few goroutines and counts the answers by body.
func (f *fixture) count(t *testing.T, n int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				resp, err := f.client.Get(f.proxy.URL())
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				got[string(body)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

func TestWeightSplitsWithinStatisticalBounds(t *testing.T) {
	const n = 10_000
	for _, percent := range []int{5, 30} {
		t.Run(fmt.Sprintf("%d%%", percent), func(t *testing.T) {
			f := start(t, proxy.Config{})
			f.setWeight(t, percent)
			from := time.Now()
			got := f.count(t, n)
			if got["canary"]+got["stable"] != n {
				t.Fatalf("answers %v, want %d from canary and stable", got, n)
			}
			// Binomial: 5 standard deviations either way (a false failure about once in 3.5 million runs).
			p := float64(percent) / 100
			mean, sd := n*p, math.Sqrt(n*p*(1-p))
			if c := float64(got["canary"]); math.Abs(c-mean) > 5*sd {
				t.Errorf("canary got %.0f of %d requests at %d%%, want %.0f ± %.0f", c, n, percent, mean, 5*sd)
			}
			// The builtin source saw the same requests.
			requests := sum(t, f.proxy.Source(), metrics.MeasureRequests, metrics.VersionCanary, from)
			if int(requests) != got["canary"] {
				t.Errorf("builtin source counted %v canary requests, the client got %d canary answers", requests, got["canary"])
			}
		})
	}
}

// sum adds up a count measure over one point covering everything since from (0 before the
// proxy has seen any request: the source then has no data at all).
func sum(t *testing.T, src *proxy.Source, measure, version string, from time.Time) float64 {
	t.Helper()
	end := time.Now().Add(2 * src.Resolution()) // past the slot being filled
	samples, err := src.Samples(context.Background(), metrics.BuiltinQuery(measure, version), end, end, end.Sub(from)+src.Resolution())
	if err != nil {
		t.Fatal(err)
	}
	switch len(samples) {
	case 0:
		return 0
	case 1:
		return samples[0].Value
	}
	t.Fatalf("%s{%s}: %d samples, want 1", measure, version, len(samples))
	return 0
}

func TestWeightChangeTakesEffectOnTheNextRequest(t *testing.T) {
	f := start(t, proxy.Config{})
	for _, tc := range []struct {
		percent int
		want    string
	}{{0, "stable"}, {100, "canary"}, {0, "stable"}, {100, "canary"}} {
		f.setWeight(t, tc.percent)
		if got, _ := f.proxy.Weight(context.Background()); got != tc.percent {
			t.Fatalf("Weight() = %d after SetWeight(%d)", got, tc.percent)
		}
		if _, body := f.get(t, "/", nil); body != tc.want {
			t.Errorf("at %d%% the next request reached %s, want %s", tc.percent, body, tc.want)
		}
	}
	for _, bad := range []int{-1, 101} {
		if err := f.proxy.SetWeight(context.Background(), bad); err == nil {
			t.Errorf("SetWeight(%d) accepted", bad)
		}
	}
}

func TestStickyUsersOnlyMoveFromStableToCanary(t *testing.T) {
	weights := []int{0, 1, 5, 25, 50, 75, 100}
	cases := []struct {
		name   string
		cfg    proxy.Config
		header func(user string) http.Header
	}{
		{"header", proxy.Config{StickyHeader: "X-User"}, func(u string) http.Header { return http.Header{"X-User": {u}} }},
		{"cookie", proxy.Config{StickyCookie: "uid"}, func(u string) http.Header { return http.Header{"Cookie": {"theme=dark; uid=" + u}} }},
	}
	const users = 300
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, tc.cfg)
			onCanary := make([]bool, users)
			for _, w := range weights {
				f.setWeight(t, w)
				n := 0
				for u := range users {
					_, body := f.get(t, "/", tc.header(fmt.Sprintf("user-%d", u)))
					again := body == "canary"
					if onCanary[u] && !again {
						t.Fatalf("user-%d moved back from canary to stable when the weight rose to %d%%", u, w)
					}
					if w == 25 {
						if _, body2 := f.get(t, "/", tc.header(fmt.Sprintf("user-%d", u))); body2 != body {
							t.Fatalf("user-%d got %s then %s at %d%%", u, body, body2, w)
						}
					}
					onCanary[u] = again
					if again {
						n++
					}
				}
				p := float64(w) / 100
				if mean, sd := users*p, math.Sqrt(users*p*(1-p)); math.Abs(float64(n)-mean) > 5*sd+0.5 {
					t.Errorf("at %d%%: %d of %d users on canary, want %.0f ± %.0f", w, n, users, mean, 5*sd)
				}
			}
		})
	}
}

func TestOverrideHeaderPinsARequest(t *testing.T) {
	f := start(t, proxy.Config{OverrideHeader: "X-Perch-Version", OverrideToken: "s3cret", StickyHeader: "X-User"})
	cases := []struct {
		name    string
		percent int
		value   string
		want    string
	}{
		{"canary at 1%", 1, "canary", "canary"},
		{"stable at 100%", 100, "stable", "stable"},
		{"case and spaces ignored", 1, " Canary ", "canary"},
		{"unknown value routes by weight", 100, "blue", "canary"},
		{"override beats stickiness", 100, "stable", "stable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.setWeight(t, tc.percent)
			_, body := f.get(t, "/", http.Header{"X-Perch-Version": {tc.value}, "X-Perch-Token": {"s3cret"}, "X-User": {"alice"}})
			if body != tc.want {
				t.Errorf("got %s, want %s", body, tc.want)
			}
		})
	}
}

func TestUpstreamDownIs502CountedAsError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	f := start(t, proxy.Config{Canary: down})
	from := time.Now()
	f.setWeight(t, 100)
	for range 3 {
		if code, _ := f.get(t, "/", nil); code != http.StatusBadGateway {
			t.Fatalf("status %d from a canary that is down, want 502", code)
		}
	}
	f.setWeight(t, 0)
	if code, _ := f.get(t, "/fail", nil); code != http.StatusInternalServerError {
		t.Fatalf("status %d from a failing stable, want its 500", code)
	}
	for _, tc := range []struct {
		measure, version string
		want             float64
	}{
		{metrics.MeasureErrors, metrics.VersionCanary, 3},
		{metrics.MeasureRequests, metrics.VersionCanary, 3},
		{metrics.MeasureErrors, metrics.VersionStable, 1},
	} {
		if got := sum(t, f.proxy.Source(), tc.measure, tc.version, from); got != tc.want {
			t.Errorf("%s{%s} = %v, want %v", tc.measure, tc.version, got, tc.want)
		}
	}
	if got := counterValue(t, f.proxy, "canary", "502"); got != 3 {
		t.Errorf(`perch_proxy_requests_total{version="canary",code="502"} = %v, want 3`, got)
	}
}

func TestClientGoneIsNotAnError(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	f := start(t, proxy.Config{Canary: slow.URL})
	f.setWeight(t, 100)
	from := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.proxy.URL(), nil)
	if resp, err := f.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the slow request did not time out")
	}
	deadline := time.Now().Add(5 * time.Second)
	for sum(t, f.proxy.Source(), metrics.MeasureRequests, metrics.VersionCanary, from) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned request was never recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := sum(t, f.proxy.Source(), metrics.MeasureErrors, metrics.VersionCanary, from); got != 0 {
		t.Errorf("a request the client abandoned counted as %v canary errors, want 0", got)
	}
	if got := counterValue(t, f.proxy, "canary", "499"); got != 1 {
		t.Errorf(`perch_proxy_requests_total{version="canary",code="499"} = %v, want 1`, got)
	}
}

func TestMetricsExported(t *testing.T) {
	f := start(t, proxy.Config{})
	f.setWeight(t, 100)
	for range 4 {
		f.get(t, "/", nil)
	}
	f.get(t, "/fail", nil)
	f.setWeight(t, 0)
	f.get(t, "/", nil)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(f.proxy); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, f.proxy, "canary", "200"); got != 4 {
		t.Errorf(`requests_total{canary,200} = %v, want 4`, got)
	}
	if got := counterValue(t, f.proxy, "canary", "500"); got != 1 {
		t.Errorf(`requests_total{canary,500} = %v, want 1`, got)
	}
	if got := counterValue(t, f.proxy, "stable", "200"); got != 1 {
		t.Errorf(`requests_total{stable,200} = %v, want 1`, got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var histograms int
	for _, mf := range families {
		if mf.GetName() != "perch_proxy_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			want := map[string]uint64{"canary": 5, "stable": 1}[label(m, "version")]
			if h.GetSampleCount() != want || h.GetSampleSum() <= 0 {
				t.Errorf("duration histogram %s: count %d sum %v, want count %d and a positive sum", label(m, "version"), h.GetSampleCount(), h.GetSampleSum(), want)
			}
			histograms++
		}
	}
	if histograms != 2 {
		t.Errorf("%d duration histograms, want one per version", histograms)
	}
}

// counterValue reads perch_proxy_requests_total for a version and code (0 if absent).
func counterValue(t *testing.T, c prometheus.Collector, version, code string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "perch_proxy_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "version") == version && label(m, "code") == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  proxy.Config
		want string
	}{
		{"no stable", proxy.Config{Canary: "http://127.0.0.1:1"}, "stable backend"},
		{"bad canary scheme", proxy.Config{Stable: "http://127.0.0.1:1", Canary: "ftp://x"}, "canary backend"},
		{"two sticky keys", proxy.Config{Stable: "http://a", Canary: "http://b", StickyHeader: "X-User", StickyCookie: "uid"}, "not both"},
		{"resolution too fine", proxy.Config{Stable: "http://a", Canary: "http://b", Resolution: time.Microsecond}, "below 1ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := proxy.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// TestLatencyIsTheBackendsTime uploads a body slowly to a backend that answers 50 ms after
// reading it: the recorded latency is the backend's 50 ms, not the client's upload.
func TestLatencyIsTheBackendsTime(t *testing.T) {
	const backendTime, upload = 50 * time.Millisecond, time.Second
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(backendTime)
		fmt.Fprint(w, "done")
	}))
	t.Cleanup(slow.Close)
	f := start(t, proxy.Config{Canary: slow.URL})
	f.setWeight(t, 100)
	from := time.Now()
	body, w := io.Pipe()
	go func() {
		for range 5 {
			time.Sleep(upload / 5)
			w.Write([]byte("chunk"))
		}
		w.Close()
	}()
	resp, err := f.client.Post(f.proxy.URL(), "text/plain", body)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	end := time.Now().Add(2 * f.proxy.Source().Resolution())
	samples, err := f.proxy.Source().Samples(context.Background(), metrics.BuiltinQuery(metrics.MeasureLatencyP99, metrics.VersionCanary), end, end, end.Sub(from)+f.proxy.Source().Resolution())
	if err != nil || len(samples) != 1 {
		t.Fatalf("latency samples %v, %v: want one", samples, err)
	}
	// The sketch is accurate to a few percent; the upload took 20 times the backend's time.
	if got := time.Duration(samples[0].Value * float64(time.Second)); got < backendTime*9/10 || got >= upload/2 {
		t.Errorf("recorded latency %s, want the backend's %s, not the client's %s upload", got, backendTime, upload)
	}
}
