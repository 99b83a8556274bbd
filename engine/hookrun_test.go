package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/hooks"
	"github.com/perchhq/perch/engine/spec"
)

// hookCall is one run of a hook the fake saw.
type hookCall struct {
	name     string // the exec hook's program, or the load test's URL
	vars     spec.HookVars
	canceled bool // its context ended before it did
}

// fakeHooks runs hooks in virtual time: each takes `took` and ends as `result` says; a load
// test counts a request a second until it is stopped.
type fakeHooks struct {
	mu     sync.Mutex
	calls  []hookCall
	took   time.Duration
	result func(name string, v spec.HookVars) hooks.Result
}

func (f *fakeHooks) Run(ctx context.Context, h spec.Hook, v spec.HookVars) hooks.Result {
	name := h.Target()
	f.mu.Lock()
	f.calls = append(f.calls, hookCall{name: name, vars: v})
	n := len(f.calls) - 1
	took, result := f.took, f.result
	f.mu.Unlock()
	if h.LoadTest != nil {
		begin := time.Now()
		<-ctx.Done()
		return hooks.Result{Outcome: hooks.OK, Requests: int64(time.Since(begin) / time.Second)}
	}
	select {
	case <-time.After(took):
	case <-ctx.Done():
		f.mu.Lock()
		f.calls[n].canceled = true
		f.mu.Unlock()
		return hooks.Result{Outcome: hooks.Canceled}
	}
	res := hooks.Result{Outcome: hooks.OK}
	if result != nil {
		res = result(name, v)
	}
	res.Duration = took
	return res
}

func (f *fakeHooks) all() []hookCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeHooks) set(result func(name string, v spec.HookVars) hooks.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.result = result
}

const twoSteps = "  - setWeight: 10\n    analyze: 2m\n  - setWeight: 50\n    analyze: 2m\n"

func exitCode(c int) *int { return &c }

// smokeFailsAt50 is a smoke test that fails once the canary would get 50%.
func smokeFailsAt50(name string, v spec.HookVars) hooks.Result {
	if name == "smoke" && v.Weight == 50 {
		return hooks.Result{Outcome: hooks.Failed, Error: "exit status 1", ExitCode: exitCode(1),
			Output: "GET /checkout 200\nGET /cart 500\nsmoke: 1 of 2 requests failed\n"}
	}
	return hooks.Result{Outcome: hooks.OK, ExitCode: exitCode(0)}
}

// TestBeforeStepHookHolds: a failing before-step hook holds the rollout before its step
// changes traffic, saying which hook failed and how; resuming runs it again, and once it
// passes the step goes on.
func TestBeforeStepHookHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := twoSteps + "hooks:\n  - on: before-step\n    exec: {command: [smoke, \"{{.Weight}}\"], timeout: 2m}\n"
		w := newWorld()
		f := &fakeHooks{took: 10 * time.Second, result: smokeFailsAt50}
		r := start(t, testSpec(t, specOpts{steps: steps}), w, engine.Config{Hooks: f})
		st := r.wait(time.Hour, "the hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
		if st.Step != 1 || st.Hold != engine.HoldHook {
			t.Fatalf("holding at step %d (%s), want step 2 for the hook", st.Step+1, st.Hold)
		}
		for _, want := range []string{"before-step hook hooks[0] (exec smoke) failed: exit status 1", "smoke: 1 of 2 requests failed", "GET /cart 500"} {
			if !strings.Contains(st.HoldReason, want) {
				t.Errorf("hold reason %q lacks %q", st.HoldReason, want)
			}
		}
		if got := w.setCalls(); !slices.Equal(got, []int{10}) {
			t.Errorf("weights set %v, want [10]: the failing hook keeps step 2 from changing traffic", got)
		}
		calls := f.all()
		if len(calls) != 2 || calls[0].vars != (spec.HookVars{Rollout: "test", Step: 1, Weight: 10}) || calls[1].vars.Step != 2 || calls[1].vars.Weight != 50 {
			t.Errorf("hook calls %+v", calls)
		}
		fin, _ := first(slices.DeleteFunc(r.journal.all(), func(ev engine.Event) bool { return ev.Type != engine.EventHookFinished || ev.Hook.Outcome == hooks.OK }), engine.EventHookFinished)
		if fin.Hook == nil || fin.Hook.ExitCode == nil || *fin.Hook.ExitCode != 1 || fin.Hook.Duration != spec.Duration(10*time.Second) || !strings.HasSuffix(fin.Hook.Output, "1 of 2 requests failed") {
			t.Errorf("hook_finished %+v", fin.Hook)
		}
		time.Sleep(time.Hour) // holds until someone acts
		if st := r.eng.Snapshot(); st.Phase != engine.PhaseHolding || len(f.all()) != 2 {
			t.Fatalf("after an hour: %s with %d hook runs; want still holding, the hook not run again by itself", st.Phase, len(f.all()))
		}
		f.set(nil) // the smoke test is fixed
		if err := r.do(engine.CommandResume, "alice", 1); err != nil {
			t.Fatal(err)
		}
		if out, err := r.finish(time.Hour); out != engine.OutcomePromoted || err != nil {
			t.Fatalf("outcome %s, %v", out, err)
		}
		if got := w.setCalls(); !slices.Equal(got, []int{10, 50, 100}) {
			t.Errorf("weights set %v", got)
		}
		if n := len(f.all()); n != 3 {
			t.Errorf("%d hook runs, want 3 (step 1, step 2 failing, step 2 again)", n)
		}
	})
}

