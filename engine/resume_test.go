package engine_test

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
)

// TestResumeFromEveryCut records a whole rollout, then for every prefix of its journal (a
// crash after that event) resumes a new engine from the prefix and checks it ends as the
// uninterrupted run did, never moving traffic to a weight no step names. The provider is left
// either at the last confirmed weight or at the weight being set when the crash came.
func TestResumeFromEveryCut(t *testing.T) {
	scenarios := []struct {
		name   string
		canary func(weight int) (float64, float64)
		want   engine.Outcome
	}{
		{"promoted", func(int) (float64, float64) { return 100, 0 }, engine.OutcomePromoted},
		{"rolled back", func(weight int) (float64, float64) {
			if weight >= 50 {
				return 100, 0.3
			}
			return 100, 0
		}, engine.OutcomeRolledBack},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			spec := testSpec(t, specOpts{})
			var recorded []engine.Event
			var final engine.State
			synctest.Test(t, func(t *testing.T) {
				w := newWorld()
				w.canary = sc.canary
				r := start(t, spec, w, engine.Config{})
				if out, err := r.finish(time.Hour); out != sc.want || err != nil {
					t.Fatalf("uninterrupted run: %s, %v; want %s", out, err, sc.want)
				}
				recorded, final = r.journal.all(), r.eng.Snapshot()
			})
			allowed := []int{0, 100}
			for _, st := range spec.Steps {
				allowed = append(allowed, st.Weight())
			}
			for cut := 1; cut < len(recorded); cut++ {
				for _, inFlight := range []bool{false, true} {
					prefix := recorded[:cut]
					provider := providerWeight(prefix, inFlight)
					t.Run(fmt.Sprintf("after %d %s provider %d", cut, prefix[cut-1].Type, provider), func(t *testing.T) {
						synctest.Test(t, func(t *testing.T) {
							// Resume a little after the crash, as a restarted process would.
							time.Sleep(time.Until(prefix[cut-1].Time) + 7*time.Second)
							w := newWorld()
							w.canary, w.weight = sc.canary, provider
							rec := &engine.Recording{Header: engine.Header{Spec: spec}, Events: prefix}
							r := start(t, spec, w, engine.Config{Resume: rec})
							out, err := r.finish(time.Hour)
							if out != sc.want || err != nil {
								t.Fatalf("resumed run: %s, %v; want %s", out, err, sc.want)
							}
							got := r.eng.Snapshot()
							if got.Weight != final.Weight || !sameStatuses(got.Steps, final.Steps) {
								t.Errorf("resumed run ended at %d%% with steps %v; uninterrupted at %d%% with %v", got.Weight, got.Steps, final.Weight, final.Steps)
							}
							for _, set := range w.setCalls() {
								if !slices.Contains(allowed, set) {
									t.Errorf("the resumed run set %d%%, which no step names", set)
								}
							}
							if first := r.journal.all()[0]; first.Type != engine.EventReconciled || first.Seq != int64(cut+1) {
								t.Errorf("first resumed event is %s #%d, want reconciled #%d", first.Type, first.Seq, cut+1)
							}
						})
					})
				}
			}
		})
	}
}

// providerWeight is what the provider had when the process died after prefix: the last
// confirmed weight, or, inFlight, the target of a change the journal had not yet confirmed.
func providerWeight(prefix []engine.Event, inFlight bool) int {
	weight, target := 0, 0
	for _, ev := range prefix {
		switch ev.Type {
		case engine.EventWeightSet:
			weight = *ev.Weight
			target = weight
		case engine.EventStepStarted:
			if ev.Weight != nil {
				target = *ev.Weight
			}
		case engine.EventRollbackStarted:
			target = 0
		case engine.EventPromoteStarted:
			target = 100
		}
	}
	if inFlight {
		return target
	}
	return weight
}

func sameStatuses(a, b []engine.StepState) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Status != b[i].Status {
			return false
		}
	}
	return true
}

func TestResumeHoldsWhenTrafficWasMovedByHand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := testSpec(t, specOpts{})
		w := newWorld()
		r := start(t, spec, w, engine.Config{})
		r.wait(time.Hour, "step 2 analysis", func(s engine.State) bool { return s.Step == 1 && !s.AnalysisStartedAt.IsZero() })
		r.cancel()
		r.finish(time.Minute)
		w.mu.Lock()
		w.weight = 3 // an operator moved traffic by hand while perch was down
		w.mu.Unlock()
		calls := len(w.setCalls())
		r2 := start(t, spec, w, engine.Config{Resume: &engine.Recording{Header: engine.Header{Spec: spec}, Events: r.journal.all()}})
		st := r2.wait(time.Minute, "a hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
		time.Sleep(time.Hour)
		if got := len(w.setCalls()); got != calls || w.current() != 3 {
			t.Fatalf("the resumed engine moved traffic (weight %d, %d calls, was %d): it must hold", w.current(), got, calls)
		}
		if st.Hold != engine.HoldRouter || st.Weight != 3 {
			t.Errorf("hold %s with weight %d: %q", st.Hold, st.Weight, st.HoldReason)
		}
		if err := r2.do(engine.CommandResume, "alice", 1); err != nil {
			t.Fatal(err)
		}
		if out, _ := r2.finish(time.Hour); out != engine.OutcomePromoted {
			t.Errorf("after resume: %s, want promoted", out)
		}
	})
}
