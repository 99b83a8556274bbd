package judgeapi_test

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

	"github.com/perchhq/perch/engine/judgeapi"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// judgesFile has two analyses over the same counters: "bad" compares a canary that fails one
// request in five with a stable that fails one in a hundred, "good" a canary as good as stable.
const judgesFile = `metrics:
  prometheus: {address: "http://127.0.0.1:9090"}
analysis:
  interval: 1m
analyses:
  bad:
    checks:
      - name: errors
        events: {canary: errors_bad, baseline: errors_stable}
        total: {canary: requests, baseline: requests}
        direction: lower_is_better
        maxIncrease: 0.02
  good:
    checks:
      - name: errors
        events: {canary: errors_good, baseline: errors_stable}
        total: {canary: requests, baseline: requests}
        direction: lower_is_better
        maxIncrease: 0.02
  sparse:
    checks:
      - name: errors
        events: {canary: errors_sparse, baseline: errors_sparse}
        total: {canary: requests_sparse, baseline: requests_sparse}
        direction: lower_is_better
        maxIncrease: 0.02
`

// memSource answers each query with a constant per interval, on the grid the engine asks for.
type memSource struct {
	mu     sync.Mutex
	values map[string]float64
	err    error
	asks   int
}

func newMemSource() *memSource {
	return &memSource{values: map[string]float64{"requests": 1000, "errors_stable": 10, "errors_good": 10, "errors_bad": 200,
		"requests_sparse": 50, "errors_sparse": 1}}
}

func (m *memSource) Samples(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asks++
	if m.err != nil {
		return nil, m.err
	}
	v, ok := m.values[q.Expr]
	if !ok {
		return nil, metrics.ErrNoData
	}
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: v})
	}
	return out, nil
}

func newServer(t *testing.T, src judgeapi.Source, edit func(*judgeapi.Config)) *judgeapi.Server {
	t.Helper()
	j, err := spec.ParseJudges("judges.yaml", []byte(judgesFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg := judgeapi.Config{Judges: j, Source: src}
	if edit != nil {
		edit(&cfg)
	}
	s, err := judgeapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verdictBody is the JSON the Argo Rollouts web provider reads.
type verdictBody struct {
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	Run     string `json:"run"`
	Since   string `json:"since"`
	Checks  []struct {
		Check   string   `json:"check"`
		Verdict string   `json:"verdict"`
		Reason  string   `json:"reason"`
		Canary  *float64 `json:"canary"`
		PValue  *float64 `json:"pValue"`
	} `json:"checks"`
	Error string `json:"error"`
}

// get does what Argo Rollouts' web provider does: GET the URL, read JSON
// (https://argo-rollouts.readthedocs.io/en/stable/analysis/web/).
func get(t *testing.T, h http.Handler, url string, header ...string) (int, verdictBody) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var v verdictBody
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("GET %s: %d, not JSON: %q", url, w.Code, w.Body.String())
	}
	return w.Code, v
}

// askUntil asks every interval until the verdict is not inconclusive, up to n asks.
func askUntil(t *testing.T, h http.Handler, url string, n int) (asks int, v verdictBody) {
	t.Helper()
	for asks = 1; asks <= n; asks++ {
		code, got := get(t, h, url)
		if code != http.StatusOK {
			t.Fatalf("ask %d: %d %+v", asks, code, got)
		}
		if got.Verdict != "inconclusive" {
			return asks, got
		}
		v = got
		time.Sleep(time.Minute)
	}
	return asks, v
}

// TestArgoRuns: a run's window opens at its first ask, which is too early to judge; the bad
// canary fails and the good one passes as evidence accumulates over asks of the same run.
func TestArgoRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, newMemSource(), nil)
		code, v := get(t, s, "/v1/analyses/bad/verdict?run=checkout-6c9bd8675b")
		if code != http.StatusOK || v.Verdict != "inconclusive" || !strings.Contains(v.Reason, "too early") ||
			len(v.Checks) != 1 || v.Checks[0].Check != "errors" || v.Run != "checkout-6c9bd8675b" {
			t.Fatalf("first ask: %d %+v", code, v)
		}
		time.Sleep(time.Minute)
		asks, v := askUntil(t, s, "/v1/analyses/bad/verdict?run=checkout-6c9bd8675b", 30)
		if v.Verdict != "fail" || !strings.Contains(v.Reason, "errors failed") || v.Checks[0].PValue == nil {
			t.Fatalf("bad canary after %d asks: %+v", asks, v)
		}
		t.Logf("bad canary failed at ask %d: %s", asks, v.Reason)

		// A run asked for the first time now starts a window of its own.
		_, fresh := get(t, s, "/v1/analyses/bad/verdict?run=checkout-7d0ae9786c")
		if fresh.Verdict != "inconclusive" {
			t.Errorf("a new run's first ask: %+v", fresh)
		}
		asks, v = askUntil(t, s, "/v1/analyses/good/verdict?run=checkout-6c9bd8675b", 120)
		if v.Verdict != "pass" || v.Reason != "every check passed" {
			t.Fatalf("good canary after %d asks: %+v", asks, v)
		}
		t.Logf("good canary passed at ask %d", asks)
	})
}