// TestBeforeStepHookRollsBack: with onFailure: rollback a failing hook rolls the canary back.
func TestBeforeStepHookRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := twoSteps + "hooks:\n  - on: before-step\n    exec: {command: [smoke]}\n    onFailure: rollback\n"
		w := newWorld()
		f := &fakeHooks{took: time.Second, result: func(name string, v spec.HookVars) hooks.Result {
			if v.Weight == 50 {
				return hooks.Result{Outcome: hooks.TimedOut, Error: "still running after its timeout of 1m: stopped", Output: "waiting for /health"}
			}
			return hooks.Result{Outcome: hooks.OK}
		}}
		r := start(t, testSpec(t, specOpts{steps: steps}), w, engine.Config{Hooks: f})
		if out, err := r.finish(time.Hour); out != engine.OutcomeRolledBack || err != nil {
			t.Fatalf("outcome %s, %v", out, err)
		}
		rb, _ := first(r.journal.all(), engine.EventRollbackStarted)
		if rb.Step != 1 || !strings.Contains(rb.Reason, "hooks[0] (exec smoke) failed: still running after its timeout") || !strings.Contains(rb.Reason, "waiting for /health") {
			t.Errorf("rollback at step %d: %q", rb.Step+1, rb.Reason)
		}
		if got := w.setCalls(); !slices.Equal(got, []int{10, 0}) {
			t.Errorf("weights set %v, want [10 0]", got)
		}
	})
}

// TestAfterHooks: before-rollout gates the first step once; after-step runs as each step
// passes and after-promote once the canary has everything, before Run returns; none gates.
func TestAfterHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := twoSteps + `hooks:
  - on: after-promote
    exec: {command: [announce, "{{.Canary}}"]}
  - on: after-step
    exec: {command: [record]}
  - on: before-rollout
    exec: {command: [prepare]}
`
		rollout := testSpec(t, specOpts{steps: steps})
		rollout.Canary = &spec.Canary{Version: "v2.4.0"}
		w := newWorld()
		f := &fakeHooks{took: 30 * time.Second, result: func(name string, v spec.HookVars) hooks.Result {
			if name == "record" {
				return hooks.Result{Outcome: hooks.Failed, Error: "exit status 2"} // never gates
			}
			return hooks.Result{Outcome: hooks.OK}
		}}
		r := start(t, rollout, w, engine.Config{Hooks: f})
		if out, err := r.finish(time.Hour); out != engine.OutcomePromoted || err != nil {
			t.Fatalf("outcome %s, %v", out, err)
		}
		events := r.journal.all()
		var got []string
		for _, ev := range events {
			if ev.Type == engine.EventHookStarted {
				got = append(got, rollout.Hooks[ev.Hook.Index].Exec.Command[0])
			}
		}
		if want := []string{"prepare", "record", "record", "announce"}; !slices.Equal(got, want) {
			t.Errorf("hooks started %q, want %q", got, want)
		}
		for _, c := range f.all() {
			if c.name == "announce" && c.vars != (spec.HookVars{Rollout: "test", Step: 2, Weight: 100, Canary: "v2.4.0"}) {
				t.Errorf("after-promote vars %+v", c.vars)
			}
		}
		// Run returns only once the after-promote hook is journaled as done.
		if !slices.ContainsFunc(events, func(ev engine.Event) bool {
			return ev.Type == engine.EventHookFinished && ev.Hook.On == spec.HookAfterPromote && ev.Hook.Outcome == hooks.OK
		}) {
			t.Error("no hook_finished for the after-promote hook")
		}
		promoted := slices.IndexFunc(events, func(ev engine.Event) bool { return ev.Type == engine.EventPromoted })
		started := slices.IndexFunc(events, func(ev engine.Event) bool {
			return ev.Type == engine.EventHookStarted && ev.Hook.On == spec.HookAfterPromote
		})
		if started < promoted {
			t.Errorf("the after-promote hook started at event %d, before promotion (%d)", started, promoted)
		}
		if n := count(events, engine.EventHeld); n != 0 {
			t.Errorf("%d holds: a failing after-step hook never gates", n)
		}
	})
}

