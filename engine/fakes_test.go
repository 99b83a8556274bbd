package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// world is an in-memory traffic provider and metrics source whose metrics depend on the
// weight the router has, so a scenario's outcome does not depend on timing.
type world struct {
	mu      sync.Mutex
	weight  int
	sets    []int // every SetWeight call, successful or not
	setErr  func(target, call int) error
	readErr error
	// canary returns the canary's latency and error ratio at a weight, for the whole window
	// (the tests steer verdicts look by look with it); the baseline has latency 100 and no
	// errors. It is called once per canary query.
	canary    func(weight int) (latency, errorRatio float64)
	sourceErr func(q metrics.Query) error
	queries   int
}

func newWorld() *world {
	return &world{canary: func(int) (float64, float64) { return 100, 0 }}
}

func (w *world) SetWeight(ctx context.Context, percent int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sets = append(w.sets, percent)
	if w.setErr != nil {
		if err := w.setErr(percent, len(w.sets)); err != nil {
			return err
		}
	}
	w.weight = percent
	return nil
}

func (w *world) Weight(ctx context.Context) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.readErr != nil {
		return 0, w.readErr
	}
	return w.weight, nil
}

func (w *world) Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queries++
	if w.sourceErr != nil {
		if err := w.sourceErr(q); err != nil {
			return nil, err
		}
	}
	const requests = 100.0
	var v float64
	switch q.Expr {
	case "canary_latency":
		v, _ = w.canary(w.weight)
	case "stable_latency":
		v = 100
	case "canary_errors":
		_, errRatio := w.canary(w.weight)
		v = errRatio * requests
	case "stable_errors":
		v = 0
	case "canary_requests", "stable_requests":
		v = requests
	default:
		return nil, fmt.Errorf("unknown query %q", q.Expr)
	}
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: v})
	}
	return out, nil
}

func (w *world) setCalls() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.sets...)
}

func (w *world) current() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.weight
}

// specYAML is a two-check rollout whose analysis block and steps a test can replace.
const specYAML = `name: test
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {interval: 30s, stabilization: 30s, judge: threshold, inconclusive: INCONCLUSIVE, failureLimit: LIMIT}
checks:
  - name: latency
    canary: canary_latency
    baseline: stable_latency
    direction: lower_is_better
    maxDeviationPercent: 20
  - name: errors
    critical: true
    direction: lower_is_better
    maxIncrease: 0.01
    events: {canary: canary_errors, baseline: stable_errors}
    total: {canary: canary_requests, baseline: stable_requests}
steps:
STEPS`

const threeSteps = `  - setWeight: 10
    analyze: 2m
  - setWeight: 50
    analyze: 2m
  - setWeight: 80
    analyze: 2m
`

type specOpts struct {
	inconclusive string
	limit        int
	steps        string
}

func testSpec(t *testing.T, o specOpts) *spec.Rollout {
	t.Helper()
	if o.inconclusive == "" {
		o.inconclusive = "hold"
	}
	if o.steps == "" {
		o.steps = threeSteps
	}
	text := strings.NewReplacer("INCONCLUSIVE", o.inconclusive, "LIMIT", fmt.Sprint(o.limit), "STEPS", o.steps).Replace(specYAML)
	rollout, err := spec.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("test spec: %v", err)
	}
	return rollout
}

// memJournal keeps events in memory, as a journal would on disk.
type memJournal struct {
	mu     sync.Mutex
	events []engine.Event
	fail   error
}

func (j *memJournal) Append(ev engine.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	j.events = append(j.events, ev)
	return nil
}

func (j *memJournal) all() []engine.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]engine.Event(nil), j.events...)
}

// running is an engine started in the current synctest bubble.
type running struct {
	t       *testing.T
	eng     *engine.Engine
	journal *memJournal
	cancel  context.CancelFunc
	done    chan struct{}
	outcome engine.Outcome
	err     error
}

func start(t *testing.T, spec *spec.Rollout, w *world, cfg engine.Config) *running {
	t.Helper()
	cfg.Spec, cfg.Source = spec, w
	if cfg.Router == nil {
		cfg.Router = w
	}
	j := &memJournal{}
	if cfg.Journal == nil {
		cfg.Journal = j
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, eng: eng, journal: j, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.outcome, r.err = eng.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// wait lets virtual time pass until cond holds of the engine's state, or fails after limit.
func (r *running) wait(limit time.Duration, what string, cond func(engine.State) bool) engine.State {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st := r.eng.Snapshot()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("after %s: still waiting for %s; phase %s, step %d, weight %d, last events:\n%s", limit, what, st.Phase, st.Step+1, st.Weight, tail(st, 8))
		}
		select {
		case <-r.done:
			st := r.eng.Snapshot()
			if cond(st) {
				return st
			}
			r.t.Fatalf("engine ended (%s, %v) while waiting for %s; last events:\n%s", r.outcome, r.err, what, tail(st, 8))
		case <-time.After(time.Second):
		}
	}
}

// finish waits for Run to return.
func (r *running) finish(limit time.Duration) (engine.Outcome, error) {
	r.t.Helper()
	select {
	case <-r.done:
		return r.outcome, r.err
	case <-time.After(limit):
		st := r.eng.Snapshot()
		r.t.Fatalf("engine still running after %s: phase %s, step %d; last events:\n%s", limit, st.Phase, st.Step+1, tail(st, 8))
	}
	return "", nil
}

func (r *running) do(kind engine.CommandKind, who string, step int) error {
	return r.eng.Do(context.Background(), engine.Command{Kind: kind, Actor: engine.Actor{Name: who, Role: engine.RoleOperator}, Step: step})
}

func tail(st engine.State, n int) string {
	var b strings.Builder
	for _, ev := range st.Log[max(0, len(st.Log)-n):] {
		fmt.Fprintf(&b, "  %d %s %s\n", ev.Seq, ev.Type, ev.Describe(st.Spec))
	}
	return b.String()
}

func types(events []engine.Event) []engine.EventType {
	out := make([]engine.EventType, len(events))
	for i, ev := range events {
		out[i] = ev.Type
	}
	return out
}

func count(events []engine.Event, typ engine.EventType) int {
	n := 0
	for _, ev := range events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

func first(events []engine.Event, typ engine.EventType) (engine.Event, bool) {
	for _, ev := range events {
		if ev.Type == typ {
			return ev, true
		}
	}
	return engine.Event{}, false
}

var errProvider = errors.New("provider unavailable")

func nan() float64 { return math.NaN() }
