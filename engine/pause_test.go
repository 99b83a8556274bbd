package engine_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
)

// TestPauseStepKeepsWatching: a pause step holds the weight of the step before it, and keeps
// looking at it as an operator's pause does: a canary that starts failing during the pause
// is rolled back within a few looks, whether the pause is indefinite or timed. The threshold
// judge the test rollout uses needs 3 samples of the pause's own window, hence 3 intervals.
func TestPauseStepKeepsWatching(t *testing.T) {
	for _, tc := range []struct{ name, pause string }{
		{"indefinite", "  - pause: {}\n"},
		{"timed", "  - pause: {duration: 1h}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				steps := "  - setWeight: 10\n    analyze: 1m\n" + tc.pause + "  - setWeight: 50\n    analyze: 1m\n"
				w := newWorld()
				var bad bool
				w.canary = func(int) (float64, float64) {
					if bad {
						return 100, 0.5 // half the canary's requests fail
					}
					return 100, 0
				}
				r := start(t, testSpec(t, specOpts{steps: steps}), w, engine.Config{})
				st := r.wait(time.Hour, "the pause step", func(s engine.State) bool { return s.Step == 1 })
				if st.Phase != engine.PhasePaused || !st.PauseStep {
					t.Fatalf("at step 2: %s (pause step %v), want paused by the step", st.Phase, st.PauseStep)
				}
				time.Sleep(5 * time.Minute) // a healthy canary stays paused, looked at
				if st := r.eng.Snapshot(); st.Step != 1 || st.Phase != engine.PhasePaused || st.Looks == 0 {
					t.Fatalf("after 5m of a healthy pause: step %d, %s, %d looks; want paused at step 2, looking", st.Step+1, st.Phase, st.Looks)
				}
				w.mu.Lock()
				bad = true
				w.mu.Unlock()
				failedAt := time.Now()
				out, err := r.finish(time.Hour)
				if err != nil || out != engine.OutcomeRolledBack {
					t.Fatalf("outcome %s, %v; want rolled back during the pause", out, err)
				}
				rb, _ := first(r.journal.all(), engine.EventRollbackStarted)
				if rb.Step != 1 || !strings.Contains(rb.Reason, "errors failed") || rb.Actor != nil {
					t.Errorf("rollback at step %d by %v: %q; want step 2, by the engine, the errors check failing", rb.Step+1, rb.Actor, rb.Reason)
				}
				if d := rb.Time.Sub(failedAt); d > 3*30*time.Second {
					t.Errorf("rolled back %s after the canary began failing, want within 3 intervals (90s)", d)
				}
				if got := w.setCalls(); len(got) != 2 || got[0] != 10 || got[1] != 0 {
					t.Errorf("weights set %v, want [10 0]: the pause holds 10%% and the rollback sends 0%%", got)
				}
			})
		})
	}
}

// TestPauseStepHealthyCarriesOn: looking during a pause changes nothing for a healthy canary:
// an indefinite pause waits for an operator however long, a timed one ends on time.
func TestPauseStepHealthyCarriesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := "  - setWeight: 10\n    analyze: 1m\n  - pause: {}\n  - setWeight: 50\n    analyze: 1m\n  - pause: {duration: 10m}\n"
		w := newWorld()
		r := start(t, testSpec(t, specOpts{steps: steps}), w, engine.Config{})
		r.wait(time.Hour, "the pause step", func(s engine.State) bool { return s.Step == 1 })
		time.Sleep(6 * time.Hour)
		st := r.eng.Snapshot()
		if st.Step != 1 || st.Phase != engine.PhasePaused || st.Looks < 700 {
			t.Fatalf("after 6h: step %d, %s, %d looks; want still paused at step 2, looking every 30s", st.Step+1, st.Phase, st.Looks)
		}
		if err := r.do(engine.CommandResume, "alice", 1); err != nil {
			t.Fatalf("resume: %v", err)
		}
		out, err := r.finish(time.Hour)
		if err != nil || out != engine.OutcomePromoted {
			t.Fatalf("outcome %s, %v; want promoted", out, err)
		}
		var started, passed time.Time
		looks := 0
		for _, ev := range r.journal.all() {
			if ev.Step != 3 {
				continue
			}
			switch ev.Type {
			case engine.EventStepStarted:
				started = ev.Time
			case engine.EventStepPassed:
				passed = ev.Time
			case engine.EventAnalysis:
				looks++
			case engine.EventHeld, engine.EventRollbackStarted:
				t.Errorf("the timed pause recorded %s: %s", ev.Type, ev.Reason)
			}
		}
		if d := passed.Sub(started); d != 10*time.Minute || looks < 19 {
			t.Errorf("timed pause lasted %s with %d looks, want 10m with a look every 30s", d, looks)
		}
	})
}