// TestSourceFailureIsInconclusive: a failing source or a query with no data is never a pass.
// TestEvidenceAccumulates: each ask of a run judges its whole window so far, so a canary with
// too few requests to judge in one interval is judged on all of them, with the verdict perch
// analyze gives for the same series (its checks one family).
func TestEvidenceAccumulates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, newMemSource(), nil)
		judge, err := metrics.New(spec.DefaultJudge, nil)
		if err != nil {
			t.Fatal(err)
		}
		tolerance := 0.02
		get(t, s, "/v1/analyses/sparse/verdict?run=r1")
		for n := 1; n <= 200; n++ {
			time.Sleep(time.Minute)
			_, v := get(t, s, "/v1/analyses/sparse/verdict?run=r1")
			side := metrics.Series{}
			for range n {
				side.Events, side.Total = append(side.Events, 1), append(side.Total, 50)
			}
			want := judge.Judge(metrics.Input{Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: &tolerance, Family: 1, Unit: "%"},
				Canary: side, Baseline: side})
			if string(want.Verdict) != v.Checks[0].Verdict || want.Reason != v.Checks[0].Reason {
				t.Fatalf("ask %d: %s %q, the judge on %d intervals says %s %q", n, v.Checks[0].Verdict, v.Checks[0].Reason, n, want.Verdict, want.Reason)
			}
			if v.Verdict == "pass" {
				if n < 3 {
					t.Errorf("passed on %d intervals of 50 requests: the test needs a canary that takes several", n)
				}
				t.Logf("passed after %d intervals", n)
				return
			}
		}
		t.Fatal("never passed")
	})
}

func TestSourceFailureIsInconclusive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource()
		s := newServer(t, src, nil)
		get(t, s, "/v1/analyses/good/verdict?run=r1")
		time.Sleep(30 * time.Minute)
		src.err = errors.New("connection refused")
		_, v := get(t, s, "/v1/analyses/good/verdict?run=r1")
		if v.Verdict != "inconclusive" || !strings.Contains(v.Reason, "metrics source") || !strings.Contains(v.Reason, "connection refused") {
			t.Errorf("source down: %+v", v)
		}
		src.err = nil
		delete(src.values, "requests")
		_, v = get(t, s, "/v1/analyses/good/verdict?run=r1")
		if v.Verdict != "inconclusive" || !strings.Contains(v.Reason, "no data for requests") {
			t.Errorf("no data: %+v", v)
		}
	})
}

func TestRefusals(t *testing.T) {
	src := newMemSource()
	s := newServer(t, src, nil)
	for _, tc := range []struct {
		url    string
		status int
		want   string
	}{
		{"/v1/analyses/nope/verdict?run=r1", http.StatusNotFound, `no analysis "nope"`},
		{"/v1/analyses/good/verdict", http.StatusBadRequest, "missing run id"},
		{"/v1/analyses/good/verdict?run=" + strings.Repeat("a", judgeapi.MaxRunID+1), http.StatusBadRequest, "at most 256"},
		{"/v1/analyses/good/verdict?run=a%0Ab", http.StatusBadRequest, "use letters"},
		{"/v1/analyses/good/verdict?run=-a", http.StatusBadRequest, "use letters"},
		{"/v2/elsewhere", http.StatusNotFound, "no such endpoint"},
	} {
		code, v := get(t, s, tc.url)
		if code != tc.status || !strings.Contains(v.Error, tc.want) {
			t.Errorf("%s: %d %q, want %d %q", tc.url, code, v.Error, tc.status, tc.want)
		}
	}
	if src.asks != 0 || s.Runs() != 0 {
		t.Errorf("refused asks reached the source (%d) or were remembered (%d)", src.asks, s.Runs())
	}
}

// TestRunBounds: at most MaxRuns runs are remembered, the least recently asked forgotten
// first, and each for RunTTL after its last ask.
func TestRunBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, newMemSource(), func(c *judgeapi.Config) { c.MaxRuns, c.RunTTL = 3, time.Hour })
		since := func(run string) string {
			_, v := get(t, s, "/v1/analyses/good/verdict?run="+run)
			return v.Since
		}
		first := since("r0")
		time.Sleep(time.Minute)
		since("r1")
		since("r2")
		if got := since("r0"); got != first { // r0 is now the most recently asked
			t.Fatalf("r0 forgot its window: %s, want %s", got, first)
		}
		for i := range 100 {
			since(fmt.Sprintf("flood-%d", i))
		}
		if s.Runs() != 3 {
			t.Errorf("%d runs remembered, want at most 3", s.Runs())
		}
		time.Sleep(time.Minute)
		if got := since("r0"); got == first {
			t.Error("r0 still remembered after a flood of newer runs")
		}
		time.Sleep(2 * time.Hour)
		since("late")
		if s.Runs() != 1 {
			t.Errorf("%d runs remembered after their TTL, want only the new one", s.Runs())
		}
	})
}

