// Package engine drives a canary rollout: it sets weights through a Router, samples checks
// through a Source, judges them and acts, recording every event in a journal first and then
// publishing it. State is a fold of those events, so a replay, a resumed engine and every
// viewer see the same rollout.
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perchhq/perch/engine/hooks"
	"github.com/perchhq/perch/engine/schedule"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// Router moves traffic between stable and canary.
type Router interface {
	// SetWeight sends canaryPercent (0..100) of traffic to the canary.
	SetWeight(ctx context.Context, canaryPercent int) error
	// Weight is the canary percent the provider really has now.
	Weight(ctx context.Context) (int, error)
}

// Source answers a metric query with samples between start and end, one per step.
type Source interface {
	Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error)
}

// HistogramSource is a Source that also answers bucket queries, for histogram checks: per
// step from start to end, the requests of the interval before it at most each bound.
type HistogramSource interface {
	Histogram(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) (metrics.Histogram, error)
}

// EventSink keeps every event before it is published; *Journal is the real one.
type EventSink interface {
	Append(Event) error
}

// Config is what an Engine runs with.
type Config struct {
	Spec   *spec.Rollout
	Router Router
	Source Source // may be nil for a rollout without checks
	// Journal records events before they are published; nil keeps them in memory only.
	Journal EventSink
	// Resume holds the recording of an interrupted run of the same spec to continue from.
	Resume *Recording
	// Linger keeps the engine running after a rollback, so an operator can retry, until the
	// context ends.
	Linger bool
	// Flags is the feature-flag system the spec's setFlag steps set flags in; nil without them.
	// Segment steps need a Router that is a SegmentRouter.
	Flags Flags
	// Hooks runs the spec's hooks; nil: hooks.Runner, which runs them for real.
	Hooks HookRunner
}

// Outcome is how Run ended.
type Outcome string

// The outcomes of Run.
const (
	OutcomePromoted   Outcome = "promoted"
	OutcomeRolledBack Outcome = "rolled_back"
	OutcomeStopped    Outcome = "stopped" // the context ended first; traffic was left as it was
)

// Words is the outcome for people: "rolled back".
func (o Outcome) Words() string { return strings.ReplaceAll(string(o), "_", " ") }

// Timing of effects on the provider.
const (
	weightTimeout      = 30 * time.Second
	maxWeightAttempts  = 5 // in a running step, before holding
	maxBackoff         = 30 * time.Second
	minLookTimeout     = 5 * time.Second
	maxLookTimeout     = 30 * time.Second
	reconcileTimeout   = 30 * time.Second
	firstWeightBackoff = time.Second
)

// Engine runs one rollout. Its Run goroutine owns the state; everything else talks to it
// through Do, Snapshot, Subscribe and Events.
type Engine struct {
	spec    *spec.Rollout
	router  Router
	source  Source
	journal EventSink
	judges  []metrics.Judge
	family  int // spec.Family(), asked once
	linger  bool
	resumed bool

	segments SegmentRouter      // the router, when the spec has segment steps
	flags    Flags              // when the spec has setFlag steps
	schedule *schedule.Schedule // nil: steps advance any time

	state State // owned by Run
	fatal error // a journal write failed: stop before acting further

	cmds    chan cmdRequest
	results chan any
	quit    chan struct{} // closed when Run returns
	started atomic.Bool
	effects sync.WaitGroup

	weightBusy   bool
	weightTarget int
	weightCancel context.CancelFunc
	lookBusy     bool
	lookKey      lookKey
	lookCancel   context.CancelFunc
	segmentsBusy bool
	flagBusy     map[string]bool
	hookRunner   HookRunner
	hookRuns     map[int]*hookRun // in flight, by the order they started
	hookNext     int
	loadKey      hookKey // the step the load tests were started for

	subs subscribers
}

type cmdRequest struct {
	cmd   Command
	note  string // with Kind empty: a note to record for cmd.Actor
	reply chan error
}

