package etcd_test

import (
	"context"
	"errors"
	"fmt"
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

func TestParseURL(t *testing.T) {
	eps, prefix, err := etcd.ParseURL("etcd://10.0.0.1:2379,10.0.0.2:2379/perch/prod")
	if err != nil || len(eps) != 2 || eps[1] != "10.0.0.2:2379" || prefix != "/perch/prod" {
		t.Fatalf("ParseURL = %v %q %v", eps, prefix, err)
	}
	for _, bad := range []string{"http://h:1/p", "etcd://h:1", "etcd://h:1/", "etcd://h/p", "etcd://h:1,/p", "etcd://h:1/p?x"} {
		if _, _, err := etcd.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}

// pauses is a rollout without checks: two weights, each followed by a short pause.
const pauses = `name: ha
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {stabilization: 100ms}
steps:
  - setWeight: 10
  - pause: {duration: 300ms}
  - setWeight: 50
  - pause: {duration: 300ms}
`

func parse(t *testing.T, text string) *spec.Rollout {
	t.Helper()
	r, err := spec.Parse("ha.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func open(t *testing.T, endpoint, prefix, id string, lease time.Duration) *etcd.Store {
	t.Helper()
	s, err := etcd.Open(context.Background(), etcd.Config{Endpoints: []string{endpoint}, Prefix: prefix, ID: id, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A leader's engine journals into etcd; a standby's follower folds the same events live and
// ends in the same state; the stored journal reads back as that state too.
func TestLeaderJournalsStandbyFollows(t *testing.T) {
	ep := etcdtest.Start(t)
	rollout := parse(t, pauses)
	a, b := open(t, ep, "/t1", "a", 2*time.Second), open(t, ep, "/t1", "b", 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	f := replica.NewFollower(engine.NewState(rollout))
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	go b.Rollout("ha").Follow(fctx, f, rollout)

	lead, err := a.Rollout("ha").Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lead.Close()
	rec, err := lead.Begin(ctx, rollout)
	if err != nil || rec != nil {
		t.Fatalf("Begin on an empty store = %v, %v; want a fresh start", rec, err)
	}
	eng, err := engine.New(engine.Config{Spec: rollout, Router: replica.Guard(&enginetest.Router{}, lead.Fence()), Journal: lead})
	if err != nil {
		t.Fatal(err)
	}
	out, err := eng.Run(ctx)
	if err != nil || out != engine.OutcomePromoted {
		for _, ev := range eng.Snapshot().Log {
			t.Log(ev.Describe(rollout))
		}
		t.Fatalf("Run = %s, %v", out, err)
	}
	want := eng.Snapshot()
	deadline := time.Now().Add(5 * time.Second)
	for f.Snapshot().Seq != want.Seq && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := f.Snapshot()
	if got.Seq != want.Seq || got.Phase != engine.PhasePromoted || got.Weight != 100 {
		t.Fatalf("standby folded seq %d %s at %d%%; the leader ended at seq %d %s", got.Seq, got.Phase, got.Weight, want.Seq, want.Phase)
	}
	if role, leader := f.Replica(); role != replica.RoleStandby || leader != "a" {
		t.Errorf("standby's Replica() = %s, %s; want standby, a", role, leader)
	}
	if err := f.Do(ctx, engine.Command{Kind: engine.CommandPause}); !errors.Is(err, engine.ErrNotRunning) {
		t.Errorf("a standby took a command: %v", err)
	}
	stored, err := b.Rollout("ha").Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := stored.Fold(); st.Seq != want.Seq || st.Phase != engine.PhasePromoted {
		t.Fatalf("stored journal folds to seq %d %s", st.Seq, st.Phase)
	}
}

// Once a leader's lease is gone (revoked here, as an expiry would), its appends fail, and the
// next replica's campaign wins and continues the journal.
func TestDeposedLeaderCannotAppend(t *testing.T) {
	ep := etcdtest.Start(t)
	rollout := parse(t, pauses)
	a, b := open(t, ep, "/t2", "a", 2*time.Second), open(t, ep, "/t2", "b", 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lead, err := a.Rollout("ha").Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lead.Begin(ctx, rollout); err != nil {
		t.Fatal(err)
	}
	ev := engine.Event{Seq: 1, Time: time.Now(), Type: engine.EventRolloutStarted, Attempt: 1}
	if err := lead.Append(ev); err != nil {
		t.Fatal(err)
	}
	// Another client ends a's lease, as the server does when it expires.
	leases, err := b.Client().Leases(ctx)
	if err != nil || len(leases.Leases) != 1 {
		t.Fatalf("leases: %v %v", leases, err)
	}
	if _, err := b.Client().Revoke(ctx, leases.Leases[0].ID); err != nil {
		t.Fatal(err)
	}
	ev2 := engine.Event{Seq: 2, Time: time.Now(), Type: engine.EventNote, Actor: &engine.Actor{Name: "x", Role: engine.RoleOperator}, Reason: "late"}
	if err := lead.Append(ev2); !errors.Is(err, replica.ErrNotLeader) {
		t.Fatalf("a deposed leader's append = %v; want ErrNotLeader", err)
	}
	select {
	case <-lead.Fence().Down():
	case <-time.After(time.Second):
		t.Fatal("the fence stayed up after a refused append")
	}
	if err := replica.Guard(&enginetest.Router{}, lead.Fence()).SetWeight(ctx, 50); !errors.Is(err, replica.ErrNotLeader) {
		t.Fatalf("a deposed leader's weight change = %v; want ErrNotLeader", err)
	}
	lb, err := b.Rollout("ha").Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	rec, err := lb.Begin(ctx, rollout)
	if err != nil || rec == nil || len(rec.Events) != 1 {
		t.Fatalf("the new leader's Begin = %v, %v; want the one event a wrote", rec, err)
	}
	resp, err := b.Client().Get(ctx, "/t2/ha/events/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 1 {
		t.Fatalf("%d event keys (%v); want 1: the deposed leader wrote", resp.Count, err)
	}
}

// A long journal is compacted into chunks: few keys, every event read back, and a new leader
// continues it.
func TestCompaction(t *testing.T) {
	ep := etcdtest.Start(t)
	rollout := parse(t, pauses)
	a, b := open(t, ep, "/t3", "a", 5*time.Second), open(t, ep, "/t3", "b", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lead, err := a.Rollout("ha").Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lead.Begin(ctx, rollout); err != nil {
		t.Fatal(err)
	}
	const n = 1234
	actor := &engine.Actor{Name: "alertmanager", Role: engine.RoleOperator}
	for i := int64(1); i <= n; i++ {
		ev := engine.Event{Seq: i, Time: time.Now(), Type: engine.EventNote, Actor: actor, Reason: fmt.Sprintf("note %d", i)}
		if err := lead.Append(ev); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	resp, err := b.Client().Get(ctx, "/t3/ha/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) > 1+n/500+1+n%500+1 || len(resp.Kvs) > 250 {
		t.Fatalf("%d keys for %d events: not compacted", len(resp.Kvs), n)
	}
	lead.Close()
	lb, err := b.Rollout("ha").Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	rec, err := lb.Begin(ctx, rollout)
	if err != nil || len(rec.Events) != n {
		t.Fatalf("read back %v events (%v); want %d", len(rec.Events), err, n)
	}
	for i, ev := range rec.Events {
		if ev.Seq != int64(i+1) || ev.Reason != fmt.Sprintf("note %d", i+1) {
			t.Fatalf("event %d read back as seq %d %q", i+1, ev.Seq, ev.Reason)
		}
	}
	for i := int64(n + 1); i <= n+600; i++ {
		if err := lb.Append(engine.Event{Seq: i, Time: time.Now(), Type: engine.EventNote, Actor: actor, Reason: "more"}); err != nil {
			t.Fatalf("the new leader's append %d: %v", i, err)
		}
	}
	rec, err = b.Rollout("ha").Load(ctx)
	if err != nil || len(rec.Events) != n+600 {
		t.Fatalf("after the new leader's appends: %d events (%v)", len(rec.Events), err)
	}
}

// Garbage under the rollout's keys is refused, not folded.
func TestHostileKeys(t *testing.T) {
	ep := etcdtest.Start(t)
	rollout := parse(t, pauses)
	a := open(t, ep, "/t4", "a", 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli := a.Client()
	if _, err := cli.Put(ctx, "/t4/ha/events/0000000000000001", `{"seq":1}`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rollout("ha").Load(ctx); err == nil {
		t.Fatal("events without a header were read")
	}
	lead, err := a.Rollout("ha").Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lead.Close()
	if _, err := lead.Begin(ctx, rollout); err == nil {
		t.Fatal("a leader began over a journal without a header")
	}
	if _, err := cli.Put(ctx, "/t4/ha/header", `{"perchJournal":2,"created":"2026-01-01T00:00:00Z","spec":null}`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rollout("ha").Load(ctx); err == nil {
		t.Fatal("a header without a rollout was read")
	}
}
