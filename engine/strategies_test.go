package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/segment"
)

// segWorld is world whose router also routes segments.
type segWorld struct {
	*world
	segMu    sync.Mutex
	segs     []string
	segCalls [][]string
	segErr   func(call int) error
}

func newSegWorld() *segWorld { return &segWorld{world: newWorld(), segs: []string{}} }

func (w *segWorld) RouteSegments(_ context.Context, segs []segment.Segment) error {
	w.segMu.Lock()
	defer w.segMu.Unlock()
	names := segment.Names(segs)
	w.segCalls = append(w.segCalls, names)
	if w.segErr != nil {
		if err := w.segErr(len(w.segCalls)); err != nil {
			return err
		}
	}
	w.segs = names
	return nil
}

func (w *segWorld) RoutedSegments(context.Context) ([]string, error) {
	w.segMu.Lock()
	defer w.segMu.Unlock()
	return slices.Clone(w.segs), nil
}

func (w *segWorld) routed() []string {
	w.segMu.Lock()
	defer w.segMu.Unlock()
	return slices.Clone(w.segs)
}

// fakeFlags is a feature-flag system holding each flag's percent; a flag's saved state is
// its percent.
type fakeFlags struct {
	mu      sync.Mutex
	percent map[string]int
	calls   []string // "read F", "set F 20", "restore F 10"
	setErr  func(call int) error
}

func newFakeFlags(percents map[string]int) *fakeFlags { return &fakeFlags{percent: percents} }

func (f *fakeFlags) ReadFlag(_ context.Context, flag string) (int, json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "read "+flag)
	p, ok := f.percent[flag]
	if !ok {
		return 0, nil, fmt.Errorf("no flag %s", flag)
	}
	saved, _ := json.Marshal(map[string]int{"percent": p})
	return p, saved, nil
}

func (f *fakeFlags) SetFlagPercent(_ context.Context, flag string, percent int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("set %s %d", flag, percent))
	if f.setErr != nil {
		if err := f.setErr(len(f.calls)); err != nil {
			return err
		}
	}
	f.percent[flag] = percent
	return nil
}

func (f *fakeFlags) RestoreFlag(_ context.Context, flag string, saved json.RawMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s struct{ Percent int }
	if err := json.Unmarshal(saved, &s); err != nil {
		return err
	}
	f.calls = append(f.calls, fmt.Sprintf("restore %s %d", flag, s.Percent))
	f.percent[flag] = s.Percent
	return nil
}

func (f *fakeFlags) get(flag string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.percent[flag]
}

func (f *fakeFlags) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// strategySteps: the employees segment at 0%, the flag at 20% watched for 2 minutes, then
// 10% and 50%.
const strategySteps = `  - segment: {name: employees, match: {header: {name: X-Employee, value: "true"}}}
  - setFlag: {flag: new-dashboard, percent: 20}
    analyze: 2m
  - setWeight: 10
    analyze: 2m
  - setWeight: 50
    analyze: 2m
`

func strategySpec(t *testing.T, steps, extra string) *spec.Rollout {
	t.Helper()
	text := strings.NewReplacer("INCONCLUSIVE", "hold", "LIMIT", "0", "STEPS", steps).Replace(specYAML) +
		"flags: {flagd: {file: /etc/flagd/flags.json}}\n" + extra
	rollout, err := spec.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("test spec: %v", err)
	}
	return rollout
}

// before reports whether the first event of type a comes before the first of type b.
func before(events []engine.Event, a, b func(engine.Event) bool) bool {
	ia, ib := -1, -1
	for i, ev := range events {
		if ia < 0 && a(ev) {
			ia = i
		}
		if ib < 0 && b(ev) {
			ib = i
		}
	}
	return ia >= 0 && ib >= 0 && ia < ib
}

func is(typ engine.EventType) func(engine.Event) bool {
	return func(ev engine.Event) bool { return ev.Type == typ }
}

func segmentsSet(names ...string) func(engine.Event) bool {
	return func(ev engine.Event) bool {
		return ev.Type == engine.EventSegmentsSet && slices.Equal(ev.Segments, names) || ev.Type == engine.EventSegmentsSet && len(names) == 0 && len(ev.Segments) == 0
	}
}

func stepStarted(i int) func(engine.Event) bool {
	return func(ev engine.Event) bool { return ev.Type == engine.EventStepStarted && ev.Step == i }
}

