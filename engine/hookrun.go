package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/perchhq/perch/engine/hooks"
	"github.com/perchhq/perch/engine/spec"
)

// HookRunner runs one of the rollout's hooks and says how it went; hooks.Runner is the real
// one. A load test runs until ctx ends.
type HookRunner interface {
	Run(ctx context.Context, h spec.Hook, v spec.HookVars) hooks.Result
}

// HookRun is one run of a hook as hook_started and hook_finished record it.
type HookRun struct {
	Index int         `json:"index"` // its place in the rollout file's hooks list, 0 for hooks[0]
	On    spec.HookOn `json:"on"`
	Kind  string      `json:"kind"` // webhook, exec or loadTest
	// Step is the step it ran for, 1 for the first (as every output counts steps): an
	// after-step hook or a load test may end after the next step has begun.
	Step int `json:"step"`
	// What hook_finished adds: how it ended, the exec hook's exit code, the webhook's HTTP
	// status, how long it ran and the last lines of its output (at most MaxHookOutput bytes).
	Outcome  hooks.Outcome `json:"outcome,omitempty"`
	ExitCode *int          `json:"exitCode,omitempty"`
	Status   int           `json:"status,omitempty"`
	Duration spec.Duration `json:"duration,omitempty"`
	Output   string        `json:"output,omitempty"`
	// A load test's requests sent, failed and skipped over its step.
	Requests int64 `json:"requests,omitempty"`
	Failures int64 `json:"failures,omitempty"`
	Skipped  int64 `json:"skipped,omitempty"`
}

// Failed reports whether the run ended in failure (not passed, not cancelled).
func (r *HookRun) Failed() bool { return r.Outcome == hooks.Failed || r.Outcome == hooks.TimedOut }

// Bounds of a hook's output in the journal and in a hold's reason.
const (
	MaxHookOutput      = 1 << 10
	maxHookOutputLines = 10
	holdOutputLines    = 3
)

// hookKey is the attempt and step a hook ran for: a gate's result counts only for its own.
type hookKey struct{ attempt, step int }

// hookRun is a hook in flight.
type hookRun struct {
	index    int
	key      hookKey
	cancel   context.CancelFunc
	stopping bool // a load test told its step is over; its summary is on its way
}

// hookResult is what a hook came to.
type hookResult struct {
	id  int
	res hooks.Result
}

func (e *Engine) currentHookKey() hookKey { return hookKey{e.state.Attempt, e.state.Step} }

func (e *Engine) hookVars(weight int) spec.HookVars {
	return spec.HookVars{Rollout: e.spec.Name, Step: e.state.Step + 1, Weight: max(weight, 0), Canary: e.spec.Canary.Short()}
}

// startHook journals hook i's start and runs it on its own goroutine.
func (e *Engine) startHook(i int, v spec.HookVars, reason string) {
	h := e.spec.Hooks[i]
	id := e.hookNext
	e.hookNext++
	ctx, cancel := context.WithCancel(context.Background())
	e.hookRuns[id] = &hookRun{index: i, key: e.currentHookKey(), cancel: cancel}
	if reason == "" && slices.Contains(e.state.HooksRunning, i) && h.On.Gates() {
		reason = "on resume: running it again; it was in flight when perch stopped"
	}
	e.emit(Event{Type: EventHookStarted, Hook: &HookRun{Index: i, On: h.On, Kind: h.Kind(), Step: e.state.Step + 1}, Reason: reason})
	runner := e.hookRunner
	e.spawn(func() any {
		defer cancel()
		return hookResult{id: id, res: runner.Run(ctx, h, v)}
	})
}

// startHooksAt starts every hook at moment on (after-step, after-promote, after-rollback).
func (e *Engine) startHooksAt(on spec.HookOn, weight int) {
	for _, i := range e.spec.HooksAt(on) {
		e.startHook(i, e.hookVars(weight), "")
	}
}

// ensureGates runs the step's before-rollout and before-step hooks, one at a time in file
// order, before the step changes traffic, and reports whether any has yet to pass. They run
// only while the rollout runs: a pause or a hold waits, and resuming after a hold for a
// failed hook runs it again. A pause step changes no traffic and is not gated.
func (e *Engine) ensureGates() bool {
	s := &e.state
	if len(e.spec.Hooks) == 0 || s.CurrentStep().Pause != nil {
		return false
	}
	pending := s.pendingGates()
	if len(pending) == 0 {
		return false
	}
	if s.Phase != PhaseRunning {
		return true
	}
	for _, run := range e.hookRuns {
		if e.spec.Hooks[run.index].On.Gates() {
			return true
		}
	}
	e.startHook(pending[0], e.hookVars(s.Target), "")
	return true
}

