package engine_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// phaseSetup brings a fresh engine into one phase and returns it.
type phaseSetup func(t *testing.T) *running

var phases = map[string]phaseSetup{
	"running": func(t *testing.T) *running {
		r := start(t, testSpec(t, specOpts{}), newWorld(), engine.Config{})
		r.wait(time.Hour, "analysis", func(s engine.State) bool { return !s.AnalysisStartedAt.IsZero() })
		return r
	},
	"paused": func(t *testing.T) *running {
		r := start(t, testSpec(t, specOpts{}), newWorld(), engine.Config{})
		r.wait(time.Hour, "analysis", func(s engine.State) bool { return !s.AnalysisStartedAt.IsZero() })
		if err := r.do(engine.CommandPause, "alice", 0); err != nil {
			t.Fatalf("pause: %v", err)
		}
		return r
	},
	"pause step": func(t *testing.T) *running {
		r := start(t, testSpec(t, specOpts{steps: "  - pause: {}\n  - setWeight: 50\n    analyze: 1m\n"}), newWorld(), engine.Config{})
		r.wait(time.Hour, "the pause step", func(s engine.State) bool { return s.Phase == engine.PhasePaused })
		return r
	},
	"holding": func(t *testing.T) *running {
		w := newWorld()
		w.sourceErr = func(metrics.Query) error { return metrics.ErrNoData }
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
		r.wait(time.Hour, "a hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
		return r
	},
	"rolling back": func(t *testing.T) *running {
		w := newWorld()
		w.canary = func(int) (float64, float64) { return 100, 0.5 }
		w.setErr = func(target, _ int) error {
			if target == 0 {
				return errProvider
			}
			return nil
		}
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
		r.wait(time.Hour, "rolling back", func(s engine.State) bool { return s.Phase == engine.PhaseRollingBack })
		return r
	},
	"rolled back": func(t *testing.T) *running {
		w := newWorld()
		w.canary = func(weight int) (float64, float64) {
			if weight == 10 {
				return 100, 0.5
			}
			return 100, 0
		}
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{Linger: true})
		r.wait(time.Hour, "rolled back", func(s engine.State) bool { return s.Phase == engine.PhaseRolledBack })
		return r
	},
	"promoting": func(t *testing.T) *running {
		w := newWorld()
		w.setErr = func(target, _ int) error {
			if target == 100 {
				return errProvider
			}
			return nil
		}
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
		r.wait(time.Hour, "analysis", func(s engine.State) bool { return !s.AnalysisStartedAt.IsZero() })
		if err := r.do(engine.CommandPromote, "alice", 0); err != nil {
			t.Fatalf("promote: %v", err)
		}
		r.wait(time.Minute, "promoting", func(s engine.State) bool { return s.Phase == engine.PhasePromoting })
		return r
	},
}

func TestEveryCommandInEveryPhase(t *testing.T) {
	// want is the phase after the command, or "" when the command is refused as not allowed.
	tests := []struct {
		phase string
		cmd   engine.CommandKind
		want  engine.Phase
	}{
		{"running", engine.CommandPause, engine.PhasePaused},
		{"running", engine.CommandResume, ""},
		{"running", engine.CommandAdvance, engine.PhaseRunning},
		{"running", engine.CommandRollback, engine.PhaseRolledBack},
		{"running", engine.CommandPromote, engine.PhasePromoted},
		{"running", engine.CommandRetry, ""},
		{"paused", engine.CommandPause, ""},
		{"paused", engine.CommandResume, engine.PhaseRunning},
		{"paused", engine.CommandAdvance, engine.PhaseRunning},
		{"paused", engine.CommandRollback, engine.PhaseRolledBack},
		{"paused", engine.CommandPromote, engine.PhasePromoted},
		{"paused", engine.CommandRetry, ""},
		{"pause step", engine.CommandPause, ""},
		{"pause step", engine.CommandResume, engine.PhaseRunning},
		{"pause step", engine.CommandAdvance, engine.PhaseRunning},
		{"pause step", engine.CommandRollback, engine.PhaseRolledBack},
		{"pause step", engine.CommandPromote, engine.PhasePromoted},
		{"pause step", engine.CommandRetry, ""},
		{"holding", engine.CommandPause, engine.PhasePaused},
		{"holding", engine.CommandResume, engine.PhaseRunning},
		{"holding", engine.CommandAdvance, engine.PhaseRunning},
		{"holding", engine.CommandRollback, engine.PhaseRolledBack},
		{"holding", engine.CommandPromote, engine.PhasePromoted},
		{"holding", engine.CommandRetry, ""},
		{"rolling back", engine.CommandPause, ""},
		{"rolling back", engine.CommandResume, ""},
		{"rolling back", engine.CommandAdvance, ""},
		{"rolling back", engine.CommandRollback, ""},
		{"rolling back", engine.CommandPromote, ""},
		{"rolling back", engine.CommandRetry, ""},
		{"rolled back", engine.CommandPause, ""},
		{"rolled back", engine.CommandResume, ""},
		{"rolled back", engine.CommandAdvance, ""},
		{"rolled back", engine.CommandRollback, ""},
		{"rolled back", engine.CommandPromote, ""},
		{"rolled back", engine.CommandRetry, engine.PhaseRunning},
		{"promoting", engine.CommandPause, ""},
		{"promoting", engine.CommandResume, ""},
		{"promoting", engine.CommandAdvance, ""},
		{"promoting", engine.CommandRollback, engine.PhaseRolledBack},
		{"promoting", engine.CommandPromote, ""},
		{"promoting", engine.CommandRetry, ""},
	}
	for _, tc := range tests {
		t.Run(tc.phase+"/"+string(tc.cmd), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := phases[tc.phase](t)
				before := r.eng.Snapshot()
				err := r.do(tc.cmd, "bob", before.Step)
				if tc.want == "" {
					if !errors.Is(err, engine.ErrNotAllowed) {
						t.Fatalf("%s while %s: %v, want ErrNotAllowed", tc.cmd, tc.phase, err)
					}
					synctest.Wait()
					if after := r.eng.Snapshot(); after.Phase != before.Phase || after.Step != before.Step {
						t.Errorf("a refused %s moved the rollout from %s/%d to %s/%d", tc.cmd, before.Phase, before.Step, after.Phase, after.Step)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s while %s: %v, want accepted", tc.cmd, tc.phase, err)
				}
				synctest.Wait()
				after := r.eng.Snapshot()
				// Rollbacks and promotions go through their -ing phase; let the provider answer.
				if tc.want == engine.PhaseRolledBack || tc.want == engine.PhasePromoted {
					after = r.wait(time.Minute, string(tc.want), func(s engine.State) bool { return s.Phase == tc.want })
				}
				if after.Phase != tc.want {
					t.Fatalf("%s while %s left the rollout %s, want %s", tc.cmd, tc.phase, after.Phase, tc.want)
				}
				switch tc.cmd {
				case engine.CommandAdvance:
					if after.Step != before.Step+1 || after.Steps[before.Step].By == nil || after.Steps[before.Step].By.Name != "bob" {
						t.Errorf("advance: at step %d, step %d passed by %v; want the next step, passed by bob", after.Step+1, before.Step+1, after.Steps[before.Step].By)
					}
				case engine.CommandRetry:
					if after.Step != 0 || after.Attempt != 2 {
						t.Errorf("retry: step %d, attempt %d; want step 1 of attempt 2", after.Step+1, after.Attempt)
					}
				case engine.CommandPause:
					if after.PausedBy == nil || after.PausedBy.Name != "bob" {
						t.Errorf("paused by %v, want bob", after.PausedBy)
					}
				case engine.CommandRollback, engine.CommandPromote:
					if after.EndedBy == nil || after.EndedBy.Name != "bob" {
						t.Errorf("%s by %v, want bob", tc.cmd, after.EndedBy)
					}
				}
			})
		})
	}
}

func TestPausedEngineStillRollsBackOnFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		var bad bool
		w.canary = func(int) (float64, float64) {
			if bad {
				return 100, 0.5
			}
			return 100, 0
		}
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
		r.wait(time.Hour, "analysis", func(s engine.State) bool { return !s.AnalysisStartedAt.IsZero() })
		if err := r.do(engine.CommandPause, "alice", 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute) // a healthy canary stays paused past its analysis time
		if st := r.eng.Snapshot(); st.Phase != engine.PhasePaused || st.Step != 0 {
			t.Fatalf("%s at step %d, want still paused at step 1", st.Phase, st.Step+1)
		}
		w.mu.Lock()
		bad = true
		w.mu.Unlock()
		out, _ := r.finish(time.Hour)
		if out != engine.OutcomeRolledBack {
			t.Fatalf("outcome %s: a pause must not stop a critical failure from rolling back", out)
		}
	})
}

// TestRollbackAndPauseAreNeverStale: operator A opens the rollback dialog on step 1, B
// advances, A confirms. The rollback (and a pause) act on the step the rollout is at; advance,
// promote and retry issued against an older step are still refused.
func TestRollbackAndPauseAreNeverStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{Linger: true})
		r.wait(time.Hour, "analysis of step 1", func(s engine.State) bool { return !s.AnalysisStartedAt.IsZero() })
		if err := r.do(engine.CommandAdvance, "bob", 0); err != nil {
			t.Fatalf("bob's advance: %v", err)
		}
		r.wait(time.Hour, "analysis of step 2", func(s engine.State) bool { return s.Step == 1 && !s.AnalysisStartedAt.IsZero() })
		for _, kind := range []engine.CommandKind{engine.CommandAdvance, engine.CommandPromote} {
			if err := r.do(kind, "alice", 0); !errors.Is(err, engine.ErrStaleCommand) {
				t.Errorf("%s issued on step 1 while at step 2: %v, want ErrStaleCommand", kind, err)
			}
		}
		if err := r.do(engine.CommandPause, "alice", 0); err != nil {
			t.Fatalf("pause issued on step 1 while at step 2: %v, want accepted", err)
		}
		if st := r.eng.Snapshot(); st.Phase != engine.PhasePaused || st.Step != 1 || st.PausedBy == nil || st.PausedBy.Name != "alice" {
			t.Fatalf("after alice's pause: %s at step %d by %v; want paused at step 2 by alice", st.Phase, st.Step+1, st.PausedBy)
		}
		if err := r.do(engine.CommandRollback, "alice", 0); err != nil {
			t.Fatalf("rollback issued on step 1 while at step 2: %v, want accepted", err)
		}
		st := r.wait(time.Minute, "rolled back", func(s engine.State) bool { return s.Phase == engine.PhaseRolledBack })
		if st.EndedBy == nil || st.EndedBy.Name != "alice" || st.Steps[1].Status != engine.StepFailed || w.current() != 0 {
			t.Errorf("rolled back by %v, step 2 %s, weight %d; want alice, step 2 failed, 0%%", st.EndedBy, st.Steps[1].Status, w.current())
		}
		if err := r.do(engine.CommandRetry, "alice", 0); !errors.Is(err, engine.ErrStaleCommand) {
			t.Errorf("retry issued on step 1 while at step 2: %v, want ErrStaleCommand", err)
		}
	})
}