// checkFold: the journal (after the events of earlier runs it resumed) folds to the live
// state's segments and flags, as a replay or a resume would see them.
func checkFold(t *testing.T, r *running, earlier ...engine.Event) {
	t.Helper()
	live := r.eng.Snapshot()
	rec := &engine.Recording{Header: engine.Header{Spec: live.Spec}, Events: append(slices.Clone(earlier), r.journal.all()...)}
	folded := rec.Fold()
	if !reflect.DeepEqual(folded.Segments, live.Segments) || !reflect.DeepEqual(folded.Flags, live.Flags) || folded.Phase != live.Phase {
		t.Errorf("the journal folds to segments %q, flags %+v, %s; the engine has %q, %+v, %s",
			folded.Segments, folded.Flags, folded.Phase, live.Segments, live.Flags, live.Phase)
	}
}

func TestSegmentAndFlagStepsThenPromotion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSegWorld()
		flags := newFakeFlags(map[string]int{"new-dashboard": 10})
		spec := strategySpec(t, strategySteps, "")
		r := start(t, spec, w.world, engine.Config{Router: w, Flags: flags})
		st := r.wait(time.Hour, "the flag step's analysis", func(s engine.State) bool { return s.Step == 1 && !s.AnalysisStartedAt.IsZero() })
		if got := w.routed(); !slices.Equal(got, []string{"employees"}) || w.current() != 0 {
			t.Errorf("at the flag step the provider routes %q at %d%%, want employees at 0%%", got, w.current())
		}
		if st.Flags[0].Percent != 20 || st.Flags[0].Original != 10 || !st.Flags[0].Read || flags.get("new-dashboard") != 20 {
			t.Errorf("flag state %+v, system at %d%%", st.Flags[0], flags.get("new-dashboard"))
		}
		if out, err := r.finish(time.Hour); out != engine.OutcomePromoted || err != nil {
			t.Fatalf("outcome %s, %v", out, err)
		}
		events := r.journal.all()
		for _, o := range []struct {
			what string
			a, b func(engine.Event) bool
		}{
			{"the segment routed before its step passes", segmentsSet("employees"), is(engine.EventStepPassed)},
			{"the flag read before it is set", is(engine.EventFlagRead), is(engine.EventFlagSet)},
			{"the flag set before step 3 starts", is(engine.EventFlagSet), stepStarted(2)},
			{"the segment removed at promotion", is(engine.EventPromoteStarted), segmentsSet()},
			{"the segment removed before promoted", segmentsSet(), is(engine.EventPromoted)},
		} {
			if !before(events, o.a, o.b) {
				t.Errorf("%s: events %v", o.what, types(events))
			}
		}
		if got := w.routed(); len(got) != 0 {
			t.Errorf("after promotion the provider routes segments %q", got)
		}
		if p := flags.get("new-dashboard"); p != 20 {
			t.Errorf("promotion left the flag at %d%%, want its last value 20%%", p)
		}
		if got := flags.log(); slices.ContainsFunc(got, func(c string) bool { return strings.HasPrefix(c, "restore") }) {
			t.Errorf("promotion restored the flag: %q", got)
		}
		checkFold(t, r)
	})
}

func TestRollbackRemovesSegmentsAndRestoresFlags(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSegWorld()
		w.canary = func(weight int) (float64, float64) {
			if weight >= 10 {
				return 100, 0.4 // the critical error check fails at 10%
			}
			return 100, 0
		}
		flags := newFakeFlags(map[string]int{"new-dashboard": 10})
		r := start(t, strategySpec(t, strategySteps, ""), w.world, engine.Config{Router: w, Flags: flags})
		if out, err := r.finish(time.Hour); out != engine.OutcomeRolledBack || err != nil {
			t.Fatalf("outcome %s, %v", out, err)
		}
		events := r.journal.all()
		if !before(events, is(engine.EventRollbackStarted), segmentsSet()) || !before(events, segmentsSet(), is(engine.EventRolledBack)) ||
			!before(events, is(engine.EventFlagRestored), is(engine.EventRolledBack)) {
			t.Errorf("the rollback did not remove the segment and restore the flag before it ended: %v", types(events))
		}
		if got := w.routed(); len(got) != 0 || w.current() != 0 {
			t.Errorf("after the rollback the provider routes %q at %d%%", got, w.current())
		}
		if p := flags.get("new-dashboard"); p != 10 {
			t.Errorf("the flag is at %d%% after the rollback, want it restored to 10%%", p)
		}
		if want := []string{"read new-dashboard", "set new-dashboard 20", "read new-dashboard", "restore new-dashboard 10", "read new-dashboard"}; !slices.Equal(flags.log(), want) {
			t.Errorf("flag calls %q, want %q", flags.log(), want)
		}
		checkFold(t, r)
	})
}

