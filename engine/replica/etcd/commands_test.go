package etcd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/engine/replica/etcd"
	"github.com/perchhq/perch/engine/replica/etcd/etcdtest"
	"github.com/perchhq/perch/engine/spec"
)

// waits is a rollout of long pause steps: each relayed advance passes one.
const waits = `name: ha
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {stabilization: 100ms}
steps:
  - setWeight: 10
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
  - pause: {duration: 10m}
`

// leading is a replica leading the rollout: its engine runs and takes relayed commands.
type leading struct {
	lead *etcd.Leadership
	eng  *engine.Engine
	stop context.CancelFunc
	done chan struct{}
}

// lead campaigns on s, continues the journal and serves relayed commands until stopped.
func lead(t *testing.T, s *etcd.Store, rollout *spec.Rollout, r *enginetest.Router) *leading {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	l, err := s.Rollout("ha").Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := l.Begin(ctx, rollout)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Spec: rollout, Router: replica.Guard(r, l.Fence()), Journal: l, Resume: rec})
	if err != nil {
		t.Fatal(err)
	}
	ld := &leading{lead: l, eng: eng, stop: stop, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); eng.Run(ctx) }()
	go func() { defer wg.Done(); l.ServeCommands(ctx, eng) }()
	go func() { wg.Wait(); close(ld.done) }()
	t.Cleanup(func() { stop(); <-ld.done; l.Close() })
	return ld
}

// standing is a standby following the rollout, relaying its commands.
func standing(t *testing.T, s *etcd.Store, rollout *spec.Rollout) *replica.Follower {
	f := replica.NewFollower(engine.NewState(rollout))
	f.RelayTo(s.Rollout("ha"))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Rollout("ha").Follow(ctx, f, rollout) }()
	t.Cleanup(func() { stop(); <-done })
	return f
}

func waitState(t *testing.T, f *replica.Follower, what string, ok func(engine.State) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok(f.Snapshot()) {
			return
		}
	}
	t.Fatalf("the standby never showed %s; it is at step %d, %s", what, f.Snapshot().Step+1, f.Snapshot().Phase)
}

