package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/notify"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// rolloutYAML rolls out in two steps with a critical error-rate check; notify entries are
// appended by each test.
const rolloutYAML = `name: web
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {interval: 10s, stabilization: 10s, judge: threshold}
checks:
  - name: errors
    critical: true
    direction: lower_is_better
    maxIncrease: 0.01
    events: {canary: canary_errors, baseline: stable_errors}
    total: {canary: canary_requests, baseline: stable_requests}
steps:
  - {setWeight: 10, analyze: 1m}
  - {setWeight: 50, analyze: 1m}
`

// notifyBoth sends to a Slack webhook and a generic one, with secrets from the environment.
const notifyBoth = `notify:
  - slack: {webhookURL: "https://hooks.slack.test/services/${SLACK_TOKEN}"}
  - webhook:
      url: "https://hooks.example.test/perch"
      headers: {Authorization: "Bearer ${HOOK_TOKEN}", X-Team: payments}
`

var testEnv = map[string]string{"SLACK_TOKEN": "T0/B0/slack-secret", "HOOK_TOKEN": "hook-secret"}

func getenv(name string) string { return testEnv[name] }

func parseSpec(t *testing.T, yaml string) *spec.Rollout {
	t.Helper()
	r, err := spec.Parse("web.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse spec: %v", err)
	}
	return r
}

// world is an in-memory provider and source: the canary has 30% errors once its weight
// reaches failAt (never if 0), and the source fails while down is set.
type world struct {
	mu     sync.Mutex
	weight int
	failAt int
	down   bool
}

func (w *world) SetWeight(_ context.Context, percent int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.weight = percent
	return nil
}

func (w *world) Weight(context.Context) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.weight, nil
}

func (w *world) setDown(down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down = down
}

func (w *world) Samples(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.down {
		return nil, errors.New("prometheus: connection refused")
	}
	v := 100.0
	switch q.Expr {
	case "stable_errors":
		v = 0
	case "canary_errors":
		v = 0
		if w.failAt > 0 && w.weight >= w.failAt {
			v = 30
		}
	}
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: v})
	}
	return out, nil
}

// rollout is a real engine with a notifier attached the way perch wires them.
type rollout struct {
	eng      *engine.Engine
	outcome  engine.Outcome
	stop     context.CancelFunc // stops the engine, as a signal would
	done     chan struct{}      // closed when the engine's Run returns
	notified chan struct{}      // closed when the notifier's Run returns
}

func startRollout(t *testing.T, spec *spec.Rollout, w *world, opts notify.Options) *rollout {
	t.Helper()
	return startWith(t, engine.Config{Spec: spec, Router: w, Source: w}, opts)
}

func startWith(t *testing.T, cfg engine.Config, opts notify.Options) *rollout {
	t.Helper()
	spec := cfg.Spec
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(spec, getenv, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &rollout{eng: eng, stop: stop, done: make(chan struct{}), notified: make(chan struct{})}
	events, from := eng.Events(), eng.Snapshot()
	go func() {
		defer close(r.notified)
		n.Run(context.Background(), events, from)
	}()
	go func() {
		defer close(r.done)
		r.outcome, _ = eng.Run(ctx)
	}()
	return r
}

// fakeNet is an in-memory http.RoundTripper standing in for the receivers, by host, so the
// notifier can run inside a synctest bubble.
type fakeNet struct {
	mu       sync.Mutex
	handlers map[string]func(n int, req *http.Request) (*http.Response, error)
	got      map[string][]delivery
}

// delivery is one request a receiver got.
type delivery struct {
	at     time.Time
	path   string
	header http.Header
	body   []byte
	err    error // what the receiver answered with instead of a response
	status int
}

func newFakeNet() *fakeNet {
	return &fakeNet{handlers: map[string]func(int, *http.Request) (*http.Response, error){}, got: map[string][]delivery{}}
}

func (f *fakeNet) handle(host string, h func(n int, req *http.Request) (*http.Response, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[host] = h
}

func (f *fakeNet) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	f.mu.Lock()
	h := f.handlers[req.URL.Host]
	n := len(f.got[req.URL.Host]) + 1
	f.mu.Unlock()
	d := delivery{at: time.Now(), path: req.URL.Path, header: req.Header.Clone(), body: body}
	res, err := answer(200)(n, req)
	if h != nil {
		res, err = h(n, req)
	}
	d.err = err
	if res != nil {
		d.status = res.StatusCode
	}
	f.mu.Lock()
	f.got[req.URL.Host] = append(f.got[req.URL.Host], d)
	f.mu.Unlock()
	return res, err
}

// delivered are the requests host answered with a 2xx.
func (f *fakeNet) delivered(host string) []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []delivery
	for _, d := range f.got[host] {
		if d.err == nil && d.status/100 == 2 {
			out = append(out, d)
		}
	}
	return out
}

func (f *fakeNet) attempts(host string) []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]delivery(nil), f.got[host]...)
}

func (f *fakeNet) client() *http.Client { return &http.Client{Transport: f} }

// answer responds with status (and Retry-After, if given).
func answer(status int, retryAfter ...string) func(int, *http.Request) (*http.Response, error) {
	return func(_ int, req *http.Request) (*http.Response, error) {
		res := &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
			Header: http.Header{}, Body: io.NopCloser(strings.NewReader(http.StatusText(status) + "\n")), Request: req}
		if len(retryAfter) > 0 {
			res.Header.Set("Retry-After", retryAfter[0])
		}
		return res, nil
	}
}

// hang never answers: the request ends when its context does.
func hang(_ int, req *http.Request) (*http.Response, error) {
	<-req.Context().Done()
	return nil, req.Context().Err()
}

// webhookDocs decodes the generic webhook's deliveries.
func webhookDocs(t *testing.T, ds []delivery) []notify.WebhookDocument {
	t.Helper()
	var out []notify.WebhookDocument
	for _, d := range ds {
		var doc notify.WebhookDocument
		if err := json.Unmarshal(d.body, &doc); err != nil {
			t.Fatalf("webhook body %s: %v", d.body, err)
		}
		out = append(out, doc)
	}
	return out
}

func slackTexts(t *testing.T, ds []delivery) []string {
	t.Helper()
	var out []string
	for _, d := range ds {
		var body struct{ Text string }
		if err := json.Unmarshal(d.body, &body); err != nil {
			t.Fatalf("slack body %s: %v", d.body, err)
		}
		out = append(out, body.Text)
	}
	return out
}

// headlines are the first lines of the webhook messages, without the rollout's name.
func headlines(docs []notify.WebhookDocument) []string {
	var out []string
	for _, d := range docs {
		first, _, _ := strings.Cut(d.Message, "\n")
		out = append(out, strings.TrimPrefix(first, d.Rollout+": "))
	}
	return out
}

// eventChan is an event stream fed by a test.
type eventChan chan engine.Event

func (c eventChan) Next(ctx context.Context) (engine.Event, bool) {
	select {
	case ev, ok := <-c:
		return ev, ok
	case <-ctx.Done():
		return engine.Event{}, false
	}
}

// logs collects what the notifier reports.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