// TestFlagAndSegmentFailuresHold: a flag system or a provider that keeps failing holds the
// rollout as a failing weight change does; resuming tries again.
func TestFlagAndSegmentFailuresHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSegWorld()
		flags := newFakeFlags(map[string]int{"new-dashboard": 10})
		down := true
		flags.setErr = func(int) error {
			if down {
				return errors.New("503 Service Unavailable")
			}
			return nil
		}
		r := start(t, strategySpec(t, strategySteps, ""), w.world, engine.Config{Router: w, Flags: flags})
		st := r.wait(time.Hour, "a hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
		if st.Hold != engine.HoldFlag || !strings.Contains(st.HoldReason, "feature-flag system failed 5 times: could not set flag new-dashboard to 20% (503 Service Unavailable)") {
			t.Errorf("hold %s: %q", st.Hold, st.HoldReason)
		}
		if n := count(r.journal.all(), engine.EventFlagFailed); n != 5 {
			t.Errorf("%d flag_failed events before the hold, want 5", n)
		}
		time.Sleep(time.Hour)
		if n := count(r.journal.all(), engine.EventFlagFailed); n != 5 {
			t.Errorf("a hold kept trying: %d failures", n)
		}
		flags.mu.Lock()
		down = false
		flags.mu.Unlock()
		if err := r.do(engine.CommandResume, "alice", 1); err != nil {
			t.Fatal(err)
		}
		if out, _ := r.finish(time.Hour); out != engine.OutcomePromoted {
			t.Errorf("after resume: %s", out)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		w := newSegWorld()
		w.segErr = func(call int) error {
			if call <= 5 {
				return errors.New("virtualservice shop/checkout: the API server rejected the change as invalid")
			}
			return nil
		}
		r := start(t, strategySpec(t, strategySteps, ""), w.world, engine.Config{Router: w, Flags: newFakeFlags(map[string]int{"new-dashboard": 0})})
		st := r.wait(time.Hour, "a hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
		if st.Hold != engine.HoldRouter || !strings.Contains(st.HoldReason, "traffic provider failed 5 times routing segments employees") {
			t.Errorf("hold %s: %q", st.Hold, st.HoldReason)
		}
		if err := r.do(engine.CommandResume, "alice", 0); err != nil {
			t.Fatal(err)
		}
		if out, _ := r.finish(time.Hour); out != engine.OutcomePromoted {
			t.Errorf("after resume: %s", out)
		}
	})
}