// TestHookCancelledByRollback: a hook in flight when the rollout rolls back is cancelled,
// and journaled as such; the traffic it gated never moves to the step's weight.
func TestHookCancelledByRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := twoSteps + "hooks:\n  - on: before-step\n    exec: {command: [smoke], timeout: 1h}\n"
		w := newWorld()
		f := &fakeHooks{took: time.Hour}
		r := start(t, testSpec(t, specOpts{steps: steps}), w, engine.Config{Hooks: f})
		r.wait(time.Minute, "the hook", func(s engine.State) bool { return len(s.HooksRunning) == 1 })
		time.Sleep(time.Minute)
		if err := r.do(engine.CommandRollback, "alice", 0); err != nil {
			t.Fatal(err)
		}
		if out, err := r.finish(time.Hour); out != engine.OutcomeRolledBack || err != nil {
			t.Fatalf("outcome %s, %v", out, err)
		}
		synctest.Wait()
		if calls := f.all(); len(calls) != 1 || !calls[0].canceled {
			t.Errorf("hook calls %+v: want one, cancelled", calls)
		}
		events := r.journal.all()
		fin, ok := first(events, engine.EventHookFinished)
		if !ok || fin.Hook.Outcome != hooks.Canceled || !strings.Contains(fin.Describe(r.eng.Spec()), "cancelled: the rollout is rolling back") {
			t.Errorf("hook_finished %+v %q", fin.Hook, fin.Describe(r.eng.Spec()))
		}
		if got := w.setCalls(); !slices.Equal(got, []int{0}) {
			t.Errorf("weights set %v, want [0]", got)
		}
	})
}

// TestHookRunsAgainOnResume: a gate that was in flight when perch stopped runs again when it
// is resumed, and the journal says why.
func TestHookRunsAgainOnResume(t *testing.T) {
	steps := twoSteps + "hooks:\n  - on: before-step\n    exec: {command: [smoke], timeout: 1h}\n"
	rollout := testSpec(t, specOpts{steps: steps})
	var recorded []engine.Event
	synctest.Test(t, func(t *testing.T) {
		r := start(t, rollout, newWorld(), engine.Config{Hooks: &fakeHooks{took: time.Hour}})
		r.wait(time.Minute, "the hook", func(s engine.State) bool { return len(s.HooksRunning) == 1 })
		r.cancel()
		r.finish(time.Minute)
		recorded = r.journal.all()
	})
	if last := recorded[len(recorded)-1]; last.Type != engine.EventStopped {
		t.Fatalf("last event %s", last.Type)
	}
	synctest.Test(t, func(t *testing.T) {
		f := &fakeHooks{took: time.Second}
		r := start(t, rollout, newWorld(), engine.Config{Hooks: f, Resume: &engine.Recording{Header: engine.Header{Spec: rollout}, Events: recorded}})
		if out, err := r.finish(time.Hour); out != engine.OutcomePromoted || err != nil {
			t.Fatalf("outcome %s, %v", out, err)
		}
		again, _ := first(r.journal.all(), engine.EventHookStarted)
		if !strings.Contains(again.Reason, "on resume: running it again") {
			t.Errorf("the hook's start on resume says %q", again.Reason)
		}
		if n := len(f.all()); n != 2 {
			t.Errorf("%d hook runs after the resume, want 2 (step 1 again, step 2)", n)
		}
	})
}