// keysUnder counts the keys under the rollout's dir/sub.
func keysUnder(t *testing.T, s *etcd.Store, prefix, sub string) int64 {
	t.Helper()
	resp, err := s.Client().Get(context.Background(), prefix+"/ha/"+sub, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// A pause sent to a standby lands on the leader, is journaled with the operator's identity,
// and shows on the standby when Do returns; nothing of the command stays in etcd. A viewer's
// command, a stale one, and one written without the sender's role are refused with the
// engine's own errors.
func TestRelayedCommands(t *testing.T) {
	ep := etcdtest.Start(t)
	rollout := parse(t, pauses)
	rollout.Steps[1].Pause.Duration = spec.Duration(10 * time.Minute)
	// Weight steps stay (pausable) for an hour rather than the 100 ms a busy machine could let
	// pass before a command arrives; the test advances them.
	rollout.Analysis.Stabilization = spec.Duration(time.Hour)
	a, b := open(t, ep, "/c1", "a", 2*time.Second), open(t, ep, "/c1", "b", 2*time.Second)
	lead(t, a, rollout, &enginetest.Router{})
	f := standing(t, b, rollout)
	waitState(t, f, "the rollout running", func(st engine.State) bool { return st.Phase == engine.PhaseRunning || st.Phase == engine.PhasePaused })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	viewer := engine.Actor{Name: "vic", Role: engine.RoleViewer, Source: "ssh", Fingerprint: "SHA256:vvv"}
	err := f.Do(ctx, engine.Command{Kind: engine.CommandRollback, Actor: viewer, Step: f.Snapshot().Step})
	if !errors.Is(err, engine.ErrForbidden) || !strings.Contains(err.Error(), "viewers cannot change traffic (vic is a viewer)") {
		t.Fatalf("a viewer's rollback through the standby = %v; want the engine's ErrForbidden", err)
	}
	alice := engine.Actor{Name: "alice", Role: engine.RoleOperator, Source: "socket", Fingerprint: "SHA256:aaa"}
	err = f.Do(ctx, engine.Command{Kind: engine.CommandAdvance, Actor: alice, Step: 7})
	if !errors.Is(err, engine.ErrStaleCommand) {
		t.Fatalf("a stale advance through the standby = %v; want ErrStaleCommand", err)
	}
	// Advance step 1; step 2 is a pause step (paused, not pausable): advance past it too, then
	// pause step 3.
	if err := f.Do(ctx, engine.Command{Kind: engine.CommandAdvance, Actor: alice, Step: 0}); err != nil {
		t.Fatalf("advance through the standby: %v", err)
	}
	waitState(t, f, "step 2", func(st engine.State) bool { return st.Step == 1 })
	if err := f.Do(ctx, engine.Command{Kind: engine.CommandAdvance, Actor: alice, Step: 1, Reason: "looks fine"}); err != nil {
		t.Fatalf("advance through the standby: %v", err)
	}
	waitState(t, f, "step 3", func(st engine.State) bool { return st.Step == 2 && st.Phase == engine.PhaseRunning })
	if err := f.Do(ctx, engine.Command{Kind: engine.CommandPause, Actor: alice, Step: 2, Reason: "lunch"}); err != nil {
		t.Fatalf("pause through the standby: %v", err)
	}
	if st := f.Snapshot(); st.Phase != engine.PhasePaused || st.PausedBy == nil || st.PausedBy.Name != "alice" {
		t.Fatalf("the standby shows %s (by %v) once its pause returned; want paused by alice", st.Phase, st.PausedBy)
	}
	rec, err := b.Rollout("ha").Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var paused *engine.Event
	for i, ev := range rec.Events {
		if ev.Type == engine.EventPaused {
			paused = &rec.Events[i]
		}
	}
	if paused == nil || paused.Actor == nil || *paused.Actor != alice || paused.Reason != "lunch" {
		t.Fatalf("journaled pause %+v; want alice's, from the socket, with her fingerprint and reason", paused)
	}
	if n := keysUnder(t, a, "/c1", "commands/") + keysUnder(t, a, "/c1", "answers/"); n != 0 {
		t.Errorf("%d command or answer keys left in etcd", n)
	}

	// A command written straight into etcd without the sender's role would pass the engine as
	// an operator's: the leader refuses it.
	cli := b.Client()
	grant, err := cli.Grant(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/c1/ha/commands/forged", `{"id":"forged","kind":"resume","actor":{"name":"mallory"},"step":2}`, clientv3.WithLease(grant.ID)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); keysUnder(t, a, "/c1", "answers/forged") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no answer to the forged command")
		}
	}
	ans, _ := cli.Get(ctx, "/c1/ha/answers/forged")
	if _, err := replica.ParseAnswer(ans.Kvs[0].Value); !errors.Is(err, engine.ErrForbidden) {
		t.Fatalf("a command without a role was answered %v; want ErrForbidden", err)
	}
	if st := f.Snapshot(); st.Phase != engine.PhasePaused {
		t.Fatalf("the forged resume ran: %s", st.Phase)
	}
	// One without a lease could outlive any sender: it is dropped, not run.
	alice.Name = "leaseless"
	data, _ := json.Marshal(replica.NewRequest("old", "b", engine.Command{Kind: engine.CommandResume, Actor: alice, Step: 2}))
	if _, err := cli.Put(ctx, "/c1/ha/commands/old", string(data)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); keysUnder(t, a, "/c1", "commands/old") != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the leader never took the command without a lease")
		}
	}
	time.Sleep(200 * time.Millisecond)
	if st := f.Snapshot(); st.Phase != engine.PhasePaused {
		t.Fatalf("the command without a lease ran: %s", st.Phase)
	}
}