// TestResumeReconcilesSegmentsAndFlags: a restarted perch reads the segments and flags back;
// what the provider lost is set again, and a flag changed by hand holds the rollout.
func TestResumeReconcilesSegmentsAndFlags(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := strategySpec(t, strategySteps, "")
		w := newSegWorld()
		flags := newFakeFlags(map[string]int{"new-dashboard": 10})
		r := start(t, spec, w.world, engine.Config{Router: w, Flags: flags})
		r.wait(time.Hour, "step 3's analysis", func(s engine.State) bool { return s.Step == 2 && !s.AnalysisStartedAt.IsZero() })
		r.cancel()
		r.finish(time.Minute)
		// The provider restarted without the segments (a proxy inside perch comes back empty).
		w.segMu.Lock()
		w.segs = []string{}
		w.segMu.Unlock()
		rec := &engine.Recording{Header: engine.Header{Spec: spec}, Events: r.journal.all()}
		r2 := start(t, spec, w.world, engine.Config{Router: w, Flags: flags, Resume: rec})
		if out, err := r2.finish(time.Hour); out != engine.OutcomePromoted || err != nil {
			t.Fatalf("resumed: %s, %v", out, err)
		}
		events := r2.journal.all()
		if !before(events, is(engine.EventReconciled), segmentsSet()) || !before(events, segmentsSet(), segmentsSet("employees")) {
			t.Errorf("the resume did not read the lost segments and route them again: %v", types(events))
		}
		if ev, ok := first(events, engine.EventFlagSet); !ok || ev.Reason != "on resume: flag new-dashboard is at 20%, the journal recorded 20%" {
			t.Errorf("first flag_set after resume %+v", ev)
		}
		if slices.ContainsFunc(flags.log()[3:], func(c string) bool { return strings.HasPrefix(c, "set") }) {
			t.Errorf("the resume set a flag that was as it should be: %q", flags.log())
		}
		checkFold(t, r2, rec.Events...)
	})
	synctest.Test(t, func(t *testing.T) {
		spec := strategySpec(t, strategySteps, "")
		w := newSegWorld()
		flags := newFakeFlags(map[string]int{"new-dashboard": 10})
		r := start(t, spec, w.world, engine.Config{Router: w, Flags: flags})
		r.wait(time.Hour, "step 3's analysis", func(s engine.State) bool { return s.Step == 2 && !s.AnalysisStartedAt.IsZero() })
		r.cancel()
		r.finish(time.Minute)
		flags.mu.Lock()
		flags.percent["new-dashboard"] = 70 // someone changed it by hand
		flags.mu.Unlock()
		rec := &engine.Recording{Header: engine.Header{Spec: spec}, Events: r.journal.all()}
		r2 := start(t, spec, w.world, engine.Config{Router: w, Flags: flags, Resume: rec})
		st := r2.wait(time.Minute, "a hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
		if st.Hold != engine.HoldFlag || st.HoldReason != "flag new-dashboard is at 70% but perch last set 20%: it was changed while perch was down; resume to set 20% again, or roll back" {
			t.Errorf("hold %s: %q", st.Hold, st.HoldReason)
		}
		time.Sleep(time.Hour)
		if p := flags.get("new-dashboard"); p != 70 {
			t.Fatalf("the hold moved the flag to %d%%", p)
		}
		if err := r2.do(engine.CommandRollback, "alice", 2); err != nil {
			t.Fatal(err)
		}
		if out, _ := r2.finish(time.Hour); out != engine.OutcomeRolledBack || flags.get("new-dashboard") != 10 {
			t.Errorf("after rollback: %s, flag at %d%%; want it restored to 10%%", out, flags.get("new-dashboard"))
		}
	})
}

// TestResumeStrategiesFromEveryCut: for every prefix of a rollout's journal, a resumed engine
// ends as the uninterrupted one did, with no segment left routed and the flag where the
// outcome leaves it.
func TestResumeStrategiesFromEveryCut(t *testing.T) {
	for _, sc := range []struct {
		name     string
		bad      bool
		want     engine.Outcome
		wantFlag int
	}{{"promoted", false, engine.OutcomePromoted, 20}, {"rolled back", true, engine.OutcomeRolledBack, 10}} {
		t.Run(sc.name, func(t *testing.T) {
			spec := strategySpec(t, strategySteps, "")
			canary := func(weight int) (float64, float64) {
				if sc.bad && weight >= 10 {
					return 100, 0.4
				}
				return 100, 0
			}
			var recorded []engine.Event
			synctest.Test(t, func(t *testing.T) {
				w := newSegWorld()
				w.canary = canary
				r := start(t, spec, w.world, engine.Config{Router: w, Flags: newFakeFlags(map[string]int{"new-dashboard": 10})})
				if out, _ := r.finish(time.Hour); out != sc.want {
					t.Fatalf("uninterrupted: %s", out)
				}
				recorded = r.journal.all()
			})
			for cut := 1; cut < len(recorded); cut++ {
				prefix := recorded[:cut]
				synctest.Test(t, func(t *testing.T) {
					time.Sleep(time.Until(prefix[cut-1].Time) + 7*time.Second)
					w := newSegWorld()
					w.canary = canary
					flag := 10
					for _, ev := range prefix {
						switch ev.Type {
						case engine.EventWeightSet:
							w.weight = *ev.Weight
						case engine.EventSegmentsSet:
							w.segs = slices.Clone(ev.Segments)
						case engine.EventFlagSet, engine.EventFlagRestored:
							flag = *ev.Percent
						}
					}
					if w.segs == nil {
						w.segs = []string{}
					}
					flags := newFakeFlags(map[string]int{"new-dashboard": flag})
					rec := &engine.Recording{Header: engine.Header{Spec: spec}, Events: prefix}
					r := start(t, spec, w.world, engine.Config{Router: w, Flags: flags, Resume: rec})
					out, err := r.finish(time.Hour)
					if out != sc.want || err != nil {
						t.Fatalf("after %d %s: resumed run %s, %v; want %s", cut, prefix[cut-1].Type, out, err, sc.want)
					}
					if got := w.routed(); len(got) != 0 || flags.get("new-dashboard") != sc.wantFlag {
						t.Errorf("after %d %s: ended with segments %q and the flag at %d%%, want none and %d%%", cut, prefix[cut-1].Type, got, flags.get("new-dashboard"), sc.wantFlag)
					}
				})
			}
		})
	}
}