// TestLoadTestDuringSteps: a load test runs while each step's weight is set, stops when the
// step ends, and journals one summary per step.
func TestLoadTestDuringSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := twoSteps + "hooks:\n  - on: during-step\n    loadTest: {url: \"http://canary.test/health?w={{.Weight}}\", rps: 5}\n"
		w := newWorld()
		f := &fakeHooks{}
		r := start(t, testSpec(t, specOpts{steps: steps}), w, engine.Config{Hooks: f})
		if out, err := r.finish(time.Hour); out != engine.OutcomePromoted || err != nil {
			t.Fatalf("outcome %s, %v", out, err)
		}
		calls := f.all()
		if len(calls) != 2 || calls[0].vars.Weight != 10 || calls[1].vars.Weight != 50 {
			t.Fatalf("load tests %+v, want one per step at its weight", calls)
		}
		var summaries []*engine.HookRun
		for _, ev := range r.journal.all() {
			if ev.Type == engine.EventHookFinished {
				summaries = append(summaries, ev.Hook)
			}
		}
		// Each step stabilizes 30s and analyses 2m once its weight is confirmed.
		if len(summaries) != 2 || summaries[0].Requests < 140 || summaries[0].Requests > 160 || summaries[0].Outcome != hooks.OK {
			t.Errorf("summaries %+v, want 2 of about 150s each", summaries)
		}
	})
}

// TestExecHookHoldsEndToEnd runs a real failing smoke script as a before-step hook.
func TestExecHookHoldsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "smoke.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nif [ \"$PERCH_WEIGHT\" = 50 ]; then echo \"checkout at $1%: 2 of 20 requests failed\"; exit 4; fi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	text := `name: e2e
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {stabilization: 0s}
steps:
  - setWeight: 10
  - setWeight: 50
hooks:
  - on: before-step
    exec: {command: [` + script + `, "{{.Weight}}"], timeout: 10s}
`
	rollout, err := spec.Parse("e2e.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld()
	eng, err := engine.New(engine.Config{Spec: rollout, Router: w})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for st := eng.Snapshot(); st.Phase != engine.PhaseHolding; st = eng.Snapshot() {
		if time.Now().After(deadline) {
			t.Fatalf("not holding after 20s: %s at step %d", st.Phase, st.Step+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := eng.Snapshot()
	if st.Hold != engine.HoldHook || st.Step != 1 || !strings.Contains(st.HoldReason, "exit status 4") || !strings.Contains(st.HoldReason, "checkout at 50%: 2 of 20 requests failed") {
		t.Errorf("holding at step %d (%s): %q", st.Step+1, st.Hold, st.HoldReason)
	}
	if got := w.setCalls(); !slices.Equal(got, []int{10}) {
		t.Errorf("weights set %v, want [10]", got)
	}
}

// TestHookEventsJournal: hook events go through the real journal and read back to the same
// state; a hook event naming a hook the rollout does not have is refused.
func TestHookEventsJournal(t *testing.T) {
	steps := twoSteps + "hooks:\n  - on: before-step\n    exec: {command: [smoke, \"{{.Weight}}\"], timeout: 2m}\n"
	rollout := testSpec(t, specOpts{steps: steps})
	path := filepath.Join(t.TempDir(), "j.jsonl")
	var live engine.State
	synctest.Test(t, func(t *testing.T) {
		j, err := engine.CreateJournal(path, rollout, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		r := start(t, rollout, newWorld(), engine.Config{Hooks: &fakeHooks{took: time.Second, result: smokeFailsAt50}, Journal: j})
		live = r.wait(time.Hour, "the hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
	})
	rec, err := engine.LoadRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	folded := rec.Fold()
	if folded.Hold != engine.HoldHook || folded.HoldReason != live.HoldReason || !slices.Equal(folded.HooksPassed, live.HooksPassed) || folded.Seq != live.Seq {
		t.Errorf("read back: %s %q passed %v; live: %s %q passed %v", folded.Hold, folded.HoldReason, folded.HooksPassed, live.Hold, live.HoldReason, live.HooksPassed)
	}
	data, _ := os.ReadFile(path)
	bad := strings.Replace(string(data), `"hook":{"index":0`, `"hook":{"index":7`, 1)
	if _, err := engine.ReadJournal(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "needs a hook of the rollout") {
		t.Errorf("a hook event for hooks[7] read back: %v", err)
	}
}
