package enginetest

import (
	"sort"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
)

// Fleet is a fixed set of running engines served as a fleet is (the overview and the SSH
// server read one): its statuses are the engines' snapshots by name, read every Poll. Fill
// Engines before the first Subscribe.
type Fleet struct {
	Engines map[string]*engine.Engine
	Poll    time.Duration
}

// Subscribe sends the engines' statuses, sorted by name, now and every Poll until stopped.
func (f *Fleet) Subscribe() (<-chan []fleet.Status, func()) {
	names := make([]string, 0, len(f.Engines))
	for name := range f.Engines {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make(chan []fleet.Status, 1)
	stop := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(out)
		tick := time.NewTicker(f.Poll)
		defer tick.Stop()
		for {
			list := make([]fleet.Status, len(names))
			for i, name := range names {
				list[i] = fleet.Status{Name: name, State: f.Engines[name].Snapshot()}
			}
			select { // a slow reader skips to the newest list
			case <-out:
			default:
			}
			out <- list
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return out, func() { once.Do(func() { close(stop) }) }
}

// Rollout is the engine named name.
func (f *Fleet) Rollout(name string) (fleet.Rollout, bool) {
	e, ok := f.Engines[name]
	return e, ok
}
