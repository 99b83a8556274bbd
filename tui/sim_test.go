package tui

import (
	"context"
	"io"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/themes"
)

// sim folds a scripted rollout through engine.State.Apply, with verdicts from the real
// threshold judge, so tests draw states the reducer really produces.
type sim struct {
	t      testing.TB
	spec   *spec.Rollout
	st     engine.State
	now    time.Time
	judges []metrics.Judge
	series [][2]metrics.Series // per check: canary, baseline, this step
	looks  int
}

// simStart is when every scripted rollout starts.
var simStart = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newSim(t testing.TB) *sim {
	t.Helper()
	rollout, err := spec.Load("testdata/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return newSimSpec(t, rollout)
}

func newSimSpec(t testing.TB, spec *spec.Rollout) *sim {
	s := &sim{t: t, spec: spec, st: engine.NewState(spec), now: simStart}
	for _, c := range spec.Checks {
		name := c.Judge
		if name == "" {
			name = spec.Analysis.Judge
		}
		j, err := metrics.New(name, c.JudgeOptions)
		if err != nil {
			t.Fatal(err)
		}
		s.judges = append(s.judges, j)
	}
	s.series = make([][2]metrics.Series, len(spec.Checks))
	return s
}

func (s *sim) emit(ev engine.Event) {
	ev.Seq = s.st.Seq + 1
	ev.Time = s.now
	if ev.Type != engine.EventStepStarted {
		ev.Step = s.st.Step
	}
	s.st.Apply(ev)
}

func (s *sim) wait(d time.Duration) { s.now = s.now.Add(d) }

func intp(v int) *int { return &v }

// start begins the rollout at step 0.
func (s *sim) start() *sim {
	s.emit(engine.Event{Type: engine.EventRolloutStarted, Attempt: 1})
	s.startStep(0)
	return s
}

// startStep begins step i; a weight step gets its weight confirmed and stabilizes.
func (s *sim) startStep(i int) {
	step := s.spec.Steps[i]
	ev := engine.Event{Type: engine.EventStepStarted, Step: i}
	if step.SetWeight != nil {
		ev.Weight = intp(*step.SetWeight)
	}
	if step.Pause != nil && step.Pause.Duration > 0 {
		until := s.now.Add(time.Duration(step.Pause.Duration))
		ev.Until = &until
	}
	s.emit(ev)
	s.series = make([][2]metrics.Series, len(s.spec.Checks))
	s.looks = 0
	if step.SetWeight == nil {
		return
	}
	s.wait(2 * time.Second)
	s.emit(engine.Event{Type: engine.EventWeightSet, Weight: intp(*step.SetWeight)})
	s.wait(time.Duration(s.spec.Analysis.Stabilization))
	s.emit(engine.Event{Type: engine.EventAnalysisStarted})
}

// sideValue is one interval of one side: a value, or events out of total for a rate.
type sideValue struct{ v, events, total float64 }

// metricsFn gives check c's canary and baseline at look n.
type metricsFn func(c, n int) (canary, baseline sideValue)

// healthy is a canary slightly worse than its baseline, within every tolerance.
func healthy(c, n int) (sideValue, sideValue) {
	f := float64(n)
	switch c % 3 {
	case 0: // latency, seconds
		return sideValue{v: 0.231 + 0.012*math.Sin(f/3)}, sideValue{v: 0.224 + 0.009*math.Sin(f/4+1)}
	case 1: // errors out of requests
		return sideValue{events: float64(2 + n%3), total: 1000}, sideValue{events: float64(1 + n%2), total: 1000}
	}
	return sideValue{v: 412 + 9*math.Cos(f/5)}, sideValue{v: 405 + 7*math.Cos(f/6)}
}

// badErrors is healthy but for a canary that errs on 6% of requests.
func badErrors(c, n int) (sideValue, sideValue) {
	canary, baseline := healthy(c, n)
	if c%3 == 1 {
		canary.events = 60
	}
	return canary, baseline
}

// look takes one look at every check, judged by the threshold judge over the step so far;
// outage names checks whose source fails this look.
func (s *sim) look(values metricsFn, outage ...string) {
	s.wait(time.Duration(s.spec.Analysis.Interval))
	checks := make([]engine.CheckResult, len(s.spec.Checks))
	for i, c := range s.spec.Checks {
		canary, baseline := values(i, s.looks)
		ser := &s.series[i]
		res := engine.CheckResult{Check: c.Name}
		if c.IsCounts() {
			for k, v := range []sideValue{canary, baseline} {
				ser[k].Events = append(ser[k].Events, v.events)
				ser[k].Total = append(ser[k].Total, v.total)
			}
			res.LastCanary, res.LastBaseline = metrics.Number(canary.events/canary.total), metrics.Number(baseline.events/baseline.total)
		} else {
			ser[0].Values = append(ser[0].Values, canary.v)
			ser[1].Values = append(ser[1].Values, baseline.v)
			res.LastCanary, res.LastBaseline = metrics.Number(canary.v), metrics.Number(baseline.v)
		}
		for _, name := range outage {
			if name == c.Name {
				res.SourceError = `errors{version="canary"}: connection refused`
			}
		}
		if res.SourceError != "" {
			nan := metrics.Number(math.NaN())
			res.LastCanary, res.LastBaseline = nan, nan
			res.Result = metrics.Result{Verdict: metrics.Inconclusive, Reason: "metrics source: " + res.SourceError, Canary: nan, Baseline: nan, Deviation: nan}
		} else {
			cr := c.Criteria()
			cr.Family = len(s.spec.Checks)
			res.Result = s.judges[i].Judge(metrics.Input{Criteria: cr, Canary: ser[0], Baseline: ser[1]})
		}
		checks[i] = res
	}
	s.looks++
	s.emit(engine.Event{Type: engine.EventAnalysis, Checks: checks})
}

func (s *sim) lookN(n int, values metricsFn) {
	for range n {
		s.look(values)
	}
}

// pass ends the current step (by its analysis, or by actor) and starts the next.
func (s *sim) pass(actor *engine.Actor, reason string) {
	s.emit(engine.Event{Type: engine.EventStepPassed, Actor: actor, Reason: reason})
	if next := s.st.Step + 1; next < len(s.spec.Steps) {
		s.startStep(next)
	}
}

var alice = &engine.Actor{Name: "alice", Role: engine.RoleOperator, Source: "tui"}

// toStep3 runs the rollout through steps 1–3 (an operator resumes the pause step) and into
// step 4 at 25%, seven minutes into its analysis, every check passing.
func (s *sim) toStep3() *sim {
	s.start()
	s.lookN(10, healthy)
	s.pass(nil, "every check passed")
	s.lookN(20, healthy)
	s.pass(nil, "every check passed")
	s.wait(3 * time.Minute)
	s.pass(alice, "resumed by alice")
	s.lookN(14, healthy)
	return s
}

// State builders for the goldens and Update tests, one per phase worth showing.
func stateRunning(t testing.TB) (engine.State, time.Time) {
	s := newSim(t).toStep3()
	return s.st, s.now.Add(12 * time.Second)
}

func statePaused(t testing.TB) (engine.State, time.Time) {
	s := newSim(t).toStep3()
	s.wait(5 * time.Second)
	s.emit(engine.Event{Type: engine.EventPaused, Actor: alice, Reason: "checking the payment dashboards"})
	s.look(healthy)
	return s.st, s.now.Add(20 * time.Second)
}

func statePauseStep(t testing.TB) (engine.State, time.Time) {
	s := newSim(t).start()
	s.lookN(10, healthy)
	s.pass(nil, "every check passed")
	s.lookN(20, healthy)
	s.pass(nil, "every check passed")
	return s.st, s.now.Add(42 * time.Second)
}

func stateHolding(t testing.TB) (engine.State, time.Time) {
	s := newSim(t).toStep3()
	for range 16 {
		s.look(healthy, "error_rate")
	}
	s.emit(engine.Event{Type: engine.EventHeld, Hold: engine.HoldInconclusive,
		Reason: `error_rate inconclusive: metrics source: errors{version="canary"}: connection refused`})
	return s.st, s.now.Add(8 * time.Second)
}

func stateRolledBack(t testing.TB) (engine.State, time.Time) {
	s := newSim(t).toStep3()
	s.lookN(3, badErrors)
	c := s.st.Checks[1].Last
	s.emit(engine.Event{Type: engine.EventRollbackStarted, Reason: "error_rate failed: " + c.Reason + " (critical)"})
	s.wait(2 * time.Second)
	s.emit(engine.Event{Type: engine.EventWeightSet, Weight: intp(0)})
	s.emit(engine.Event{Type: engine.EventRolledBack, Weight: intp(0)})
	return s.st, s.now.Add(30 * time.Second)
}

func stateRollingBack(t testing.TB) (engine.State, time.Time) {
	s := newSim(t).toStep3()
	s.wait(4 * time.Second)
	s.emit(engine.Event{Type: engine.EventRollbackStarted, Actor: alice, Reason: "rolled back by alice"})
	return s.st, s.now.Add(3 * time.Second)
}

func statePromoted(t testing.TB) (engine.State, time.Time) {
	s := newSim(t).toStep3()
	s.lookN(16, healthy)
	s.pass(nil, "every check passed")
	s.wait(10 * time.Minute)
	s.pass(nil, "pause of 10m over")
	s.lookN(30, healthy)
	s.emit(engine.Event{Type: engine.EventStepPassed, Reason: "every check passed"})
	s.emit(engine.Event{Type: engine.EventPromoteStarted, Reason: "every step passed"})
	s.wait(2 * time.Second)
	s.emit(engine.Event{Type: engine.EventWeightSet, Weight: intp(100)})
	s.emit(engine.Event{Type: engine.EventPromoted, Weight: intp(100)})
	return s.st, s.now.Add(time.Minute)
}

// fakeCommander records commands and answers with err.
type fakeCommander struct {
	mu   sync.Mutex
	cmds []engine.Command
	err  error
}

func (f *fakeCommander) Do(_ context.Context, cmd engine.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	return f.err
}

func (f *fakeCommander) sent() []engine.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Command(nil), f.cmds...)
}

// fakeSnapshots hands out a channel the test feeds.
type fakeSnapshots struct {
	ch       chan engine.State
	mu       sync.Mutex
	canceled bool
}

func newFakeSnapshots(first engine.State) *fakeSnapshots {
	f := &fakeSnapshots{ch: make(chan engine.State, 1)}
	f.ch <- first
	return f
}

func (f *fakeSnapshots) Subscribe() (<-chan engine.State, func()) {
	return f.ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.canceled = true
	}
}

// asciiRenderer renders without colour or attributes, as goldens need.
func asciiRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	return r
}

func mustTheme(t testing.TB, name string) themes.Theme {
	t.Helper()
	th, ok := themes.Named(name)
	if !ok {
		t.Fatalf("no theme %q", name)
	}
	return th
}
