package engine_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// dryRunSpec is the test rollout with its critical errors check a dry run.
func dryRunSpec(t *testing.T, o specOpts) *spec.Rollout {
	t.Helper()
	r := testSpec(t, o)
	r.Checks[1].DryRun = true
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

func dryRuns(events []engine.Event) []engine.Event {
	var out []engine.Event
	for _, ev := range events {
		if ev.Type == engine.EventDryRun {
			out = append(out, ev)
		}
	}
	return out
}

// TestDryRunCheckNeverRollsBack: a critical check failing at every look from step 2 on would
// roll back, but as a dry run it is only recorded, once per step; the steps pass on the other
// check and the canary is promoted.
func TestDryRunCheckNeverRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.canary = func(weight int) (float64, float64) {
			if weight >= 50 {
				return 100, 0.2
			}
			return 100, 0
		}
		r := start(t, dryRunSpec(t, specOpts{}), w, engine.Config{})
		out, err := r.finish(time.Hour)
		if err != nil || out != engine.OutcomePromoted {
			t.Fatalf("outcome %s, %v; want promoted", out, err)
		}
		events := r.journal.all()
		if n := count(events, engine.EventRollbackStarted) + count(events, engine.EventHeld); n != 0 {
			t.Errorf("%d rollbacks or holds, want none", n)
		}
		failed := 0
		for _, ev := range events {
			for _, c := range ev.Checks {
				if c.Check == "errors" && c.Verdict == metrics.Fail {
					failed++
				}
			}
		}
		if failed != 4 {
			t.Errorf("errors failed %d looks, want 4 (every look of steps 2 and 3 with enough samples): it is judged like any check", failed)
		}
		got := dryRuns(events)
		if len(got) != 2 || got[0].Step != 1 || got[1].Step != 2 {
			t.Fatalf("dry-run events %+v: want one in step 2 and one in step 3, not one per look", got)
		}
		for _, ev := range got {
			if ev.Check != "errors" || ev.Would != engine.WouldRollBack || !strings.Contains(ev.Reason, "errors failed") || !strings.Contains(ev.Reason, "(critical)") {
				t.Errorf("dry-run event %+v: want errors would have rolled back, critical", ev)
			}
		}
		line := got[0].Describe(r.eng.Snapshot().Spec)
		if !strings.HasPrefix(line, "errors (dry run) would have rolled back: errors failed: ") {
			t.Errorf("described as %q", line)
		}
		st := r.eng.Snapshot()
		if !st.Checks[1].DryRun || st.Checks[0].DryRun {
			t.Errorf("checks' dry-run marks %v %v", st.Checks[0].DryRun, st.Checks[1].DryRun)
		}
	})
}

// TestDryRunRecordedPerTransition: a dry-run check that fails, passes and fails again is
// recorded each time it starts failing, never on the looks in between.
func TestDryRunRecordedPerTransition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		var mu sync.Mutex
		calls := 0
		// Two canary queries a look (latency, errors): call n belongs to look (n-1)/2. The
		// first two looks have too few samples to fail.
		failing := map[int]bool{2: true, 3: true, 5: true, 6: true}
		w.canary = func(int) (float64, float64) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if failing[(calls-1)/2] {
				return 100, 0.2
			}
			return 100, 0
		}
		steps := "  - setWeight: 10\n    analyze: 5m\n"
		r := start(t, dryRunSpec(t, specOpts{steps: steps}), w, engine.Config{})
		if out, err := r.finish(time.Hour); err != nil || out != engine.OutcomePromoted {
			t.Fatalf("outcome %s, %v; want promoted", out, err)
		}
		events := r.journal.all()
		if n := count(events, engine.EventAnalysis); n != 10 {
			t.Fatalf("%d looks, want 10", n)
		}
		var seqs []int
		looks := 0
		for _, ev := range events {
			switch ev.Type {
			case engine.EventAnalysis:
				looks++
			case engine.EventDryRun:
				seqs = append(seqs, looks)
			}
		}
		if len(seqs) != 2 || seqs[0] != 3 || seqs[1] != 6 {
			t.Errorf("dry-run events after looks %v, want after looks 3 and 6 (fail, fail, pass, fail, fail, then passes)", seqs)
		}
	})
}

// TestDryRunSourceFailureHoldsNothing: a dry-run check whose metrics source fails is no
// outage: the rollout carries on, and what it would have done is recorded once a step.
func TestDryRunSourceFailureHoldsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.sourceErr = func(q metrics.Query) error {
			if q.Expr == "canary_errors" {
				return errors.New("connection refused")
			}
			return nil
		}
		r := start(t, dryRunSpec(t, specOpts{}), w, engine.Config{})
		if out, err := r.finish(time.Hour); err != nil || out != engine.OutcomePromoted {
			t.Fatalf("outcome %s, %v; want promoted", out, err)
		}
		events := r.journal.all()
		if n := count(events, engine.EventHeld); n != 0 {
			t.Errorf("%d holds, want none", n)
		}
		got := dryRuns(events)
		if len(got) != 3 || got[0].Would != engine.WouldHold || !strings.Contains(got[0].Reason, "connection refused") {
			t.Errorf("dry-run events %+v: want one hold a step, saying why", got)
		}
	})
}

// TestDryRunWouldBlockAtTheEnd: a dry-run check failing within the failure limit would keep
// its step from passing once the analysis is over; the step passes.
func TestDryRunWouldBlockAtTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.canary = func(int) (float64, float64) { return 100, 0.2 }
		rollout := dryRunSpec(t, specOpts{limit: 100, steps: "  - setWeight: 10\n    analyze: 2m\n"})
		rollout.Checks[1].Critical = false
		r := start(t, rollout, w, engine.Config{})
		if out, err := r.finish(time.Hour); err != nil || out != engine.OutcomePromoted {
			t.Fatalf("outcome %s, %v; want promoted", out, err)
		}
		got := dryRuns(r.journal.all())
		if len(got) != 1 || got[0].Would != engine.WouldBlock {
			t.Errorf("dry-run events %+v: want one, would have kept the step from passing", got)
		}
	})
}

// TestDryRunJournal: a dry run's mark and what it would have done are journaled and folded
// back when the journal is read; an action perch does not know is refused.
func TestDryRunJournal(t *testing.T) {
	rollout := dryRunSpec(t, specOpts{})
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := engine.CreateJournal(path, rollout, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ev := engine.Event{Seq: 1, Time: time.Unix(1, 0).UTC(), Type: engine.EventDryRun, Check: "errors", Would: engine.WouldRollBack, Reason: "errors failed"}
	if err := j.Append(ev); err != nil {
		t.Fatal(err)
	}
	j.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := engine.ReadJournal(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	st := rec.Fold()
	if !rec.Header.Spec.Checks[1].DryRun || !st.Checks[1].DryRun || st.Checks[1].Would != engine.WouldRollBack {
		t.Errorf("read back: spec dry run %v, state %+v", rec.Header.Spec.Checks[1].DryRun, st.Checks[1])
	}
	bad := strings.Replace(string(data), `"would":"rollback"`, `"would":"explode"`, 1)
	if _, err := engine.ReadJournal(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), `dry_run: unknown action "explode"`) {
		t.Errorf("an unknown action: %v", err)
	}
}
