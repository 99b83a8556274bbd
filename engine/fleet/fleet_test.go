package fleet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/metrics"
)

// rolloutFile is a rollout named name, one step of 50% analysed for a minute; deps is its
// dependsOn ("" for none).
func rolloutFile(name, deps string) string {
	s := "name: " + name + "\n"
	if deps != "" {
		s += "dependsOn: [" + deps + "]\n"
	}
	return s + `traffic:
  proxy: {listen: "127.0.0.1:8080", stable: "http://127.0.0.1:9001", canary: "http://127.0.0.1:9002"}
metrics:
  prometheus: {address: "http://127.0.0.1:9090"}
analysis: {interval: 10s, judge: threshold}
checks:
  - name: latency
    canary: lat{version="canary"}
    baseline: lat{version="stable"}
    direction: lower_is_better
    maxDeviationPercent: 10
steps:
  - setWeight: 50
    analyze: 1m
`
}

// memSource answers every query with one value per step: the canary's latency is 0.25 like
// the baseline's, or 10 when the canary is bad (asked at each query).
type memSource struct{ bad func() bool }

func (s memSource) Samples(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	v := 0.25
	if s.bad() && strings.Contains(q.Expr, "canary") {
		v = 10
	}
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: v})
	}
	if len(out) == 0 {
		return nil, metrics.ErrNoData
	}
	return out, nil
}

// memJournal keeps the events in memory.
type memJournal struct {
	mu     sync.Mutex
	events []engine.Event
}

func (j *memJournal) Append(ev engine.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, ev)
	return nil
}

// harness runs a fleet whose rollouts run in memory: those named in bad fail their checks.
type harness struct {
	t      *testing.T
	dir    string
	bad    map[string]bool // guarded by mu
	linger bool            // engines stay after a rollback, for a retry
	fleet  *fleet.Fleet

	mu       sync.Mutex
	logs     []string
	starts   []string                  // the rollouts run, in order
	journals map[string]*memJournal    // by rollout
	seen     map[string][]fleet.Status // what the fleet said when each rollout started
	ended    map[string]engine.Outcome // how each run ended
	done     chan error
	cancel   context.CancelFunc
	engines  map[string]*engine.Engine
	subsLast []fleet.Status
}

func newHarness(t *testing.T, bad ...string) *harness {
	h := &harness{t: t, dir: t.TempDir(), bad: map[string]bool{}, journals: map[string]*memJournal{},
		seen: map[string][]fleet.Status{}, ended: map[string]engine.Outcome{}, engines: map[string]*engine.Engine{}}
	for _, b := range bad {
		h.bad[b] = true
	}
	return h
}

// setBad makes the named rollout's canary bad or good from its next look.
func (h *harness) setBad(name string, bad bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bad[name] = bad
}

func (h *harness) write(file, text string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, file), []byte(text), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) run(ctx context.Context, s fleet.Start) (engine.Outcome, error) {
	j := &memJournal{}
	name := s.Spec.Name
	bad := func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.bad[name]
	}
	eng, err := engine.New(engine.Config{Spec: s.Spec, Router: &enginetest.Router{}, Source: memSource{bad: bad}, Journal: j, Linger: h.linger})
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	h.starts = append(h.starts, s.Spec.Name)
	h.journals[s.Spec.Name] = j
	h.engines[s.Spec.Name] = eng
	h.seen[s.Spec.Name] = h.fleet.Statuses()
	h.mu.Unlock()
	s.Started(eng, "mem:"+s.Spec.Name)
	out, err := eng.Run(ctx)
	h.mu.Lock()
	h.ended[s.Spec.Name] = out
	h.mu.Unlock()
	return out, err
}

// start runs the fleet over h.dir (or files, if given) until the test ends.
func (h *harness) start(files ...string) {
	h.t.Helper()
	cfg := fleet.Config{Run: h.run, Logf: func(format string, args ...any) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.logs = append(h.logs, fmt.Sprintf(format, args...))
	}}
	if len(files) == 0 {
		cfg.Dir = h.dir
	}
	for _, f := range files {
		cfg.Files = append(cfg.Files, filepath.Join(h.dir, f))
	}
	f, err := fleet.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.fleet = f
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- f.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		<-h.done
	})
}

