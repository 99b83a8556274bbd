package replica

import (
	"context"
	"fmt"
	"sync"

	"github.com/perchhq/perch/engine"
)

// Roles of a replica for one rollout, as `perch status -o json` shows them.
const (
	RoleLeader  = "leader"
	RoleStandby = "standby"
)

// Follower is a standby's view of a rollout: it folds the events the leader journals, in
// order, with the engine's own reducer, and serves the state the way an engine does
// (Snapshot, Subscribe), so the TUI, SSH sessions and the control socket show it live. It
// refuses every command: only the leader acts.
type Follower struct {
	mu     sync.Mutex
	state  engine.State
	leader string
	subs   map[chan engine.State]struct{}
	closed bool
}

// NewFollower starts from the recorded state st (engine.NewState for a rollout with no events
// yet).
func NewFollower(st engine.State) *Follower {
	return &Follower{state: st, subs: map[chan engine.State]struct{}{}}
}

// Apply folds the next events; events at or before the state's Seq are skipped (a store may
// deliver an event twice: once alone and once in a compacted chunk). It reports false, having
// applied the events before it, when one would leave a gap: the caller reloads.
func (f *Follower) Apply(evs ...engine.Event) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	changed, ok := false, true
	for _, ev := range evs {
		if ev.Seq <= f.state.Seq {
			continue
		}
		if ev.Seq != f.state.Seq+1 {
			ok = false
			break
		}
		f.state.Apply(ev)
		changed = true
	}
	if changed {
		f.publishLocked()
	}
	return ok
}

// Reset replaces the state wholesale (after a reload).
func (f *Follower) Reset(st engine.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = st
	f.publishLocked()
}

// SetLeader records who leads now (shown by status; "" when nobody does).
func (f *Follower) SetLeader(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = id
}

// Replica is this replica's role and the leader's id, for the control socket's status.
func (f *Follower) Replica() (role, leader string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return RoleStandby, f.leader
}

func (f *Follower) publishLocked() {
	st := f.state.Clone()
	for ch := range f.subs {
		select {
		case <-ch:
		default:
		}
		ch <- st
	}
}

// Snapshot is the newest folded state.
func (f *Follower) Snapshot() engine.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Clone()
}

// Subscribe returns a channel that always holds the newest state, as Engine.Subscribe does,
// and a function to unsubscribe. The channel closes when the follower does.
func (f *Follower) Subscribe() (<-chan engine.State, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan engine.State, 1)
	if f.closed {
		close(ch)
		return ch, func() {}
	}
	ch <- f.state.Clone()
	f.subs[ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

// Close ends every subscription.
func (f *Follower) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch := range f.subs {
		close(ch)
	}
	clear(f.subs)
}

// Do refuses: a standby never acts. The error wraps engine.ErrNotRunning, which the control
// socket reports as not_running.
func (f *Follower) Do(context.Context, engine.Command) error {
	f.mu.Lock()
	leader := f.leader
	f.mu.Unlock()
	if leader == "" {
		leader = "none yet"
	}
	return fmt.Errorf("%w: this replica is a standby (leader: %s); send commands to the leader", engine.ErrNotRunning, leader)
}

// Leading marks an engine as this replica's leading one, for the control socket's status.
type Leading struct {
	*engine.Engine
	// ID is this replica's id.
	ID string
}

// Replica is this replica's role and the leader's id: itself.
func (l Leading) Replica() (role, leader string) { return RoleLeader, l.ID }