// windowed is a Berlin workday window. synctest's clock starts on Saturday 1 January 2000,
// midnight UTC, outside it; the window next opens Monday 3 January at 09:00 CET (08:00 UTC).
const windowed = `schedule:
  timezone: Europe/Berlin
  advance: [{days: Mon-Thu, hours: "09:00-16:00"}]
`

var monday = time.Date(2000, 1, 3, 8, 0, 0, 0, time.UTC)

func TestOutsideTheWindowAStepHoldsAndKeepsLooking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		time.Sleep(time.Until(monday.Add(-time.Hour))) // an hour before the window opens
		r := start(t, strategySpec(t, threeSteps, windowed), w, engine.Config{Flags: newFakeFlags(nil)})
		st := r.wait(time.Hour, "a hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
		if st.Hold != engine.HoldWindow || st.HoldReason != "outside release window; next window Mon 09:00 Europe/Berlin" || !st.HoldUntil.Equal(monday) || st.Step != 0 {
			t.Fatalf("hold %s at step %d until %s: %q", st.Hold, st.Step+1, st.HoldUntil, st.HoldReason)
		}
		looks := st.Looks
		time.Sleep(30 * time.Minute)
		if st := r.eng.Snapshot(); st.Looks < looks+50 || st.Phase != engine.PhaseHolding || st.Step != 0 || count(r.journal.all(), engine.EventHeld) != 1 {
			t.Errorf("holding for the window: %d looks (was %d), phase %s, step %d, %d held events", st.Looks, looks, st.Phase, st.Step+1, count(r.journal.all(), engine.EventHeld))
		}
		st = r.wait(time.Hour, "step 2", func(s engine.State) bool { return s.Step == 1 })
		if ev, ok := first(r.journal.all(), engine.EventResumed); !ok || ev.Reason != "release window open" || ev.Time.Before(monday) || ev.Time.After(monday.Add(time.Second)) {
			t.Errorf("resumed %+v, want at %s", ev, monday)
		}
		if out, _ := r.finish(time.Hour); out != engine.OutcomePromoted {
			t.Errorf("outcome %s", out)
		}
	})
}

func TestOutsideTheWindowAFailureStillRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		r := start(t, strategySpec(t, threeSteps, windowed), w, engine.Config{Flags: newFakeFlags(nil)})
		r.wait(time.Hour, "a hold", func(s engine.State) bool { return s.Hold == engine.HoldWindow })
		w.mu.Lock()
		w.canary = func(int) (float64, float64) { return 100, 0.5 }
		w.mu.Unlock()
		if out, _ := r.finish(time.Hour); out != engine.OutcomeRolledBack || w.current() != 0 {
			t.Errorf("outcome %s at %d%%, want rolled back", out, w.current())
		}
	})
}

func TestAnOperatorMayAdvanceOutsideTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		r := start(t, strategySpec(t, threeSteps, windowed), w, engine.Config{Flags: newFakeFlags(nil)})
		r.wait(time.Hour, "a hold", func(s engine.State) bool { return s.Hold == engine.HoldWindow })
		if err := r.do(engine.CommandAdvance, "alice", 0); err != nil {
			t.Fatal(err)
		}
		st := r.wait(time.Minute, "step 2", func(s engine.State) bool { return s.Step == 1 })
		ov, ok := first(r.journal.all(), engine.EventWindowOverride)
		if !ok || ov.Actor == nil || ov.Actor.Name != "alice" || ov.Reason != "outside release window; next window Mon 09:00 Europe/Berlin" {
			t.Errorf("override %+v", ov)
		}
		if got := ov.Describe(st.Spec); got != "advanced outside the release window by alice: outside release window; next window Mon 09:00 Europe/Berlin" {
			t.Errorf("Describe = %q", got)
		}
		if !before(r.journal.all(), is(engine.EventWindowOverride), is(engine.EventStepPassed)) {
			t.Errorf("events %v", types(r.journal.all()))
		}
		// The next step holds again at its end; a promotion there is an override too.
		r.wait(time.Hour, "a hold at step 2", func(s engine.State) bool { return s.Step == 1 && s.Hold == engine.HoldWindow })
		if err := r.do(engine.CommandPromote, "bob", 1); err != nil {
			t.Fatal(err)
		}
		if out, _ := r.finish(time.Hour); out != engine.OutcomePromoted {
			t.Errorf("outcome %s", out)
		}
		if n := count(r.journal.all(), engine.EventWindowOverride); n != 2 {
			t.Errorf("%d overrides journaled, want 2", n)
		}
	})
}

