package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

func TestHealthyRolloutPromotes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
		out, err := r.finish(time.Hour)
		if err != nil || out != engine.OutcomePromoted {
			t.Fatalf("outcome %s, %v; want promoted", out, err)
		}
		if got, want := w.setCalls(), []int{10, 50, 80, 100}; !slices.Equal(got, want) {
			t.Errorf("weights set %v, want %v", got, want)
		}
		st := r.eng.Snapshot()
		for i, s := range st.Steps {
			if s.Status != engine.StepPassed {
				t.Errorf("step %d is %s, want passed", i+1, s.Status)
			}
		}
		events := r.journal.all()
		// Each step: 30s stabilization, then looks every 30s until its 2m analysis is over.
		started, _ := first(events, engine.EventRolloutStarted)
		promoted, _ := first(events, engine.EventPromoted)
		if d := promoted.Time.Sub(started.Time); d != 3*(30*time.Second+2*time.Minute) {
			t.Errorf("rollout took %s, want 7m30s (3 × (30s stabilization + 2m analysis))", d)
		}
		if n := count(events, engine.EventAnalysis); n != 12 {
			t.Errorf("%d looks, want 12 (4 per step)", n)
		}
		for i, ev := range events {
			if ev.Seq != int64(i+1) {
				t.Fatalf("event %d has seq %d", i, ev.Seq)
			}
		}
	})
}

func TestCriticalFailureRollsBackMidStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.canary = func(weight int) (float64, float64) {
			if weight >= 50 {
				return 100, 0.2 // 20% errors once the canary takes half the traffic
			}
			return 100, 0
		}
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
		out, err := r.finish(time.Hour)
		if err != nil || out != engine.OutcomeRolledBack {
			t.Fatalf("outcome %s, %v; want rolled_back", out, err)
		}
		events := r.journal.all()
		rb, ok := first(events, engine.EventRollbackStarted)
		if !ok {
			t.Fatal("no rollback_started event")
		}
		if rb.Step != 1 || !strings.Contains(rb.Reason, "errors failed") || !strings.Contains(rb.Reason, "critical") {
			t.Errorf("rollback at step %d because %q; want step 2 because the critical errors check failed", rb.Step+1, rb.Reason)
		}
		var analysisStart engine.Event
		for _, ev := range events {
			if ev.Type == engine.EventAnalysisStarted && ev.Step == 1 {
				analysisStart = ev
			}
		}
		if ends := analysisStart.Time.Add(2 * time.Minute); !rb.Time.Before(ends) {
			t.Errorf("rolled back at %s, not before the step's analysis ended at %s", rb.Time, ends)
		}
		if got := w.setCalls(); got[len(got)-1] != 0 || slices.Contains(got, 80) {
			t.Errorf("weights set %v: want a final 0 and never step 3's 80", got)
		}
		st := r.eng.Snapshot()
		if st.Steps[1].Status != engine.StepFailed || st.Steps[2].Status != engine.StepPending {
			t.Errorf("steps %v, want step 2 failed and step 3 pending", st.Steps)
		}
	})
}

func TestFailureLimit(t *testing.T) {
	tests := []struct {
		name    string
		limit   int
		bad     func(look int) bool // latency 150 (50% worse) at these looks of step 1
		want    engine.Outcome
		wantFab int // fail verdicts in step 1 (the threshold judge needs 3 looks before it judges)
	}{
		{"one failure over a zero limit rolls back", 0, func(int) bool { return true }, engine.OutcomeRolledBack, 1},
		{"failures up to the limit are tolerated", 2, func(look int) bool { return look == 3 }, engine.OutcomePromoted, 1},
		{"the failure past the limit rolls back", 2, func(int) bool { return true }, engine.OutcomeRolledBack, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld()
				look := 0
				spec := testSpec(t, specOpts{limit: tc.limit})
				// Only the latency check, so every look asks the canary once.
				spec.Checks = spec.Checks[:1]
				w.canary = func(weight int) (float64, float64) {
					if weight == 10 {
						look++
						if tc.bad(look) {
							return 150, 0
						}
					}
					return 100, 0
				}
				r := start(t, spec, w, engine.Config{})
				out, err := r.finish(time.Hour)
				if err != nil || out != tc.want {
					t.Fatalf("outcome %s, %v; want %s", out, err, tc.want)
				}
				fails := 0
				for _, ev := range r.journal.all() {
					if ev.Type == engine.EventAnalysis && ev.Step == 0 && ev.Checks[0].Verdict == metrics.Fail {
						fails++
					}
				}
				if fails != tc.wantFab {
					t.Errorf("%d fail verdicts in step 1, want %d", fails, tc.wantFab)
				}
			})
		})
	}
}