// status is the named rollout's status; it fails the test if there is none.
func (h *harness) status(name string) fleet.Status {
	h.t.Helper()
	for _, s := range h.fleet.Statuses() {
		if s.Name == name {
			return s
		}
	}
	h.t.Fatalf("no status for %s in %+v", name, h.fleet.Statuses())
	return fleet.Status{}
}

func (h *harness) logged(part string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.logs {
		if strings.Contains(l, part) {
			return true
		}
	}
	return false
}

func (h *harness) started() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.starts)
}

func TestWaveStartsAfterPromotion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.write("eu.yaml", rolloutFile("checkout-eu", ""))
		h.write("us.yaml", rolloutFile("checkout-us", "checkout-eu"))
		h.start()
		synctest.Wait()
		if got := h.started(); !slices.Equal(got, []string{"checkout-eu"}) {
			t.Fatalf("started %q, want only checkout-eu", got)
		}
		us := h.status("checkout-us")
		if !slices.Equal(us.Waiting, []string{"checkout-eu"}) || us.State.Spec != nil || !slices.Equal(us.DependsOn, []string{"checkout-eu"}) {
			t.Errorf("checkout-us: %+v, want waiting for checkout-eu", us)
		}
		if _, ok := h.fleet.Rollout("checkout-us"); ok {
			t.Error("Rollout(checkout-us) found a rollout that has not started")
		}
		if _, ok := h.fleet.Rollout("checkout-eu"); !ok {
			t.Error("Rollout(checkout-eu) not found")
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if got := h.started(); !slices.Equal(got, []string{"checkout-eu", "checkout-us"}) {
			t.Fatalf("started %q, want checkout-eu then checkout-us", got)
		}
		for _, s := range h.seen["checkout-us"] {
			if s.Name == "checkout-eu" && s.State.Phase != engine.PhasePromoted {
				t.Errorf("checkout-us started while checkout-eu was %s", s.State.Phase)
			}
		}
		for _, name := range []string{"checkout-eu", "checkout-us"} {
			if s := h.status(name); s.State.Phase != engine.PhasePromoted || s.Outcome != engine.OutcomePromoted || s.Journal != "mem:"+name {
				t.Errorf("%s: phase %s outcome %q journal %q, want promoted in mem:%s", name, s.State.Phase, s.Outcome, s.Journal, name)
			}
		}
	})
}

func TestWaveCancelledAfterRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "checkout-eu")
		h.write("eu.yaml", rolloutFile("checkout-eu", ""))
		h.write("us.yaml", rolloutFile("checkout-us", "checkout-eu"))
		h.write("ap.yaml", rolloutFile("checkout-ap", "checkout-us"))
		h.start("eu.yaml", "us.yaml", "ap.yaml")
		select {
		case err := <-h.done: // a fleet of files ends once nothing can run
			h.done <- err
		case <-time.After(time.Hour):
			t.Fatal("the fleet did not end")
		}
		if got := h.started(); !slices.Equal(got, []string{"checkout-eu"}) {
			t.Fatalf("started %q, want only checkout-eu", got)
		}
		if s := h.status("checkout-eu"); s.State.Phase != engine.PhaseRolledBack {
			t.Fatalf("checkout-eu is %s, want rolled back", s.State.Phase)
		}
		us, ap := h.status("checkout-us"), h.status("checkout-ap")
		if !strings.Contains(us.Cancelled, "checkout-eu rolled back") || us.State.Spec != nil || len(us.Waiting) != 0 {
			t.Errorf("checkout-us: %+v, want cancelled because checkout-eu rolled back", us)
		}
		if !strings.Contains(ap.Cancelled, "checkout-us was cancelled") {
			t.Errorf("checkout-ap: cancelled %q, want because checkout-us was", ap.Cancelled)
		}
		if !h.logged("checkout-us: cancelled: checkout-eu rolled back; it never started and nothing was journaled") {
			t.Errorf("log does not say checkout-us never started: %q", h.logs)
		}
	})
}

func TestBadFileWhileOthersRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.write("a.yaml", rolloutFile("checkout-a", ""))
		h.start()
		synctest.Wait()
		states, stop := h.fleet.Subscribe()
		defer stop()
		h.write("bad.yaml", strings.Replace(rolloutFile("checkout-bad", ""), "setWeight: 50", "setWeight: 150", 1))
		h.write("dup.yaml", rolloutFile("checkout-a", ""))
		h.write("loop1.yaml", rolloutFile("loop-1", "loop-2"))
		h.write("loop2.yaml", rolloutFile("loop-2", "loop-1"))
		h.write("late.yaml", rolloutFile("checkout-late", "checkout-later"))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		for file, want := range map[string]string{
			"bad.yaml":   "bad.yaml:14:16: steps[0].setWeight: weight 150 is outside 1..100",
			"dup.yaml":   `the name "checkout-a" is taken by ` + filepath.Join(h.dir, "a.yaml"),
			"loop1.yaml": "dependsOn cycle: loop-1 → loop-2 → loop-1",
			"late.yaml":  `dependsOn[0]: no rollout is named "checkout-later"`,
		} {
			var got *fleet.Status
			for _, s := range <-states {
				if s.File == filepath.Join(h.dir, file) {
					got = &s
				}
			}
			if got == nil || !strings.Contains(got.Invalid, want) {
				t.Errorf("%s: %+v, want invalid: %s", file, got, want)
			}
			if !h.logged(want) {
				t.Errorf("log does not say %q", want)
			}
			h.write("unblock.yaml", "") // any change publishes again
		}
		if s := h.status("checkout-bad"); s.Invalid == "" {
			t.Errorf("checkout-bad: %+v, want invalid", s)
		}
		// The one whose dependency was missing starts once it appears.
		h.write("later.yaml", rolloutFile("checkout-later", ""))
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		for _, name := range []string{"checkout-a", "checkout-later", "checkout-late"} {
			if s := h.status(name); s.State.Phase != engine.PhasePromoted || s.Invalid != "" {
				t.Errorf("%s: %s %q, want promoted", name, s.State.Phase, s.Invalid)
			}
		}
		if got := h.started(); !slices.Equal(got, []string{"checkout-a", "checkout-later", "checkout-late"}) {
			t.Errorf("started %q", got)
		}
	})
}

func TestRemovedFileKeepsRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.write("a.yaml", rolloutFile("checkout-a", ""))
		h.write("b.yaml", rolloutFile("checkout-b", "checkout-a"))
		h.start()
		synctest.Wait()
		if err := os.Remove(filepath.Join(h.dir, "a.yaml")); err != nil {
			t.Fatal(err)
		}
		h.write("b.yaml", rolloutFile("checkout-b", ""))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if !h.logged("checkout-a: " + filepath.Join(h.dir, "a.yaml") + " was removed; the rollout carries on to its end") {
			t.Errorf("log does not say a.yaml was removed: %q", h.logs)
		}
		if !h.logged("checkout-b: " + filepath.Join(h.dir, "b.yaml") + " changed") {
			t.Errorf("log does not say b.yaml changed: %q", h.logs)
		}
		if s := h.status("checkout-b"); !slices.Equal(s.DependsOn, []string{"checkout-a"}) {
			t.Errorf("checkout-b depends on %q after its file changed, want as first read", s.DependsOn)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		for _, name := range []string{"checkout-a", "checkout-b"} {
			if s := h.status(name); s.State.Phase != engine.PhasePromoted {
				t.Errorf("%s: %s, want promoted", name, s.State.Phase)
			}
		}
	})
}

func TestSubscribeAndRollout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.write("a.yaml", rolloutFile("checkout-a", ""))
		h.start("a.yaml")
		synctest.Wait()
		states, stop := h.fleet.Subscribe()
		defer stop()
		r, ok := h.fleet.Rollout("checkout-a")
		if !ok {
			t.Fatal("Rollout(checkout-a) not found")
		}
		if _, ok := h.fleet.Rollout("checkout-b"); ok {
			t.Error("Rollout(checkout-b) found")
		}
		if err := r.Do(context.Background(), engine.Command{Kind: engine.CommandPause, Actor: engine.Actor{Name: "ann", Role: engine.RoleOperator}}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		var last []fleet.Status
		select {
		case last = <-states:
		default:
			t.Fatal("no statuses after a pause")
		}
		if len(last) != 1 || last[0].State.Phase != engine.PhasePaused {
			t.Fatalf("statuses %+v, want checkout-a paused", last)
		}
		if err := r.Do(context.Background(), engine.Command{Kind: engine.CommandPromote, Actor: engine.Actor{Name: "ann", Role: engine.RoleOperator}, Step: 0}); err != nil {
			t.Fatal(err)
		}
		if err := <-h.done; err != nil {
			t.Fatal(err)
		}
		h.done <- nil
		for range states { // closed once the fleet has ended
		}
		if s := h.status("checkout-a"); s.Outcome != engine.OutcomePromoted {
			t.Errorf("outcome %q, want promoted", s.Outcome)
		}
		if after, _ := h.fleet.Subscribe(); after != nil {
			if _, open := <-after; open {
				t.Error("Subscribe after the fleet ended gave an open channel")
			}
		}
	})
}

func TestStopBeforeWaveStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.write("a.yaml", rolloutFile("checkout-a", ""))
		h.write("b.yaml", rolloutFile("checkout-b", "checkout-a"))
		h.start()
		synctest.Wait()
		h.cancel()
		if err := <-h.done; err != nil {
			t.Fatal(err)
		}
		h.done <- nil
		if got := h.started(); !slices.Equal(got, []string{"checkout-a"}) {
			t.Errorf("started %q", got)
		}
		if h.ended["checkout-a"] != engine.OutcomeStopped {
			t.Errorf("checkout-a ended %q, want stopped", h.ended["checkout-a"])
		}
		if s := h.status("checkout-b"); s.Cancelled != "" || !slices.Equal(s.Waiting, []string{"checkout-a"}) {
			t.Errorf("checkout-b: %+v, want still waiting", s)
		}
		if !h.logged("checkout-b: never started (perch stopped while it waited for checkout-a); nothing was journaled") {
			t.Errorf("log %q", h.logs)
		}
	})
}

func TestOversizedFileRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.write("a.yaml", rolloutFile("checkout-a", "")+"# "+strings.Repeat("x", 1<<20)+"\n")
		h.write("b.yaml", rolloutFile("checkout-b", ""))
		h.start()
		synctest.Wait()
		if s := h.status("a"); !strings.Contains(s.Invalid, "a rollout file may have at most 1048576") {
			t.Errorf("a.yaml: %+v, want refused for its size", s)
		}
		if got := h.started(); !slices.Equal(got, []string{"checkout-b"}) {
			t.Errorf("started %q, want checkout-b", got)
		}
	})
}

// TestWaveResumesAfterRetry: a rollback cancels the wave behind it, but the rolled-back
// rollout's engine lingers; once an operator retries it and it promotes, the cancelled
// rollouts (the whole chain) wait for it again and start in order.
func TestWaveResumesAfterRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "checkout-eu")
		h.linger = true
		h.write("eu.yaml", rolloutFile("checkout-eu", ""))
		h.write("us.yaml", rolloutFile("checkout-us", "checkout-eu"))
		h.write("ap.yaml", rolloutFile("checkout-ap", "checkout-us"))
		h.start("eu.yaml", "us.yaml", "ap.yaml")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if s := h.status("checkout-eu"); s.State.Phase != engine.PhaseRolledBack {
			t.Fatalf("checkout-eu is %s, want rolled back (lingering)", s.State.Phase)
		}
		if us, ap := h.status("checkout-us"), h.status("checkout-ap"); us.Cancelled == "" || ap.Cancelled == "" {
			t.Fatalf("after the rollback: checkout-us cancelled %q, checkout-ap cancelled %q; want both cancelled", us.Cancelled, ap.Cancelled)
		}
		h.setBad("checkout-eu", false) // fixed; the operator retries
		eng, _ := h.fleet.Rollout("checkout-eu")
		if err := eng.Do(context.Background(), engine.Command{Kind: engine.CommandRetry, Actor: engine.Actor{Name: "alice", Role: engine.RoleOperator}}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		us := h.status("checkout-us")
		if us.Cancelled != "" || !slices.Equal(us.Waiting, []string{"checkout-eu"}) {
			t.Errorf("after the retry checkout-us is %+v; want waiting for checkout-eu again", us)
		}
		if !h.logged("checkout-us: checkout-eu was retried; waiting for it again") {
			t.Errorf("log does not say the wave waits again: %q", h.logs)
		}
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		if got := h.started(); !slices.Equal(got, []string{"checkout-eu", "checkout-us", "checkout-ap"}) {
			t.Fatalf("started %q, want checkout-eu, then checkout-us and checkout-ap after the retry promoted", got)
		}
		for _, name := range []string{"checkout-eu", "checkout-us", "checkout-ap"} {
			if s := h.status(name); s.State.Phase != engine.PhasePromoted || s.Cancelled != "" {
				t.Errorf("%s: phase %s cancelled %q, want promoted", name, s.State.Phase, s.Cancelled)
			}
		}
	})
}
