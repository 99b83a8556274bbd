package tui

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/spec"
)

// TestConfirmFollowsTheRollout: operator A opens the rollback dialog on step 1 and operator B
// advances while it is open. The dialog then states the new step and weight, and A's
// confirmation rolls back the real engine.
func TestConfirmFollowsTheRollout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rollout, err := spec.Load("testdata/rollout.yaml")
		if err != nil {
			t.Fatal(err)
		}
		router := &enginetest.Router{}
		eng, err := engine.New(engine.Config{Spec: rollout, Router: router, Source: memSource{}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			eng.Run(ctx)
		}()
		defer func() { cancel(); <-done }()
		waitFor := func(what string, cond func(engine.State) bool) engine.State {
			t.Helper()
			for deadline := time.Now().Add(time.Hour); time.Now().Before(deadline); time.Sleep(time.Second) {
				if st := eng.Snapshot(); cond(st) {
					return st
				}
			}
			t.Fatalf("no %s within an hour; at %s", what, eng.Snapshot().Phase)
			return engine.State{}
		}

		st := waitFor("1% confirmed", func(s engine.State) bool { return s.Step == 0 && s.Weight == 1 })
		h := newHarness(t, st, time.Now(), func(o *Options) { o.Commander = eng })
		h.press("r")
		for _, s := range []string{"Send 0% to canary (it has 1% now).", "Step 1 of 6 ends as failed"} {
			if !strings.Contains(h.screen(), s) {
				t.Fatalf("dialog does not say %q:\n%s", s, h.screen())
			}
		}

		bob := engine.Actor{Name: "bob", Role: engine.RoleOperator, Source: "ssh"}
		if err := eng.Do(context.Background(), engine.Command{Kind: engine.CommandAdvance, Actor: bob, Step: 0}); err != nil {
			t.Fatalf("bob's advance: %v", err)
		}
		st = waitFor("5% confirmed", func(s engine.State) bool { return s.Step == 1 && s.Weight == 5 })
		h.m.Update(snapshotMsg{st: st, ok: true})
		screen := h.screen()
		for _, s := range []string{"Send 0% to canary (it has 5% now).", "Step 2 of 6 ends as failed"} {
			if !strings.Contains(screen, s) {
				t.Errorf("after bob's advance the dialog does not say %q:\n%s", s, screen)
			}
		}
		if strings.Contains(screen, "Step 1 of 6") || strings.Contains(screen, "it has 1% now") || strings.Contains(screen, "⚠") {
			t.Errorf("the dialog still states step 1, or warns:\n%s", screen)
		}

		h.press("y")
		if !strings.Contains(h.screen(), "✔ roll back accepted") {
			t.Errorf("status after confirming:\n%s", h.screen())
		}
		st = waitFor("the rollback", func(s engine.State) bool { return s.Phase == engine.PhaseRolledBack })
		if st.EndedBy == nil || st.EndedBy.Name != "alice" || st.Steps[1].Status != engine.StepFailed {
			t.Errorf("rolled back by %v with step 2 %s; want alice, step 2 failed", st.EndedBy, st.Steps[1].Status)
		}
	})
}

// TestConfirmWarnsWhenStale: a promote dialog opened on one step warns once the rollout has
// moved on, since the engine refuses a promote issued against an older step.
func TestConfirmWarnsWhenStale(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, nil)
	h.press("P")
	if strings.Contains(h.screen(), "moved from step") {
		t.Fatalf("warns before the rollout moved:\n%s", h.screen())
	}
	moved := st.Clone()
	moved.Step++
	h.m.Update(snapshotMsg{st: moved, ok: true})
	want := "The rollout moved from step 4 to step 5 since this opened"
	if !strings.Contains(strings.Join(strings.Fields(h.screen()), " "), want) {
		t.Errorf("dialog does not warn %q:\n%s", want, h.screen())
	}
}
