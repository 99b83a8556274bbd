package alerts_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/alerts"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// rolloutYAML is a healthy two-step rollout with an alerts block; its steps are long enough
// for alerts to arrive mid-rollout in real time too.
const rolloutYAML = `name: web
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {interval: 1s, stabilization: 1s, judge: threshold}
checks:
  - name: latency
    direction: lower_is_better
    maxDeviationPercent: 10
    canary: canary_latency
    baseline: stable_latency
steps:
  - {setWeight: 10, analyze: 10m}
  - {setWeight: 50, analyze: 10m}
alerts:
  listen: 127.0.0.1:0
  rollbackOn:
    - {alertname: HighErrorRate, service: web}
    - {severity: page}
`

func parseSpec(t testing.TB, yaml string) *spec.Rollout {
	t.Helper()
	rollout, err := spec.Parse("web.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse spec: %v", err)
	}
	return rollout
}

// world is an in-memory traffic provider and metrics source where canary and baseline are
// equally healthy. With holdRollback set, sending traffic back to stable fails, so a rollback
// stays in progress.
type world struct {
	mu           sync.Mutex
	weight       int
	holdRollback bool
}

func (w *world) SetWeight(_ context.Context, percent int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if percent == 0 && w.holdRollback {
		return errProviderDown
	}
	w.weight = percent
	return nil
}

func (w *world) Weight(context.Context) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.weight, nil
}

func (w *world) Samples(_ context.Context, _ metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: 100})
	}
	return out, nil
}

type providerError string

func (e providerError) Error() string { return string(e) }

const errProviderDown = providerError("provider down")

// memJournal keeps the engine's events.
type memJournal struct {
	mu     sync.Mutex
	events []engine.Event
}

func (j *memJournal) Append(ev engine.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, ev)
	return nil
}

func (j *memJournal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.events)
}

func (j *memJournal) ofType(typ engine.EventType) []engine.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []engine.Event
	for _, ev := range j.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// running is a real engine running a rollout of world; it lingers after a rollback so alerts
// can still be noted.
type running struct {
	t       *testing.T
	eng     *engine.Engine
	journal *memJournal
}

func startEngine(t *testing.T, spec *spec.Rollout, w *world) *running {
	t.Helper()
	j := &memJournal{}
	eng, err := engine.New(engine.Config{Spec: spec, Router: w, Source: w, Journal: j, Linger: true})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		eng.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &running{t: t, eng: eng, journal: j}
}

// waitFor polls the engine's state until cond holds, failing the test after limit.
func (r *running) waitFor(limit time.Duration, what string, cond func(engine.State) bool) engine.State {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st := r.eng.Snapshot()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			var log []string
			for _, ev := range st.Log {
				log = append(log, ev.Describe(st.Spec))
			}
			r.t.Fatalf("after %s still waiting for %s; phase %s, step %d; events:\n%s", limit, what, st.Phase, st.Step+1, strings.Join(log, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notes are the texts of the note events so far.
func (r *running) notes() []string {
	var out []string
	for _, ev := range r.journal.ofType(engine.EventNote) {
		out = append(out, ev.Actor.Name+": "+ev.Reason)
	}
	return out
}

// newReceiver is alerts.NewReceiver, failing the test on an error.
func newReceiver(t testing.TB, eng alerts.Engine, cfg *spec.Alerts, opts alerts.Options) *alerts.Receiver {
	t.Helper()
	rcv, err := alerts.NewReceiver(eng, cfg, opts)
	if err != nil {
		t.Fatalf("alerts.NewReceiver: %v", err)
	}
	return rcv
}
