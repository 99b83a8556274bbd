package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/providers/proxy/admin"
)

func TestParseAddress(t *testing.T) {
	good := map[string]admin.Address{
		"unix:///run/perch/checkout.sock": {Path: "/run/perch/checkout.sock"},
		"http://127.0.0.1:9901":           {HostPort: "127.0.0.1:9901"},
		"http://[::1]:9901/":              {HostPort: "[::1]:9901"},
		"http://localhost:9901":           {HostPort: "localhost:9901"},
	}
	for in, want := range good {
		got, err := admin.ParseAddress(in)
		if err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != strings.TrimSuffix(in, "/") {
			t.Errorf("%q reads back as %q", in, got.String())
		}
	}
	bad := map[string]string{
		"unix://run/perch.sock":               "three slashes",
		"unix:run/perch.sock":                 "three slashes",
		"unix:///" + strings.Repeat("x", 120): "too long",
		"http://127.0.0.1":                    "HOST:PORT",
		"http://127.0.0.1:9901/admin":         "nothing after it",
		"https://127.0.0.1:9901":              "want unix:///PATH or http://",
		"127.0.0.1:9901":                      "want unix:///PATH or http://",
	}
	for in, msg := range bad {
		if _, err := admin.ParseAddress(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseAddress(%q): %v, want an error saying %q", in, err, msg)
		}
	}
	for in, want := range map[string]bool{"http://127.0.0.1:1": true, "http://127.8.0.1:1": true, "http://[::1]:1": true,
		"http://localhost:1": true, "http://0.0.0.0:1": false, "http://10.0.0.1:1": false, "http://example.com:1": false} {
		a, _ := admin.ParseAddress(in)
		if a.IsLoopback() != want {
			t.Errorf("%s: loopback %v, want %v", in, a.IsLoopback(), want)
		}
	}
}

func TestCheckSegments(t *testing.T) {
	ok := []admin.Segment{{Name: "beta-users", Match: json.RawMessage(`{"header": {"name": "X-Beta", "value": "1"}}`)}}
	if err := admin.CheckSegments(ok); err != nil {
		t.Errorf("a good segment: %v", err)
	}
	for name, segs := range map[string][]admin.Segment{
		"want 1 to 64":       {{Name: "", Match: json.RawMessage(`{"a": 1}`)}},
		"used twice":         {{Name: "a", Match: json.RawMessage(`{"a": 1}`)}, {Name: "a", Match: json.RawMessage(`{"a": 2}`)}},
		"want a JSON object": {{Name: "a", Match: json.RawMessage(`"header"`)}},
	} {
		if err := admin.CheckSegments(segs); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %v, want an error saying %q", segs, err, name)
		}
	}
}

// TestClientSaysWhatWentWrong: refusals and mismatches come back as errors naming the proxy
// and what to check.
func TestClientSaysWhatWentWrong(t *testing.T) {
	var reported int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "Bearer good-token-0123456789":
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(admin.Problem{Error: "missing or wrong bearer token"})
		case r.URL.Path == admin.PathWeight:
			json.NewEncoder(w).Encode(admin.Weight{CanaryPercent: reported})
		case r.URL.Path == admin.PathSamples:
			q := r.URL.Query()
			if q.Get("query") != `errors{version="canary"}` || q.Get("step") != "30s" {
				http.Error(w, "unexpected query "+r.URL.RawQuery, http.StatusBadRequest)
				return
			}
			json.NewEncoder(w).Encode(admin.Samples{Samples: []metrics.Sample{{Time: time.Unix(30, 0).UTC(), Value: 2}}})
		default:
			w.Write([]byte("<html>not a perch proxy</html>"))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	addr := "http://" + strings.TrimPrefix(srv.URL, "http://")
	bad, _ := admin.New(admin.Config{Address: addr, Token: "bad-token-0123456789"})
	if _, err := bad.Weight(ctx); err == nil || !strings.Contains(err.Error(), "401 Unauthorized: missing or wrong bearer token (check traffic.proxy.adminToken") {
		t.Errorf("wrong token: %v", err)
	}
	c, _ := admin.New(admin.Config{Address: addr, Token: "good-token-0123456789"})
	if !strings.HasPrefix(c.String(), "perch proxy at http://127.0.0.1:") {
		t.Errorf("String() = %q", c.String())
	}
	reported = 7
	if err := c.SetWeight(ctx, 20); err == nil || !strings.Contains(err.Error(), "set the canary to 20%, but it reports 7%") {
		t.Errorf("a proxy reading back another weight: %v", err)
	}
	if err := c.SetWeight(ctx, 101); err == nil {
		t.Error("101% was sent")
	}
	samples, err := c.Samples(ctx, metrics.BuiltinQuery(metrics.MeasureErrors, metrics.VersionCanary), time.Unix(0, 0), time.Unix(30, 0), 30*time.Second)
	if err != nil || len(samples) != 1 || samples[0].Value != 2 {
		t.Errorf("samples %v, %v", samples, err)
	}
	if _, err := c.Samples(ctx, metrics.Query{Metric: &metrics.MetricStat{Namespace: "AWS/ApplicationELB"}}, time.Unix(0, 0), time.Unix(30, 0), 30*time.Second); err == nil {
		t.Error("a CloudWatch metric was sent to the proxy")
	}
	if _, err := c.Segments(ctx); err == nil || !strings.Contains(err.Error(), "not the answer of a perch proxy") {
		t.Errorf("an answer that is not JSON: %v", err)
	}
}

func TestClientNamesTheSocketItCannotReach(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.sock")
	c, err := admin.New(admin.Config{Address: "unix://" + path})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Weight(context.Background())
	if err == nil || !strings.Contains(err.Error(), "perch proxy at unix://"+path) || strings.Contains(err.Error(), "perch-proxy") {
		t.Errorf("no proxy on the socket: %v", err)
	}
}

// TestClientRefusesBrokenHistograms: a histogram answer the judge could not take (bounds that
// do not ascend to +Inf, counts that do not match them or shrink with the bound) is an error,
// not data.
func TestClientRefusesBrokenHistograms(t *testing.T) {
	var answer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != admin.PathHistogram || r.URL.Query().Get("query") != `latency_histogram{version="canary"}` {
			http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	c, _ := admin.New(admin.Config{Address: srv.URL, Token: "token-0123456789"})
	ask := func() (metrics.Histogram, error) {
		return c.Histogram(context.Background(), metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionCanary),
			time.Unix(0, 0), time.Unix(30, 0), 30*time.Second)
	}
	answer = `{"bounds": [0.1, 1, "+Inf"], "points": [{"time": "1970-01-01T00:00:30Z", "counts": [3, 9, 10]}]}`
	if h, err := ask(); err != nil || len(h.Points) != 1 || h.Points[0].Counts[2] != 10 || h.Bounds[1] != 1 {
		t.Fatalf("a good answer: %+v, %v", h, err)
	}
	for want, body := range map[string]string{
		"want ascending bounds ending in +Inf": `{"bounds": [0.1, 1], "points": []}`,
		"2 counts for 3 bounds":                `{"bounds": [0.1, 1, "+Inf"], "points": [{"time": "1970-01-01T00:00:30Z", "counts": [3, 9]}]}`,
		"do not grow with the bound":           `{"bounds": [0.1, 1, "+Inf"], "points": [{"time": "1970-01-01T00:00:30Z", "counts": [3, 2, 10]}]}`,
		"not the answer of a perch proxy":      `{"bounds": [0.1, "soon"]}`,
	} {
		answer = body
		if _, err := ask(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", body, err, want)
		}
	}
}
