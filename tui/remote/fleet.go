package remote

import (
	"context"
	"sync"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
)

// scopedFleet is one session's view of a fleet: every subscription it hands out (to the list
// or to a rollout's states) ends when the session does, every command carries the session's
// identity, and watching a rollout counts the session as present there.
type scopedFleet struct {
	fleet    Fleet
	actor    engine.Actor
	presence *Presence
	id       string // the session, in presence
	mu       sync.Mutex
	ends     []func()
	done     bool
}

// track keeps end to call when the session ends; it reports false, having called it, when the
// session has already ended.
func (c *scopedFleet) track(end func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		end()
		return false
	}
	c.ends = append(c.ends, end)
	return true
}

// Subscribe passes the fleet's lists on through a channel of its own, closed when the
// subscription or the session ends, so a model's pending read always returns.
func (c *scopedFleet) Subscribe() (<-chan []fleet.Status, func()) {
	in, cancel := c.fleet.Subscribe()
	out := make(chan []fleet.Status, 1)
	stop := make(chan struct{})
	var once sync.Once
	end := func() {
		once.Do(func() {
			close(stop)
			cancel()
		})
	}
	go func() {
		defer close(out)
		for {
			select {
			case <-stop:
				return
			case list, ok := <-in:
				if !ok {
					return
				}
				select { // the newest list wins: drop one the model has not read yet
				case <-out:
				default:
				}
				out <- list
			}
		}
	}()
	c.track(end)
	return out, end
}

func (c *scopedFleet) Rollout(name string) (fleet.Rollout, bool) {
	r, ok := c.fleet.Rollout(name)
	if !ok {
		return nil, false
	}
	return &scopedFleetRollout{fleet: c, rollout: r, name: name}, true
}

func (c *scopedFleet) close() {
	c.mu.Lock()
	ends := c.ends
	c.ends, c.done = nil, true
	c.mu.Unlock()
	for _, end := range ends {
		end()
	}
}

// scopedFleetRollout is one rollout of a fleet as one session sees it.
type scopedFleetRollout struct {
	fleet   *scopedFleet
	rollout fleet.Rollout
	name    string
}

func (r *scopedFleetRollout) Subscribe() (<-chan engine.State, func()) {
	ch, cancel := r.rollout.Subscribe()
	unwatch := r.fleet.presence.watch(r.fleet.id, r.name)
	var once sync.Once
	end := func() {
		once.Do(func() {
			unwatch()
			cancel()
		})
	}
	if !r.fleet.track(end) {
		return ch, func() {}
	}
	return ch, end
}

func (r *scopedFleetRollout) Do(ctx context.Context, cmd engine.Command) error {
	cmd.Actor = r.fleet.actor
	return r.rollout.Do(ctx, cmd)
}
