package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrNotLeader is the error of every action refused because this replica no longer leads.
var ErrNotLeader = errors.New("this replica is no longer the rollout's leader")

// Fence says whether this replica may still act. It is up while its deadline, which the store
// moves forward each time it confirms the lease, lies ahead; it goes down for good when the
// deadline passes or the store says the lease is gone. The deadline is kept short of the
// lease's expiry on the store, so the replica stops acting before another could start.
type Fence struct {
	mu       sync.Mutex
	deadline time.Time
	err      error         // why it went down; nil while up
	down     chan struct{} // closed when it goes down
	now      func() time.Time
	timer    *time.Timer
}

// NewFence returns a fence that is up until deadline.
func NewFence(deadline time.Time) *Fence {
	f := &Fence{deadline: deadline, down: make(chan struct{}), now: time.Now}
	// Under the lock: a deadline already due fires expire at once, which must see the timer.
	f.mu.Lock()
	f.timer = time.AfterFunc(time.Until(deadline), f.expire)
	f.mu.Unlock()
	return f
}

// Extend moves the deadline to d if that is later; a fence that is down stays down.
func (f *Fence) Extend(d time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil || !d.After(f.deadline) {
		return
	}
	f.deadline = d
	f.timer.Reset(time.Until(d))
}

// Lose takes the fence down with the reason why.
func (f *Fence) Lose(reason error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loseLocked(reason)
}

func (f *Fence) loseLocked(reason error) {
	if f.err != nil {
		return
	}
	f.err = fmt.Errorf("%w: %w", ErrNotLeader, reason)
	f.timer.Stop()
	close(f.down)
}

// expire runs when the deadline may have passed; a later Extend re-arms the timer.
func (f *Fence) expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil && !f.now().Before(f.deadline) {
		f.loseLocked(errors.New("the lease was not confirmed in time"))
	}
}

// Check returns nil while the fence is up and why it went down otherwise. It compares the
// deadline with the clock itself rather than wait for the timer: a process paused past its
// deadline (SIGSTOP, a VM freeze) must refuse on waking, whichever goroutine runs first.
func (f *Fence) Check() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil && !f.now().Before(f.deadline) {
		f.loseLocked(errors.New("the lease was not confirmed in time"))
	}
	return f.err
}

// Down is closed when the fence goes down.
func (f *Fence) Down() <-chan struct{} { return f.down }

// Bound is ctx, ended also when the fence goes down: work done for the lead stops with it.
// Call cancel once the work is done.
func (f *Fence) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-f.down:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
