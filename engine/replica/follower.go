package replica

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// Roles of a replica for one rollout, as `perch status -o json` shows them.
const (
	RoleLeader  = "leader"
	RoleStandby = "standby"
)

// Follower is a standby's view of a rollout: it folds the events the leader journals, in
// order, with the engine's own reducer, and serves the state the way an engine does
// (Snapshot, Subscribe), so the TUI, SSH sessions and the control socket show it live. Only
// the leader acts: a command is relayed to it through the store (RelayTo), or refused.
type Follower struct {
	mu     sync.Mutex
	state  engine.State
	leader string
	relay  Relay
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

// Load shows the journal as a store read it: rec folded, or rollout's first state while no
// leader has written a header (rec nil). It returns the rollout file the journal's events
// are checked against.
func (f *Follower) Load(rec *engine.Recording, rollout *spec.Rollout) *spec.Rollout {
	if rec == nil {
		f.Reset(engine.NewState(rollout))
		return rollout
	}
	f.Reset(rec.Fold())
	return rec.Header.Spec
}

// Follow runs follow (one read and watch of a store's journal) until ctx ends, again a second
// after each failure: the store unreachable or the journal unreadable.
func Follow(ctx context.Context, follow func(context.Context) error) {
	for ctx.Err() == nil {
		if err := follow(ctx); err != nil && ctx.Err() == nil {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
	}
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

// RelayTo sends the follower's commands to the leader through r.
func (f *Follower) RelayTo(r Relay) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.relay = r
}

// Do relays cmd to the leader and returns its engine's answer, once this standby shows the
// command's effect (or after a moment: the answer is the leader's either way). Without a
// relay it refuses: the error wraps engine.ErrNotRunning, which the control socket reports as
// not_running.
func (f *Follower) Do(ctx context.Context, cmd engine.Command) error {
	f.mu.Lock()
	leader, relay := f.leader, f.relay
	f.mu.Unlock()
	if relay == nil {
		if leader == "" {
			leader = "none yet"
		}
		return fmt.Errorf("%w: this replica is a standby (leader: %s); send commands to the leader", engine.ErrNotRunning, leader)
	}
	seq, err := relay.Relay(ctx, cmd)
	if err != nil {
		return err
	}
	f.caughtUp(ctx, seq)
	return nil
}

// caughtUp waits, briefly, until the folded state reaches seq, so a status read right after
// a relayed command shows it.
func (f *Follower) caughtUp(ctx context.Context, seq int64) {
	ch, stop := f.Subscribe()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		select {
		case st, ok := <-ch:
			if !ok || st.Seq >= seq {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// Leading marks an engine as this replica's leading one, for the control socket's status.
type Leading struct {
	*engine.Engine
	// ID is this replica's id.
	ID string
}

// Replica is this replica's role and the leader's id: itself.
func (l Leading) Replica() (role, leader string) { return RoleLeader, l.ID }

// ReadJournal reads a journal a store holds, named path in errors. A store's journal is
// written whole by its leaders, so anything a file journal would only warn about (a torn last
// line) is an error here.
func ReadJournal(path string, r io.Reader) (*engine.Recording, error) {
	rec, err := engine.ReadJournal(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rec.Warnings) > 0 {
		return nil, fmt.Errorf("%s: %s", path, strings.Join(rec.Warnings, "; "))
	}
	return rec, nil
}