// TestAWindowAcrossMidnight: Friday's window from 22:00 to 02:00 lets a step advance at 01:41
// on Saturday, and holds the next at 02:22 until the next Friday.
func TestAWindowAcrossMidnight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		across := "schedule:\n  timezone: UTC\n  advance: [{days: Fri, hours: \"22:00-02:00\"}]\n"
		steps := "  - setWeight: 10\n    analyze: 40m\n  - setWeight: 50\n    analyze: 40m\n  - setWeight: 80\n    analyze: 40m\n"
		time.Sleep(time.Until(time.Date(2000, 1, 1, 1, 0, 0, 0, time.UTC))) // Saturday 01:00: inside Friday's window
		r := start(t, strategySpec(t, steps, across), w, engine.Config{Flags: newFakeFlags(nil)})
		st := r.wait(2*time.Hour, "a hold", func(s engine.State) bool { return s.Phase == engine.PhaseHolding })
		if st.Step != 1 || st.Hold != engine.HoldWindow || st.HoldReason != "outside release window; next window Fri 7 Jan 22:00 UTC" {
			t.Errorf("held at step %d (%s): %q", st.Step+1, st.Hold, st.HoldReason)
		}
		if passed, ok := first(r.journal.all(), engine.EventStepPassed); !ok || passed.Time.Hour() != 1 {
			t.Errorf("step 1 passed at %s, want after 01:00 inside the window", passed.Time)
		}
	})
}

// TestStrategyEventsRoundTripAJournal: a rollout with segments, flags and a release window
// written to a real journal reads back, every line accepted, to the same state.
func TestStrategyEventsRoundTripAJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	rollout := strategySpec(t, strategySteps, windowed)
	var live engine.State
	synctest.Test(t, func(t *testing.T) {
		j, err := engine.CreateJournal(path, rollout, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		w := newSegWorld()
		time.Sleep(time.Until(monday.Add(-time.Hour)))
		r := start(t, rollout, w.world, engine.Config{Router: w, Flags: newFakeFlags(map[string]int{"new-dashboard": 10}), Journal: j})
		r.wait(time.Hour, "a hold", func(s engine.State) bool { return s.Hold == engine.HoldWindow })
		if err := r.do(engine.CommandAdvance, "alice", r.eng.Snapshot().Step); err != nil {
			t.Fatal(err)
		}
		w.mu.Lock()
		w.canary = func(int) (float64, float64) { return 100, 0.5 }
		w.mu.Unlock()
		if out, _ := r.finish(time.Hour); out != engine.OutcomeRolledBack {
			t.Fatalf("outcome %s", out)
		}
		live = r.eng.Snapshot()
	})
	rec, err := engine.LoadRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[engine.EventType]bool{}
	for _, ev := range rec.Events {
		seen[ev.Type] = true
	}
	for _, typ := range []engine.EventType{engine.EventSegmentsSet, engine.EventFlagRead, engine.EventFlagSet, engine.EventFlagRestored, engine.EventWindowOverride} {
		if !seen[typ] {
			t.Errorf("the journal holds no %s", typ)
		}
	}
	folded := rec.Fold()
	if !reflect.DeepEqual(folded.Segments, live.Segments) || !reflect.DeepEqual(folded.Flags, live.Flags) || folded.Phase != live.Phase {
		t.Errorf("read back: segments %q, flags %+v, %s; live %q, %+v, %s", folded.Segments, folded.Flags, folded.Phase, live.Segments, live.Flags, live.Phase)
	}
}
