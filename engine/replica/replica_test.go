package replica_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/engine/spec"
)

func TestFenceDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := replica.NewFence(time.Now().Add(time.Second))
		f.Extend(time.Now().Add(500 * time.Millisecond)) // earlier: ignored
		f.Extend(time.Now().Add(2 * time.Second))
		time.Sleep(1500 * time.Millisecond)
		if err := f.Check(); err != nil {
			t.Fatalf("down before its deadline: %v", err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case <-f.Down():
		default:
			t.Fatal("still up past its deadline")
		}
		if err := f.Check(); !errors.Is(err, replica.ErrNotLeader) {
			t.Fatalf("Check past the deadline = %v", err)
		}
		f.Extend(time.Now().Add(time.Hour))
		if f.Check() == nil {
			t.Fatal("a fence came back up")
		}
	})
}

// A paused process wakes past its deadline: Check refuses before the timer has run.
func TestFenceCheckReadsTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := replica.NewFence(time.Now().Add(time.Second))
		time.Sleep(time.Second)
		if err := f.Check(); err == nil {
			t.Fatal("Check at the deadline passed")
		}
	})
}

func TestFenceLoseAndGuard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := replica.NewFence(time.Now().Add(time.Hour))
		r := &router{}
		g := replica.Guard(r, f)
		if err := g.SetWeight(t.Context(), 10); err != nil || r.w != 10 {
			t.Fatalf("guarded SetWeight while leading: %v, weight %d", err, r.w)
		}
		f.Lose(errors.New("resigned"))
		if err := g.SetWeight(t.Context(), 50); !errors.Is(err, replica.ErrNotLeader) || r.w != 10 {
			t.Fatalf("guarded SetWeight after losing: %v, weight %d", err, r.w)
		}
		if w, err := g.Weight(t.Context()); err != nil || w != 10 {
			t.Fatalf("reads pass through: %d %v", w, err)
		}
	})
}

type router struct{ w int }

func (r *router) SetWeight(_ context.Context, w int) error { r.w = w; return nil }
func (r *router) Weight(context.Context) (int, error)      { return r.w, nil }

func TestFollowerAppliesInOrder(t *testing.T) {
	rollout, err := spec.Parse("f.yaml", []byte(`name: f
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
steps:
  - setWeight: 10
`))
	if err != nil {
		t.Fatal(err)
	}
	f := replica.NewFollower(engine.NewState(rollout))
	ch, stop := f.Subscribe()
	defer stop()
	<-ch
	ten := 10
	started := engine.Event{Seq: 1, Type: engine.EventRolloutStarted, Attempt: 1}
	step := engine.Event{Seq: 2, Type: engine.EventStepStarted, Weight: &ten}
	if !f.Apply(started, started) { // a repeat is skipped
		t.Fatal("a repeated event was taken for a gap")
	}
	if st := <-ch; st.Seq != 1 || st.Phase != engine.PhaseRunning {
		t.Fatalf("after rollout_started: seq %d %s", st.Seq, st.Phase)
	}
	if f.Apply(engine.Event{Seq: 3, Type: engine.EventNote}) {
		t.Fatal("a gap was applied")
	}
	if !f.Apply(step) || f.Snapshot().Target != 10 {
		t.Fatalf("step_started not applied: %+v", f.Snapshot().Target)
	}
	if err := f.Do(t.Context(), engine.Command{Kind: engine.CommandRollback}); !errors.Is(err, engine.ErrNotRunning) {
		t.Fatalf("a standby took a command: %v", err)
	}
	f.Close()
	if _, ok := <-ch; ok {
		if _, ok := <-ch; ok {
			t.Fatal("subscription not closed")
		}
	}
}

// TestFenceBound: work bound to the fence ends when the fence goes down (its deadline passes),
// and not before; work that ends first leaves nothing waiting.
func TestFenceBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := replica.NewFence(time.Now().Add(time.Minute))
		ctx, cancel := f.Bound(context.Background())
		defer cancel()
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if ctx.Err() != nil {
			t.Fatal("the bound context ended while the fence was up")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if ctx.Err() == nil {
			t.Fatal("the bound context outlived the fence")
		}
		done, stop := f.Bound(context.Background())
		stop()
		synctest.Wait() // its watcher must be gone, or synctest reports a leaked goroutine
		if done.Err() == nil {
			t.Fatal("cancel did not end the bound context")
		}
	})
}