// With no leader, a command to a standby times out with a clear error, is withdrawn, and is
// not applied by a leader that comes later.
func TestRelayWithoutLeader(t *testing.T) {
	ep := etcdtest.Start(t)
	rollout := parse(t, pauses)
	a, b := open(t, ep, "/c2", "a", 2*time.Second), open(t, ep, "/c2", "b", 2*time.Second)
	f := standing(t, b, rollout)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	alice := engine.Actor{Name: "alice", Role: engine.RoleOperator, Source: "socket"}
	start := time.Now()
	err := f.Do(ctx, engine.Command{Kind: engine.CommandRollback, Actor: alice})
	if !errors.Is(err, engine.ErrNotRunning) || !strings.Contains(err.Error(), "no leader took the command") || !strings.Contains(err.Error(), "leader: none") {
		t.Fatalf("a command with no leader = %v; want a clear not-running error", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("it took %s to give up; the caller allowed 1s", took)
	}
	if n := keysUnder(t, b, "/c2", "commands/"); n != 0 {
		t.Fatalf("%d command keys left after it was withdrawn", n)
	}
	ld := lead(t, a, rollout, &enginetest.Router{})
	waitState(t, f, "the rollout started", func(st engine.State) bool { return st.Step >= 1 })
	time.Sleep(300 * time.Millisecond) // a late rollback would have been journaled by now
	for _, ev := range ld.eng.Snapshot().Log {
		if ev.Actor != nil && ev.Actor.Name == "alice" {
			t.Fatalf("the withdrawn command was applied by the later leader: %s", ev.Type)
		}
	}
}

// Commands keep coming through a standby while the leader is lost and another takes over:
// each one is applied at most once, and each one reported applied was applied exactly once.
// Every command has its own sender, so any second application (even one the engine refuses)
// would show as a second event of that sender.
func TestRelayAcrossLeaderLoss(t *testing.T) {
	ep := etcdtest.Start(t)
	rollout := parse(t, waits)
	a, b, c := open(t, ep, "/c3", "a", 2*time.Second), open(t, ep, "/c3", "b", 2*time.Second), open(t, ep, "/c3", "c", 2*time.Second)
	r := &enginetest.Router{}
	first := lead(t, a, rollout, r)
	f := standing(t, b, rollout)
	waitState(t, f, "the first pause step", func(st engine.State) bool { return st.Step == 1 })

	const n = 16
	results := make([]error, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			actor := engine.Actor{Name: fmt.Sprintf("op%d", i), Role: engine.RoleOperator, Source: "socket"}
			results[i] = f.Do(ctx, engine.Command{Kind: engine.CommandAdvance, Actor: actor, Step: f.Snapshot().Step})
			cancel()
		}
	}()
	// Lose the first leader a few commands in: its lease is revoked (as on expiry after a
	// kill) while commands are in flight; a third replica takes over.
	waitState(t, f, "a few advances", func(st engine.State) bool { return st.Step >= 4 })
	leases, err := c.Client().Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.Leases {
		ttl, _ := c.Client().TimeToLive(context.Background(), l.ID, clientv3.WithAttachedKeys())
		for _, k := range ttl.Keys {
			if strings.HasPrefix(string(k), "/c3/ha/election") {
				c.Client().Revoke(context.Background(), l.ID)
			}
		}
	}
	first.stop()
	<-first.done
	lead(t, c, rollout, r)
	wg.Wait()

	rec, err := b.Rollout("ha").Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	applied, failed := 0, 0
	for i, res := range results {
		name := fmt.Sprintf("op%d", i)
		var evs []engine.EventType
		for _, ev := range rec.Events {
			if ev.Actor != nil && ev.Actor.Name == name {
				evs = append(evs, ev.Type)
			}
		}
		switch {
		case len(evs) > 1:
			t.Errorf("%s's command was applied %d times: %v", name, len(evs), evs)
		case res == nil && (len(evs) != 1 || evs[0] != engine.EventStepPassed):
			t.Errorf("%s's command was reported applied, but the journal has %v", name, evs)
		case res == nil:
			applied++
		default:
			failed++
			t.Logf("%s: %v (journal: %v)", name, res, evs)
		}
	}
	if applied < n/2 {
		t.Errorf("only %d of %d commands were applied", applied, n)
	}
	t.Logf("%d applied, %d reported failed", applied, failed)
}

// A leader that takes a command and dies before running it (frozen here) never answers; the
// sender reports that it may not have been applied, and the next leader does not run it.
func TestRelayTakenByDyingLeader(t *testing.T) {
	ep := etcdtest.Start(t)
	rollout := parse(t, pauses)
	a, b, c := open(t, ep, "/c4", "a", 2*time.Second), open(t, ep, "/c4", "b", 2*time.Second), open(t, ep, "/c4", "c", 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := a.Rollout("ha").Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Begin(ctx, rollout); err != nil {
		t.Fatal(err)
	}
	frozen := &frozenTarget{took: make(chan struct{}), thaw: make(chan struct{})}
	defer close(frozen.thaw)
	sctx, stopServe := context.WithCancel(ctx)
	go l.ServeCommands(sctx, frozen)
	f := standing(t, b, rollout)
	res := make(chan error, 1)
	go func() {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		res <- f.Do(dctx, engine.Command{Kind: engine.CommandRollback, Actor: engine.Actor{Name: "alice", Role: engine.RoleOperator}})
	}()
	<-frozen.took
	stopServe()
	l.Close() // the lease goes, as after a kill
	ld := lead(t, c, rollout, &enginetest.Router{})
	err = <-res
	if err == nil || !strings.Contains(err.Error(), "took the command but did not answer") {
		t.Fatalf("a command taken by a leader that died = %v; want a may-have-been-applied error", err)
	}
	time.Sleep(300 * time.Millisecond)
	for _, ev := range ld.eng.Snapshot().Log {
		if ev.Actor != nil && ev.Actor.Name == "alice" {
			t.Fatalf("the next leader ran the command the dead one took: %s", ev.Type)
		}
	}
}

// frozenTarget takes a command and never answers, like a process stopped mid-command.
type frozenTarget struct {
	took chan struct{}
	thaw chan struct{}
	once sync.Once
}

func (f *frozenTarget) Do(context.Context, engine.Command) error {
	f.once.Do(func() { close(f.took) })
	<-f.thaw
	return errors.New("thawed")
}

func (f *frozenTarget) Snapshot() engine.State { return engine.State{} }