// New checks the configuration and builds an engine; with Resume set it folds the recorded
// events first.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Spec == nil:
		return nil, errors.New("engine: no rollout spec")
	case cfg.Router == nil:
		return nil, errors.New("engine: no traffic router")
	case cfg.Source == nil && len(cfg.Spec.Checks) > 0:
		return nil, errors.New("engine: checks need a metrics source")
	}
	if _, ok := cfg.Source.(HistogramSource); !ok {
		for _, c := range cfg.Spec.Checks {
			if c.IsHistogram() {
				return nil, fmt.Errorf("engine: check %q is a histogram check, and the metrics source answers no bucket queries", c.Name)
			}
		}
	}
	e := &Engine{
		spec:    cfg.Spec,
		router:  cfg.Router,
		source:  cfg.Source,
		journal: cfg.Journal,
		linger:  cfg.Linger,
		family:  cfg.Spec.Family(),
		state:   NewState(cfg.Spec),
		cmds:    make(chan cmdRequest),
		results: make(chan any),
		quit:    make(chan struct{}),
	}
	e.flags, e.flagBusy = cfg.Flags, map[string]bool{}
	e.hookRunner, e.hookRuns = cfg.Hooks, map[int]*hookRun{}
	if e.hookRunner == nil {
		e.hookRunner = hooks.Runner{}
	}
	if len(cfg.Spec.Segments()) > 0 {
		sr, ok := cfg.Router.(SegmentRouter)
		if !ok {
			return nil, errNoSegments
		}
		e.segments = sr
	}
	if len(cfg.Spec.FlagNames()) > 0 && cfg.Flags == nil {
		return nil, errors.New("engine: the rollout has setFlag steps, but no feature-flag system")
	}
	if c := cfg.Spec.Schedule; c != nil {
		sched, err := schedule.New(*c)
		if err != nil {
			return nil, fmt.Errorf("engine: schedule: %w", err)
		}
		e.schedule = sched
	}
	for _, c := range cfg.Spec.Checks {
		name := c.Judge
		if name == "" {
			name = cfg.Spec.Analysis.Judge
		}
		j, err := metrics.New(name, c.JudgeOptions)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", c.Name, err)
		}
		e.judges = append(e.judges, j)
	}
	if cfg.Resume != nil {
		if err := sameSpec(cfg.Resume.Header.Spec, cfg.Spec); err != nil {
			return nil, err
		}
		for _, ev := range cfg.Resume.Events {
			e.state.Apply(ev)
		}
		e.resumed = true
	}
	e.subs.latest = e.state.Clone()
	return e, nil
}

// sameSpec refuses to resume a journal with a rollout file that has changed since.
func sameSpec(recorded, given *spec.Rollout) error {
	a, err1 := json.Marshal(recorded)
	b, err2 := json.Marshal(given)
	if err1 != nil || err2 != nil {
		return errors.Join(err1, err2)
	}
	if !bytes.Equal(a, b) {
		return fmt.Errorf("the journal records a different rollout than %s (it changed since the journal was written); resume with the file the journal was started with", given.File())
	}
	return nil
}

// Run drives the rollout until it is promoted, rolled back (unless Config.Linger) or ctx ends.
// When ctx ends it records a stopped event and returns OutcomeStopped, leaving traffic as it
// is so the journal can be resumed. An error means the journal could not be written.
func (e *Engine) Run(ctx context.Context) (Outcome, error) {
	if !e.started.CompareAndSwap(false, true) {
		return "", errors.New("engine: Run called twice")
	}
	defer e.shutdown()
	if e.resumed && !e.state.Phase.Done() {
		e.reconcile(ctx)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wake := e.decide(time.Now())
		if e.fatal != nil {
			return OutcomeStopped, e.fatal
		}
		if out, ok := e.outcome(); ok {
			return out, nil
		}
		sleep := time.Hour
		if !wake.IsZero() {
			sleep = max(time.Until(wake), 0)
		}
		timer.Reset(sleep)
		select {
		case <-ctx.Done():
			e.emit(Event{Type: EventStopped, Reason: "engine stopped; traffic left as it was"})
			return OutcomeStopped, e.fatal
		case req := <-e.cmds:
			if req.cmd.Kind == "" {
				actor := req.cmd.Actor
				e.emit(Event{Type: EventNote, Actor: &actor, Reason: req.note})
				req.reply <- e.fatal
				continue
			}
			req.reply <- e.command(req.cmd)
		case res := <-e.results:
			e.handleResult(res)
		case <-timer.C:
		}
	}
}