func TestInconclusive(t *testing.T) {
	noCanaryData := func(q metrics.Query) error {
		if strings.HasPrefix(q.Expr, "canary_latency") {
			return metrics.ErrNoData
		}
		return nil
	}
	t.Run("hold, then continue when data returns", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld()
			var mu sync.Mutex
			outage := true
			w.sourceErr = func(q metrics.Query) error {
				mu.Lock()
				defer mu.Unlock()
				if outage {
					return noCanaryData(q)
				}
				return nil
			}
			r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
			st := r.wait(time.Hour, "a hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
			if st.Step != 0 || st.Hold != engine.HoldInconclusive || !strings.Contains(st.HoldReason, "latency inconclusive") || !strings.Contains(st.HoldReason, "no data") {
				t.Fatalf("held at step %d (%s): %q; want step 1 inconclusive on latency with no data", st.Step+1, st.Hold, st.HoldReason)
			}
			time.Sleep(10 * time.Minute) // holding keeps looking and never advances on its own
			if st := r.eng.Snapshot(); st.Phase != engine.PhaseHolding || st.Step != 0 || w.current() != 10 {
				t.Fatalf("after 10m of outage: phase %s, step %d, weight %d; want still holding at step 1 with 10%%", st.Phase, st.Step+1, w.current())
			}
			mu.Lock()
			outage = false
			mu.Unlock()
			out, err := r.finish(time.Hour)
			if err != nil || out != engine.OutcomePromoted {
				t.Fatalf("outcome %s, %v; want promoted once data returned", out, err)
			}
		})
	})
	t.Run("fail rolls back", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld()
			w.sourceErr = noCanaryData
			r := start(t, testSpec(t, specOpts{inconclusive: "fail"}), w, engine.Config{})
			out, err := r.finish(time.Hour)
			if err != nil || out != engine.OutcomeRolledBack {
				t.Fatalf("outcome %s, %v; want rolled_back", out, err)
			}
			rb, _ := first(r.journal.all(), engine.EventRollbackStarted)
			if rb.Step != 0 || !strings.Contains(rb.Reason, "inconclusive") {
				t.Errorf("rollback at step %d: %q; want step 1, inconclusive", rb.Step+1, rb.Reason)
			}
		})
	})
	t.Run("a source down for the whole step is never a pass", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld()
			w.sourceErr = func(metrics.Query) error { return errors.New("connection refused") }
			r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
			st := r.wait(time.Hour, "a hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
			time.Sleep(time.Hour)
			st = r.eng.Snapshot()
			if st.Phase != engine.PhaseHolding || st.Steps[0].Status != engine.StepCurrent || !slices.Equal(w.setCalls(), []int{10}) {
				t.Fatalf("phase %s, step 1 %s, weights %v; want holding at step 1 with only 10%% ever set", st.Phase, st.Steps[0].Status, w.setCalls())
			}
			for _, c := range st.Checks {
				if c.Last.Verdict != metrics.Inconclusive || !strings.Contains(c.Last.Reason, "connection refused") {
					t.Errorf("check %s: %s %q; want inconclusive naming the source error", c.Name, c.Last.Verdict, c.Last.Reason)
				}
			}
		})
	})
}

func TestPauseSteps(t *testing.T) {
	steps := `  - setWeight: 10
    analyze: 1m
  - pause: {}
  - setWeight: 50
    analyze: 1m
  - pause: {duration: 10m}
`
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		r := start(t, testSpec(t, specOpts{steps: steps}), w, engine.Config{})
		st := r.wait(time.Hour, "the indefinite pause", func(s engine.State) bool { return s.Step == 1 })
		if st.Phase != engine.PhasePaused || !st.PauseStep || !st.PauseUntil.IsZero() {
			t.Fatalf("phase %s (pause step %v, until %v); want paused indefinitely", st.Phase, st.PauseStep, st.PauseUntil)
		}
		time.Sleep(24 * time.Hour)
		if st := r.eng.Snapshot(); st.Step != 1 || st.Phase != engine.PhasePaused {
			t.Fatalf("after a day: step %d, %s; want still paused at step 2", st.Step+1, st.Phase)
		}
		if err := r.do(engine.CommandResume, "alice", 1); err != nil {
			t.Fatalf("resume: %v", err)
		}
		st = r.wait(time.Hour, "the timed pause", func(s engine.State) bool { return s.Step == 3 })
		if st.Phase != engine.PhasePaused || st.PauseUntil.Sub(st.StepStartedAt) != 10*time.Minute {
			t.Fatalf("phase %s until %v; want paused for 10m", st.Phase, st.PauseUntil)
		}
		out, err := r.finish(time.Hour)
		if err != nil || out != engine.OutcomePromoted {
			t.Fatalf("outcome %s, %v; want promoted", out, err)
		}
		var pauseStart, pauseEnd time.Time
		for _, ev := range r.journal.all() {
			if ev.Step == 3 && ev.Type == engine.EventStepStarted {
				pauseStart = ev.Time
			}
			if ev.Step == 3 && ev.Type == engine.EventStepPassed {
				pauseEnd = ev.Time
			}
		}
		if d := pauseEnd.Sub(pauseStart); d != 10*time.Minute {
			t.Errorf("timed pause lasted %s, want 10m", d)
		}
		passed := r.eng.Snapshot().Steps[1]
		if passed.By == nil || passed.By.Name != "alice" {
			t.Errorf("step 2 passed by %v, want alice", passed.By)
		}
	})
}

func TestRacingAdvanceMovesOneStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
		r.wait(time.Hour, "analysis of step 1", func(s engine.State) bool { return !s.AnalysisStartedAt.IsZero() })
		errs := make(chan error, 2)
		for _, who := range []string{"alice", "bob"} {
			go func() { errs <- r.do(engine.CommandAdvance, who, 0) }()
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("advance results %v and %v: want exactly one accepted", e1, e2)
		}
		refused := e1
		if refused == nil {
			refused = e2
		}
		if !errors.Is(refused, engine.ErrStaleCommand) {
			t.Errorf("the second advance was refused with %v, want ErrStaleCommand", refused)
		}
		synctest.Wait()
		if st := r.eng.Snapshot(); st.Step != 1 {
			t.Errorf("at step %d after two racing advances, want step 2", st.Step+1)
		}
		refusals := 0
		for _, ev := range r.journal.all() {
			if ev.Type == engine.EventCommandRefused {
				refusals++
				if ev.Actor == nil || ev.Command != engine.CommandAdvance || !strings.Contains(ev.Reason, "step 1") {
					t.Errorf("refusal event %+v: want the actor, the command and the stale step", ev)
				}
			}
		}
		if refusals != 1 {
			t.Errorf("%d command_refused events, want 1", refusals)
		}
	})
}

func TestViewerCannotChangeTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
		r.wait(time.Hour, "step 1", func(s engine.State) bool { return s.Phase == engine.PhaseRunning })
		for _, kind := range []engine.CommandKind{engine.CommandPause, engine.CommandAdvance, engine.CommandRollback, engine.CommandPromote} {
			err := r.eng.Do(context.Background(), engine.Command{Kind: kind, Actor: engine.Actor{Name: "manager", Role: engine.RoleViewer}, Step: 0})
			if !errors.Is(err, engine.ErrForbidden) {
				t.Errorf("viewer %s: %v, want ErrForbidden", kind, err)
			}
		}
		synctest.Wait()
		if st := r.eng.Snapshot(); st.Phase != engine.PhaseRunning || st.Step != 0 {
			t.Errorf("after viewer commands: %s at step %d, want running at step 1", st.Phase, st.Step+1)
		}
	})
}

func TestSetWeightRetries(t *testing.T) {
	t.Run("transient failures are retried with backoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld()
			w.setErr = func(target, call int) error {
				if call <= 2 {
					return errProvider
				}
				return nil
			}
			r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
			out, err := r.finish(time.Hour)
			if err != nil || out != engine.OutcomePromoted {
				t.Fatalf("outcome %s, %v; want promoted", out, err)
			}
			var fails []engine.Event
			var set engine.Event
			for _, ev := range r.journal.all() {
				if ev.Type == engine.EventWeightFailed {
					fails = append(fails, ev)
				}
				if ev.Type == engine.EventWeightSet && set.Seq == 0 {
					set = ev
				}
			}
			if len(fails) != 2 || fails[0].Attempt != 1 || fails[1].Attempt != 2 {
				t.Fatalf("weight_failed events %v, want attempts 1 and 2", types(fails))
			}
			if gap := fails[1].Time.Sub(fails[0].Time); gap != time.Second {
				t.Errorf("first retry after %s, want 1s", gap)
			}
			if gap := set.Time.Sub(fails[1].Time); gap != 2*time.Second {
				t.Errorf("second retry after %s, want 2s (doubling backoff)", gap)
			}
		})
	})
	t.Run("a provider that keeps failing holds the step", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld()
			w.setErr = func(target, call int) error {
				if target == 50 {
					return errProvider
				}
				return nil
			}
			r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
			st := r.wait(time.Hour, "a router hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
			if st.Hold != engine.HoldRouter || st.Step != 1 || !strings.Contains(st.HoldReason, "provider unavailable") {
				t.Fatalf("hold %s at step %d: %q", st.Hold, st.Step+1, st.HoldReason)
			}
			calls := len(w.setCalls())
			time.Sleep(time.Hour)
			if got := len(w.setCalls()); got != calls {
				t.Errorf("the engine kept setting weights while holding (%d calls, then %d)", calls, got)
			}
			if st := r.eng.Snapshot(); st.Phase != engine.PhaseHolding {
				t.Errorf("phase %s after an hour, want holding", st.Phase)
			}
			if err := r.do(engine.CommandRollback, "alice", 1); err != nil {
				t.Fatalf("rollback: %v", err)
			}
			if out, _ := r.finish(time.Hour); out != engine.OutcomeRolledBack || w.current() != 0 {
				t.Errorf("outcome %s with weight %d, want rolled back to 0", out, w.current())
			}
		})
	})
	t.Run("a failing rollback is retried until it succeeds, saying so each time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld()
			w.canary = func(weight int) (float64, float64) { return 100, 0.5 }
			w.setErr = func(target, call int) error {
				if target == 0 && call < 12 {
					return errProvider
				}
				return nil
			}
			r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
			out, err := r.finish(24 * time.Hour)
			if err != nil || out != engine.OutcomeRolledBack || w.current() != 0 {
				t.Fatalf("outcome %s, %v, weight %d; want rolled back to 0", out, err, w.current())
			}
			fails := 0
			for _, ev := range r.journal.all() {
				if ev.Type == engine.EventWeightFailed {
					fails++
					if !strings.Contains(ev.Reason, "ROLLBACK FAILING") || ev.RetryAt == nil {
						t.Errorf("weight_failed %q: want it to say the rollback is failing and when it retries", ev.Reason)
					}
				}
			}
			if fails != 10 {
				t.Errorf("%d failed rollback attempts recorded, want 10", fails)
			}
		})
	})
}

func TestStopLeavesTrafficAndResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		spec := testSpec(t, specOpts{})
		r := start(t, spec, w, engine.Config{})
		r.wait(time.Hour, "step 2", func(s engine.State) bool { return s.Step == 1 && s.Looks == 2 })
		r.cancel()
		out, err := r.finish(time.Minute)
		if err != nil || out != engine.OutcomeStopped {
			t.Fatalf("outcome %s, %v; want stopped", out, err)
		}
		events := r.journal.all()
		if last := events[len(events)-1]; last.Type != engine.EventStopped {
			t.Fatalf("last event %s, want stopped", last.Type)
		}
		if w.current() != 50 {
			t.Fatalf("weight %d after stopping, want 50 left as it was", w.current())
		}
		rec := &engine.Recording{Header: engine.Header{Spec: spec}, Events: events}
		r2 := start(t, spec, w, engine.Config{Resume: rec})
		out, err = r2.finish(time.Hour)
		if err != nil || out != engine.OutcomePromoted {
			t.Fatalf("resumed outcome %s, %v; want promoted", out, err)
		}
		resumed := r2.journal.all()
		if resumed[0].Type != engine.EventReconciled || *resumed[0].Weight != 50 || resumed[0].Seq != events[len(events)-1].Seq+1 {
			t.Errorf("first resumed event %+v: want reconciled at 50%% continuing the sequence", resumed[0])
		}
		if started := count(resumed, engine.EventStepStarted); started != 1 {
			t.Errorf("resumed run started %d steps, want 1 (step 3 only)", started)
		}
		if got := w.setCalls(); !slices.Equal(got, []int{10, 50, 80, 100}) {
			t.Errorf("weights %v: the resumed run must not set 10 or 50 again", got)
		}
	})
}

func TestJournalFailureStopsTheEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		j := &memJournal{}
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{Journal: j})
		r.wait(time.Hour, "step 1 analysis", func(s engine.State) bool { return !s.AnalysisStartedAt.IsZero() })
		j.mu.Lock()
		j.fail = errors.New("disk full")
		j.mu.Unlock()
		out, err := r.finish(time.Hour)
		if out != engine.OutcomeStopped || err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("outcome %s, %v; want stopped with the journal's error", out, err)
		}
		if got := w.setCalls(); !slices.Equal(got, []int{10}) {
			t.Errorf("weights %v: nothing may change once events cannot be recorded", got)
		}
	})
}

func TestSubscribersAreLatestWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
		slow, unsubscribe := r.eng.Subscribe()
		defer unsubscribe()
		out, _ := r.finish(time.Hour) // nobody reads slow while the whole rollout runs
		if out != engine.OutcomePromoted {
			t.Fatalf("outcome %s, want promoted despite a subscriber that never reads", out)
		}
		st, ok := <-slow
		if !ok || st.Phase != engine.PhasePromoted {
			t.Fatalf("the slow subscriber got %v (%v), want the final promoted state", st.Phase, ok)
		}
		if _, ok := <-slow; ok {
			t.Error("subscription still open after the engine stopped")
		}
	})
}