func TestToken(t *testing.T) {
	s := newServer(t, newMemSource(), func(c *judgeapi.Config) { c.Token = "s3cret" })
	for _, header := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"}, {"Authorization", "Basic s3cret"}} {
		code, v := get(t, s, "/v1/analyses/good/verdict?run=r1", header...)
		if code != http.StatusUnauthorized || v.Error == "" {
			t.Errorf("with %q: %d %+v, want 401", header, code, v)
		}
	}
	if code, v := get(t, s, "/v1/analyses/good/verdict?run=r1", "Authorization", "Bearer s3cret"); code != http.StatusOK || v.Verdict == "" {
		t.Errorf("with the token: %d %+v", code, v)
	}
	// Flagger's payload carries the token in its metadata, as Flagger's docs show it.
	if code, body := post(s, "/v1/flagger/good", flaggerPayload); code != http.StatusUnauthorized {
		t.Errorf("flagger with a wrong token: %d %q", code, body)
	}
	if code, body := post(s, "/v1/flagger/good", `{"name": "podinfo", "namespace": "test"}`); code != http.StatusUnauthorized {
		t.Errorf("flagger without a token: %d %q", code, body)
	}
	withToken := strings.Replace(flaggerPayload, "16688eb5e9f289f1991c", "s3cret", 1)
	if code, body := post(s, "/v1/flagger/good", withToken); code != http.StatusForbidden || !strings.HasPrefix(body, "inconclusive: ") {
		t.Errorf("flagger with the token in its metadata: %d %q", code, body)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v1/flagger/good", strings.NewReader(`{"name": "podinfo", "namespace": "test"}`))
	r.Header.Set("Authorization", "Bearer s3cret")
	s.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("flagger with the bearer token: %d", w.Code)
	}
	w = httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != http.StatusOK {
		t.Errorf("healthz without the token: %d", w.Code)
	}
}

// flaggerPayload is Flagger's webhook payload as its docs show it
// (https://docs.flagger.app/usage/webhooks, "Webhook payload"), with the checksum Flagger's
// CanaryWebhookPayload carries.
const flaggerPayload = `{
    "name": "podinfo",
    "namespace": "test",
    "phase": "Progressing",
    "checksum": "6d9b8f8c7d",
    "metadata": {
        "test":  "all",
        "token":  "16688eb5e9f289f1991c"
    }
}`

func post(h http.Handler, url, body string) (int, string) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, url, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// TestFlaggerHooks: the gates get 200 only on pass; the rollback hook gets 200, roll back,
// only on fail. Every hook of one canary revision shares one run.
func TestFlaggerHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, newMemSource(), nil)
		want := func(url string, status int, verdict string) {
			t.Helper()
			code, body := post(s, url, flaggerPayload)
			if code != status || !strings.HasPrefix(body, verdict+": ") {
				t.Errorf("%s: %d %q, want %d %s", url, code, body, status, verdict)
			}
		}
		for _, a := range []string{"good", "bad"} {
			want("/v1/flagger/"+a+"?hook=confirm-traffic-increase", http.StatusForbidden, "inconclusive")
			want("/v1/flagger/"+a+"?hook=confirm-promotion", http.StatusForbidden, "inconclusive")
			want("/v1/flagger/"+a, http.StatusForbidden, "inconclusive")
			want("/v1/flagger/"+a+"?hook=rollback", http.StatusForbidden, "inconclusive")
		}
		for range 120 {
			time.Sleep(time.Minute)
			if code, _ := post(s, "/v1/flagger/good?hook=confirm-promotion", flaggerPayload); code == http.StatusOK {
				break
			}
		}
		want("/v1/flagger/good?hook=confirm-traffic-increase", http.StatusOK, "pass")
		want("/v1/flagger/good?hook=confirm-promotion", http.StatusOK, "pass")
		want("/v1/flagger/good", http.StatusOK, "pass")
		want("/v1/flagger/good?hook=rollback", http.StatusForbidden, "pass")
		want("/v1/flagger/bad?hook=confirm-traffic-increase", http.StatusForbidden, "fail")
		want("/v1/flagger/bad?hook=confirm-promotion", http.StatusForbidden, "fail")
		want("/v1/flagger/bad?hook=rollback", http.StatusOK, "fail")

		// A new revision of the canary (another checksum) is a new run.
		code, body := post(s, "/v1/flagger/bad?hook=rollback", strings.Replace(flaggerPayload, "6d9b8f8c7d", "77aa0e1f", 1))
		if code != http.StatusForbidden || !strings.HasPrefix(body, "inconclusive: ") {
			t.Errorf("a new revision: %d %q", code, body)
		}
	})
}

