package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// flakySource fails every query while down is set.
type flaky struct {
	mu   sync.Mutex
	down bool
}

func (f *flaky) set(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *flaky) err(metrics.Query) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("dial tcp 127.0.0.1:9090: connection refused")
	}
	return nil
}

func TestOutageHoldsAtOnceAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, f := newWorld(), &flaky{}
		w.sourceErr = f.err
		r := start(t, testSpec(t, specOpts{}), w, engine.Config{})
		r.wait(time.Hour, "step 1's first look", func(s engine.State) bool { return s.Looks == 1 })
		f.set(true)
		st := r.wait(time.Minute, "an outage hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
		if st.Hold != engine.HoldOutage || !strings.Contains(st.HoldReason, "connection refused") || !time.Now().Before(st.AnalysisEndsAt()) {
			t.Fatalf("hold %s %q at %s (analysis ends %s): want an outage hold naming the error, before the step's end",
				st.Hold, st.HoldReason, time.Now(), st.AnalysisEndsAt())
		}
		time.Sleep(20 * time.Minute) // longer than maxOutage: with inconclusive: hold, it keeps holding
		if st := r.eng.Snapshot(); st.Phase != engine.PhaseHolding || st.Step != 0 {
			t.Fatalf("%s at step %d after a 20m outage, want holding at step 1", st.Phase, st.Step+1)
		}
		f.set(false)
		out, err := r.finish(time.Hour)
		if out != engine.OutcomePromoted || err != nil {
			t.Fatalf("outcome %s, %v; want promoted after the source recovered", out, err)
		}
		var recovered bool
		for _, ev := range r.journal.all() {
			recovered = recovered || ev.Type == engine.EventResumed && ev.Actor == nil && strings.Contains(ev.Reason, "recovered")
		}
		if !recovered {
			t.Error("no resumed event saying the metrics source recovered")
		}
	})
}

func TestOutagePastMaxOutageFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, f := newWorld(), &flaky{}
		w.sourceErr = f.err
		r := start(t, testSpec(t, specOpts{inconclusive: "fail"}), w, engine.Config{})
		r.wait(time.Hour, "step 1's first look", func(s engine.State) bool { return s.Looks == 1 })
		f.set(true)
		st := r.wait(time.Minute, "an outage hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
		since := st.OutageSince
		out, _ := r.finish(time.Hour)
		if out != engine.OutcomeRolledBack {
			t.Fatalf("outcome %s, want rolled back after maxOutage", out)
		}
		rb, _ := first(r.journal.all(), engine.EventRollbackStarted)
		if d := rb.Time.Sub(since); d < 5*time.Minute || d > 5*time.Minute+30*time.Second {
			t.Errorf("rolled back %s after the outage began, want once maxOutage (5m) passed, at the next look", d)
		}
		if !strings.Contains(rb.Reason, "metrics source down for") {
			t.Errorf("rollback reason %q", rb.Reason)
		}
	})
}

func TestNoteIsJournaled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, testSpec(t, specOpts{}), newWorld(), engine.Config{})
		alert := engine.Actor{Name: "alertmanager/HighLatency", Source: "alertmanager"}
		if err := r.eng.Note(context.Background(), alert, "HighLatency resolved"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		ev, ok := first(r.journal.all(), engine.EventNote)
		if !ok || ev.Actor == nil || ev.Actor.Name != alert.Name || ev.Reason != "HighLatency resolved" {
			t.Errorf("note event %+v", ev)
		}
		if st := r.eng.Snapshot(); st.Phase != engine.PhaseRunning {
			t.Errorf("a note changed the phase to %s", st.Phase)
		}
	})
}