// pendingGates are the gating hooks that have yet to pass before the current step changes
// traffic: the before-rollout ones once an attempt, then the before-step ones.
func (s *State) pendingGates() []int {
	var out []int
	for _, on := range []spec.HookOn{spec.HookBeforeRollout, spec.HookBeforeStep} {
		for _, i := range s.Spec.HooksAt(on) {
			if !slices.Contains(s.HooksPassed, i) {
				out = append(out, i)
			}
		}
	}
	return out
}

// startLoad starts the step's load tests once its traffic is in place and the canary has
// some, unless they run already.
func (e *Engine) startLoad() {
	s := &e.state
	if len(e.spec.HooksAt(spec.HookDuringStep)) == 0 || e.loadKey == e.currentHookKey() || s.Weight <= 0 && len(s.Segments) == 0 {
		return
	}
	e.loadKey = e.currentHookKey()
	e.startHooksAt(spec.HookDuringStep, s.Weight)
}

// endStepHooks ends what belongs to the step that is over: a gate still running is cancelled
// and its load tests are told to stop (their summary follows). With rollback, every hook in
// flight but an after-rollback one is cancelled too.
func (e *Engine) endStepHooks(why string, rollback bool) {
	ids := make([]int, 0, len(e.hookRuns))
	for id := range e.hookRuns {
		ids = append(ids, id)
	}
	slices.Sort(ids) // journal the cancellations in the order the hooks started
	for _, id := range ids {
		run := e.hookRuns[id]
		h := e.spec.Hooks[run.index]
		switch {
		case h.LoadTest != nil:
			run.stopping = true
			run.cancel()
		case h.On.Gates() || rollback && h.On != spec.HookAfterRollback:
			run.cancel()
			delete(e.hookRuns, id)
			e.emit(Event{Type: EventHookFinished, Hook: &HookRun{Index: run.index, On: h.On, Kind: h.Kind(), Step: run.key.step + 1, Outcome: hooks.Canceled}, Reason: why})
		}
	}
}

// handleHook journals how a hook went; a failed gate of the current step holds the rollout
// or rolls it back, as the hook says.
func (e *Engine) handleHook(r hookResult) {
	run, ok := e.hookRuns[r.id]
	if !ok {
		return // cancelled, and journaled as such
	}
	delete(e.hookRuns, r.id)
	h := e.spec.Hooks[run.index]
	rec := &HookRun{Index: run.index, On: h.On, Kind: h.Kind(), Step: run.key.step + 1, Outcome: r.res.Outcome, ExitCode: r.res.ExitCode, Status: r.res.Status,
		Duration: spec.Duration(r.res.Duration.Round(time.Millisecond)), Output: lastLines(r.res.Output, maxHookOutputLines, MaxHookOutput),
		Requests: r.res.Requests, Failures: r.res.Failures, Skipped: r.res.Skipped}
	ev := Event{Type: EventHookFinished, Hook: rec, Error: r.res.Error}
	if run.stopping && rec.Outcome == hooks.Canceled {
		rec.Outcome = hooks.OK
	}
	s := &e.state
	stale := run.key != e.currentHookKey()
	if h.On.Gates() && stale && rec.Outcome == hooks.OK {
		// Passed for a step that is over: it does not count for this one.
		rec.Outcome, ev.Reason = hooks.Canceled, "its step is over"
	}
	e.emit(ev)
	if !h.On.Gates() || rec.Outcome == hooks.OK || stale {
		return
	}
	switch s.Phase {
	case PhaseRunning:
	default:
		return // paused: resuming runs it again
	}
	reason := fmt.Sprintf("%s failed: %s", hookName(e.spec, run.index), r.res.Error)
	if out := lastLines(r.res.Output, holdOutputLines, 300); out != "" {
		reason += "; output: " + strings.ReplaceAll(out, "\n", " | ")
	}
	if h.OnFailure == spec.HookRollback {
		e.rollback(nil, reason)
		return
	}
	e.emit(Event{Type: EventHeld, Hold: HoldHook, Reason: reason + "; resume to run it again, or roll back"})
}

// hookName names hook i for people: "before-step hook hooks[0] (exec smoke.sh)".
func hookName(rollout *spec.Rollout, i int) string {
	if rollout == nil || i < 0 || i >= len(rollout.Hooks) {
		return fmt.Sprintf("hook hooks[%d]", i)
	}
	h := rollout.Hooks[i]
	if h.LoadTest != nil {
		return fmt.Sprintf("load test hooks[%d] (%s)", i, h.Target())
	}
	return fmt.Sprintf("%s hook hooks[%d] (%s %s)", h.On, i, h.Kind(), h.Target())
}

// lastLines is the end of out: at most n lines and max bytes, without trailing blank lines.
func lastLines(out string, n, maxBytes int) string {
	out = strings.TrimRight(out, "\n\r\t ")
	if len(out) > maxBytes {
		out = strings.ToValidUTF8(out[len(out)-maxBytes:], "")
	}
	lines := strings.Split(out, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