func TestFlaggerRefusals(t *testing.T) {
	src := newMemSource()
	s := newServer(t, src, nil)
	for _, tc := range []struct {
		name, url, body string
		status          int
		want            string
	}{
		{"unknown analysis", "/v1/flagger/nope", flaggerPayload, http.StatusNotFound, "no analysis"},
		{"unknown hook", "/v1/flagger/good?hook=pre-rollout", flaggerPayload, http.StatusBadRequest, "confirm-promotion"},
		{"not JSON", "/v1/flagger/good", "name=podinfo", http.StatusBadRequest, "webhook payload"},
		{"no name", "/v1/flagger/good", `{"namespace": "test"}`, http.StatusBadRequest, "name and namespace"},
		{"long name", "/v1/flagger/good", `{"namespace": "test", "name": "` + strings.Repeat("a", 300) + `"}`, http.StatusBadRequest, "at most"},
		{"bad checksum", "/v1/flagger/good", `{"namespace": "test", "name": "podinfo", "checksum": "a b"}`, http.StatusBadRequest, "use letters"},
		{"big body", "/v1/flagger/good", `{"namespace": "test", "name": "podinfo", "metadata": {"x": "` + strings.Repeat("a", judgeapi.MaxBody) + `"}}`, http.StatusRequestEntityTooLarge, "body over"},
	} {
		code, body := post(s, tc.url, tc.body)
		if code != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, code, body, tc.status, tc.want)
		}
	}
	if src.asks != 0 || s.Runs() != 0 {
		t.Errorf("refused asks reached the source (%d) or were remembered (%d)", src.asks, s.Runs())
	}
}

// blockingSource holds every ask until released.
type blockingSource struct{ release chan struct{} }

func (b blockingSource) Samples(ctx context.Context, _ metrics.Query, _, _ time.Time, _ time.Duration) ([]metrics.Sample, error) {
	select {
	case <-b.release:
		return nil, metrics.ErrNoData
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestBusyAndSlowSource: asks beyond MaxInFlight are refused with 503 rather than queued, and
// a source slower than LookTimeout makes the verdict inconclusive.
func TestBusyAndSlowSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := blockingSource{release: make(chan struct{})}
		s := newServer(t, src, func(c *judgeapi.Config) { c.MaxInFlight, c.LookTimeout = 1, 5*time.Second })
		get(t, s, "/v1/analyses/good/verdict?run=r1")
		time.Sleep(time.Hour)
		done := make(chan verdictBody)
		go func() {
			_, v := get(t, s, "/v1/analyses/good/verdict?run=r1")
			done <- v
		}()
		synctest.Wait()
		if code, v := get(t, s, "/v1/analyses/good/verdict?run=r2"); code != http.StatusServiceUnavailable {
			t.Errorf("second ask at once: %d %+v, want 503", code, v)
		}
		v := <-done
		if v.Verdict != "inconclusive" || !strings.Contains(v.Reason, "deadline exceeded") {
			t.Errorf("slow source: %+v", v)
		}
	})
}

func TestServeHealthz(t *testing.T) {
	s := newServer(t, newMemSource(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, "127.0.0.1:0", func(a string) { addrs <- a }) }()
	addr := <-addrs
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// TestHostileSourceText: a source's error is quoted in the reason, made printable: the JSON
// carries no raw C1 or bidi control, Flagger's one-line body no escape sequence or line break.
func TestHostileSourceText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource()
		s := newServer(t, src, nil)
		get(t, s, "/v1/analyses/good/verdict?run=r1")
		post(s, "/v1/flagger/good", flaggerPayload)
		time.Sleep(10 * time.Minute)
		src.err = errors.New("boom \x1b]0;owned\x07 \u009b2J \u202eevil\nsecond line")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/analyses/good/verdict?run=r1", nil))
		raw := w.Body.String()
		if strings.ContainsAny(raw, "\x1b\x07\u009b\u202e") || !strings.Contains(raw, `\u202e`) {
			t.Errorf("verdict JSON carries raw controls: %q", raw)
		}
		var v verdictBody
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || !strings.Contains(v.Reason, "\u202eevil") {
			t.Errorf("the JSON no longer decodes to the reason: %v %q", err, v.Reason)
		}
		_, body := post(s, "/v1/flagger/good", flaggerPayload)
		if strings.ContainsAny(body, "\x1b\x07\u009b\u202e") || strings.Count(body, "\n") != 1 {
			t.Errorf("flagger body: %q", body)
		}
	})
}