func (e *Engine) outcome() (Outcome, bool) {
	switch {
	case len(e.hookRuns) > 0:
		// An after-promote or after-rollback hook (or a load test's summary) is still to come.
	case e.state.Phase == PhasePromoted:
		return OutcomePromoted, true
	case e.state.Phase == PhaseRolledBack && !e.linger:
		return OutcomeRolledBack, true
	}
	return "", false
}

// shutdown cancels what is in flight, waits for it and closes every subscription.
func (e *Engine) shutdown() {
	if e.weightCancel != nil {
		e.weightCancel()
	}
	if e.lookCancel != nil {
		e.lookCancel()
	}
	for _, run := range e.hookRuns {
		run.cancel()
	}
	close(e.quit)
	e.effects.Wait()
	e.subs.close()
}

// reconcile asks the provider what weight it really has after a restart and records it, so
// the rollout continues from the truth rather than from what the journal expected. A weight
// that is neither the last confirmed one nor the one being set means someone moved traffic
// while perch was down: a running rollout holds rather than overrule them. The segments and
// flags are read after it (reconcileStrategies).
func (e *Engine) reconcile(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	defer cancel()
	s := &e.state
	confirmed, target := s.Weight, s.Target
	lastFlags := slices.Clone(s.Flags)
	defer e.reconcileStrategies(ctx, lastFlags)
	ev := Event{Type: EventReconciled}
	w, err := e.router.Weight(ctx)
	if err != nil {
		ev.Error = err.Error()
		ev.Reason = fmt.Sprintf("could not read the provider's weight; setting %d%% again", target)
		e.emit(ev)
		return
	}
	ev.Weight = intPtr(w)
	ev.Reason = fmt.Sprintf("provider has %d%%, journal recorded %d%%", w, confirmed)
	e.emit(ev)
	if confirmed >= 0 && w != confirmed && w != target && s.Phase == PhaseRunning {
		e.emit(Event{Type: EventHeld, Hold: HoldRouter, Reason: fmt.Sprintf(
			"the provider has %d%% but perch last set %d%%: traffic was changed while perch was down; resume to set %d%% again, or roll back",
			w, confirmed, target)})
	}
}

// emit records an event in the journal, folds it into the state and publishes it. After a
// journal failure nothing more is emitted: the engine stops rather than act unrecorded.
func (e *Engine) emit(ev Event) {
	if e.fatal != nil {
		return
	}
	ev.Seq = e.state.Seq + 1
	ev.Time = time.Now()
	if ev.Type != EventStepStarted {
		ev.Step = e.state.Step
	}
	if e.journal != nil {
		if err := e.journal.Append(ev); err != nil {
			e.fatal = err
			return
		}
	}
	e.state.Apply(ev)
	e.subs.publish(ev, e.state.Clone())
}

// Snapshot is the newest state, safe to read from any goroutine.
func (e *Engine) Snapshot() State { return e.subs.snapshot() }

// Spec is the rollout the engine runs.
func (e *Engine) Spec() *spec.Rollout { return e.spec }

// Note records text in the journal and the event log on behalf of actor (an alert that fired
// or resolved, say) without changing the rollout.
func (e *Engine) Note(ctx context.Context, actor Actor, text string) error {
	return e.send(ctx, cmdRequest{cmd: Command{Actor: actor}, note: text, reply: make(chan error, 1)})
}

// Do sends a command to the engine and waits for it to be accepted or refused (with
// ErrStaleCommand, ErrNotAllowed or ErrForbidden, wrapped with the reason).
func (e *Engine) Do(ctx context.Context, cmd Command) error {
	if cmd.Kind == "" {
		return fmt.Errorf("%w: empty command", ErrNotAllowed)
	}
	return e.send(ctx, cmdRequest{cmd: cmd, reply: make(chan error, 1)})
}

func (e *Engine) send(ctx context.Context, req cmdRequest) error {
	select {
	case e.cmds <- req:
	case <-e.quit:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
