package tui

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/engine/spec"
)

// fleetChildEnv makes the test binary run the overview on a fleet of real engines instead of
// the tests.
const fleetChildEnv = "PERCH_TUI_E2E_FLEET"

// engineFleet is a fleet of real engines in one process, as the tests need it: rollouts that
// run, and rollouts that never started (waiting for others) with a fixed status.
type engineFleet struct {
	engines map[string]*engine.Engine
	fixed   []fleet.Status
	done    chan struct{} // closed when the fleet has ended
}

func (f *engineFleet) statuses() []fleet.Status {
	out := make([]fleet.Status, 0, len(f.engines)+len(f.fixed))
	for name, e := range f.engines {
		out = append(out, fleet.Status{Name: name, State: e.Snapshot()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return append(out, f.fixed...)
}

// Subscribe sends the statuses every 100 ms, the newest winning, until the fleet ends.
func (f *engineFleet) Subscribe() (<-chan []fleet.Status, func()) {
	out := make(chan []fleet.Status, 1)
	stop := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(out)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-out:
			default:
			}
			out <- f.statuses()
			select {
			case <-stop:
				return
			case <-f.done:
				return
			case <-tick.C:
			}
		}
	}()
	return out, func() { once.Do(func() { close(stop) }) }
}

func (f *engineFleet) Rollout(name string) (fleet.Rollout, bool) {
	e, ok := f.engines[name]
	return e, ok
}

// runFleetChild runs three rollouts of testdata/e2e.yaml on real engines, and a fourth that
// waits for one of them, shows the overview as a local run would, and prints what the
// operator chose and the phase each engine ended in.
func runFleetChild() int {
	f := &engineFleet{engines: map[string]*engine.Engine{}, done: make(chan struct{}),
		fixed: []fleet.Status{{Name: "checkout-ap", Waiting: []string{"checkout-eu"}, DependsOn: []string{"checkout-eu"}}}}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for _, name := range []string{"checkout-us", "checkout-eu", "search-api"} {
		rollout, err := spec.Load("testdata/e2e.yaml")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		rollout.Name = name
		eng, err := engine.New(engine.Config{Spec: rollout, Router: &enginetest.Router{}, Source: memSource{}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		f.engines[name] = eng
		wg.Go(func() { _, _ = eng.Run(ctx) })
	}
	choice, err := RunOverview(ctx, OverviewOptions{Fleet: f, Mode: ModeLocal,
		Actor: engine.Actor{Name: "e2e", Role: engine.RoleOperator, Source: "tui"}})
	if err != nil {
		fmt.Println("child error:", err)
		return 3
	}
	names := map[Choice]string{ChoiceNone: "none", ChoiceDetach: "detach", ChoiceStop: "stop"}
	fmt.Println("child choice:", names[choice])
	stop()
	wg.Wait()
	close(f.done)
	for _, s := range f.statuses()[:len(f.engines)] {
		fmt.Printf("child phase %s: %s\n", s.Name, s.State.Phase)
	}
	return 0
}

// TestRealTerminalOverview drives the overview of a fleet of real engines in tmux: the filter,
// opening a rollout's dashboard and coming back, and a bulk pause confirmed once, after which
// the engines marked are paused and the other still runs.
func TestRealTerminalOverview(t *testing.T) {
	s := startTmux(t, 160, 30, fleetChildEnv+"=1")
	s.WaitFor("start", "perch fleet", "checkout-us", "checkout-eu", "search-api", "checkout-ap", "WAITING", "RUNNING", "after checkout-eu")

	s.Key("/")
	for _, k := range []string{"c", "h", "e", "c", "k"} {
		s.Key(k)
	}
	s.WaitFor("filter", `filter "check": 3 shown`)
	s.WaitGone("filtered out", "search-api")
	s.Key("Enter")

	s.Key("Enter") // the first row: checkout-eu
	s.WaitFor("dashboard", "checkout-eu", "CHECKS", "STEPS", "q overview")
	s.Key("Escape")
	s.WaitFor("back", "perch fleet", `filter "check": 3 shown`)
	s.Key("Escape")
	s.WaitFor("filter cleared", "search-api")

	s.Key("Space") // checkout-eu
	s.Key("Space") // checkout-us
	s.WaitFor("marks", "2 marked")
	s.Key("p")
	s.WaitFor("confirm", "Pause 2 rollouts?", "Pause: checkout-eu, checkout-us.", "y   pause 2")
	s.Key("y")
	screen := s.WaitFor("paused", "✔ pause accepted by 2 of 2", "2 waiting for an operator", "PAUSED", "paused by e2e")
	t.Logf("the overview after the bulk pause:\n%s", screen)

	s.Key("q")
	s.WaitFor("quit asks", "Leave the view?", "stop every engine")
	s.Key("s")
	s.WaitForHistory("last words", "child choice: stop", "child phase checkout-eu: paused", "child phase checkout-us: paused", "child phase search-api: running")
}
