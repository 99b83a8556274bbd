package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/providers/kube/kubetest"
)

// waits is a rollout of long pause steps: each relayed advance passes one.
var waits = `name: ha
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {stabilization: 100ms}
steps:
  - setWeight: 10
` + strings.Repeat("  - pause: {duration: 10m}\n", 20)

func parseText(t *testing.T, text string) *spec.Rollout {
	t.Helper()
	r, err := spec.Parse("ha.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// leading is a replica leading the rollout: its engine runs and takes relayed commands.
type leading struct {
	lead *Leadership
	eng  *engine.Engine
	stop context.CancelFunc
	done chan struct{}
}

// lead campaigns on s, continues the journal and serves relayed commands until stopped.
func lead(t *testing.T, s *Store, rollout *spec.Rollout, r *enginetest.Router) *leading {
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
func standing(t *testing.T, s *Store, rollout *spec.Rollout) *replica.Follower {
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

// relayObjects lists the ConfigMaps of relayed commands and answers left in the namespace.
func relayObjects(srv *kubetest.APIServer) []string {
	var out []string
	for _, n := range srv.Names("configmaps", "shop") {
		if strings.Contains(n, "-cmd-") || strings.Contains(n, "-ans-") {
			out = append(out, n)
		}
	}
	return out
}

// putCommand creates a command ConfigMap as a standby would, with data as its request.
func putCommand(t *testing.T, s *Store, id, data string) {
	t.Helper()
	r := s.Rollout("ha")
	_, err := s.cs.CoreV1().ConfigMaps("shop").Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: r.commandName(id), Labels: map[string]string{LabelCommand: r.base}},
		Data:       map[string]string{"request": data},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// answerTo waits for the leader's answer to command id and returns the engine's result.
func answerTo(t *testing.T, srv *kubetest.APIServer, id string) error {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cm := srv.Object("configmaps", "shop", "perch-ha-ans-"+id); cm != nil {
			_, err := replica.ParseAnswer([]byte(cm["data"].(map[string]any)["answer"].(string)))
			return err
		}
	}
	t.Fatalf("no answer to command %s", id)
	return nil
}

func hexID(c byte) string { return strings.Repeat(string(c), 32) }

// A pause sent to a standby lands on the leader, is journaled with the operator's identity,
// and shows on the standby when Do returns; no ConfigMap of the command stays. A viewer's
// command, a stale one, and hostile ones written straight into the namespace are refused
// with the engine's own errors, or dropped, and not run.
func TestRelayedCommands(t *testing.T) {
	srv := kubetest.NewAPIServer()
	rollout := parse(t)
	rollout.Steps[1].Pause.Duration = spec.Duration(10 * time.Minute)
	// Weight steps stay (pausable) for an hour rather than the 100 ms a busy machine could let
	// pass before a command arrives; the test advances them.
	rollout.Analysis.Stabilization = spec.Duration(time.Hour)
	a, _ := open(t, srv, "a", 2*time.Second)
	b, _ := open(t, srv, "b", 2*time.Second)
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
	if left := relayObjects(srv); len(left) != 0 {
		t.Errorf("command or answer ConfigMaps left: %v", left)
	}

	// Commands written straight into the namespace: each would resume the rollout if run.
	mallory := engine.Actor{Name: "mallory", Role: engine.RoleOperator, Source: "socket"}
	req := func(id string, a engine.Actor, reason string) string {
		data, _ := json.Marshal(replica.NewRequest(id, "b", engine.Command{Kind: engine.CommandResume, Actor: a, Step: 2, Reason: reason}))
		return string(data)
	}
	for _, c := range []struct {
		name, id, data string
		want           error
	}{
		{"without a role", hexID('1'), `{"id":"` + hexID('1') + `","kind":"resume","actor":{"name":"mallory"},"step":2}`, engine.ErrForbidden},
		{"with an unknown role", hexID('2'), `{"id":"` + hexID('2') + `","kind":"resume","actor":{"name":"mallory","role":"admin"},"step":2}`, engine.ErrForbidden},
		{"with escapes", hexID('3'), req(hexID('3'), engine.Actor{Name: "mal\x1b[2Jlory", Role: engine.RoleOperator}, ""), engine.ErrNotAllowed},
		{"oversized", hexID('4'), req(hexID('4'), mallory, strings.Repeat("x", replica.MaxRequest)), engine.ErrNotAllowed},
		{"under another id", hexID('5'), req(hexID('6'), mallory, ""), engine.ErrNotAllowed},
	} {
		putCommand(t, a, c.id, c.data)
		if err := answerTo(t, srv, c.id); !errors.Is(err, c.want) {
			t.Errorf("a command %s was answered %v; want %v", c.name, err, c.want)
		}
	}
	// One under a name that is no command's is left alone, not run.
	stray := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "perch-ha-cmd-x", Labels: map[string]string{LabelCommand: "perch-ha"}},
		Data: map[string]string{"request": req("x", mallory, "")}}
	if _, err := a.cs.CoreV1().ConfigMaps("shop").Create(ctx, stray, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if srv.Object("configmaps", "shop", "perch-ha-cmd-x") == nil {
		t.Error("the leader took a command under a name that is no command's")
	}
	if st := f.Snapshot(); st.Phase != engine.PhasePaused {
		t.Fatalf("a forged resume ran: %s", st.Phase)
	}
	for _, ev := range f.Snapshot().Log {
		if ev.Actor != nil && strings.HasPrefix(ev.Actor.Name, "mal") {
			t.Errorf("a forged command was journaled: %s by %q", ev.Type, ev.Actor.Name)
		}
	}
}

// With no leader, a command to a standby times out with a clear error, is withdrawn, and is
// not applied by a leader that comes later.
func TestRelayWithoutLeader(t *testing.T) {
	srv := kubetest.NewAPIServer()
	rollout := parse(t)
	a, _ := open(t, srv, "a", 2*time.Second)
	b, _ := open(t, srv, "b", 2*time.Second)
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
	if left := relayObjects(srv); len(left) != 0 {
		t.Fatalf("ConfigMaps left after the command was withdrawn: %v", left)
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

// A sender that died leaves its command behind: a leader that finds it older than any
// sender waits answers it without running it, and collects answers nobody read.
func TestLeftoversOfDeadSenders(t *testing.T) {
	srv := kubetest.NewAPIServer()
	rollout := parse(t)
	a, _ := open(t, srv, "a", 2*time.Second)
	alice := engine.Actor{Name: "alice", Role: engine.RoleOperator, Source: "socket"}
	data, _ := json.Marshal(replica.NewRequest(hexID('a'), "b", engine.Command{Kind: engine.CommandRollback, Actor: alice}))
	putCommand(t, a, hexID('a'), string(data))
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "perch-ha-ans-" + hexID('b'),
		Labels: map[string]string{LabelAnswer: "perch-ha", LabelCommandID: hexID('b')}}, Data: map[string]string{"answer": "{}"}}
	if _, err := a.cs.CoreV1().ConfigMaps("shop").Create(context.Background(), old, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := unelected(a, "ha")
	l.now = func() time.Time { return time.Now().Add(commandTTL + time.Minute) }
	if _, err := l.Begin(ctx, rollout); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Spec: rollout, Router: &enginetest.Router{}, Journal: l})
	if err != nil {
		t.Fatal(err)
	}
	// Its answer is itself old by the leader's clock here, and collected at once: watch for it.
	w, err := a.cs.CoreV1().ConfigMaps("shop").Watch(ctx, metav1.ListOptions{LabelSelector: LabelAnswer + "=perch-ha," + LabelCommandID + "=" + hexID('a')})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	go eng.Run(ctx)
	go l.ServeCommands(ctx, eng)
	var answer *corev1.ConfigMap
	for answer == nil {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Added {
				answer = ev.Object.(*corev1.ConfigMap)
			}
		case <-ctx.Done():
			t.Fatal("no answer to the leftover command")
		}
	}
	if _, err := replica.ParseAnswer([]byte(answer.Data["answer"])); !errors.Is(err, engine.ErrNotRunning) || !strings.Contains(err.Error(), "was not run") {
		t.Fatalf("a leftover command was answered %v; want not run", err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(relayObjects(srv)) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("answers nobody read were not collected: %v", relayObjects(srv))
		}
	}
	for _, ev := range eng.Snapshot().Log {
		if ev.Actor != nil && ev.Actor.Name == "alice" {
			t.Fatalf("the leftover command ran: %s", ev.Type)
		}
	}
}

// Commands keep coming through a standby while the leader is cut off from the API server and
// another takes over: each one is applied at most once, and each one reported applied was
// applied exactly once. Every command has its own sender, so any second application (even
// one the engine refuses) would show as a second event of that sender.
func TestRelayAcrossLeaderLoss(t *testing.T) {
	srv := kubetest.NewAPIServer()
	rollout := parseText(t, waits)
	a, ca := open(t, srv, "a", 2*time.Second)
	b, _ := open(t, srv, "b", 2*time.Second)
	c, _ := open(t, srv, "c", 2*time.Second)
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
	// Lose the first leader a few commands in: cut off from the API server, as its node
	// would be, while commands are in flight; a third replica takes over.
	waitState(t, f, "a few advances", func(st engine.State) bool { return st.Step >= 4 })
	ca.cut.Store(true)
	<-first.lead.Fence().Down()
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
	srv := kubetest.NewAPIServer()
	rollout := parse(t)
	a, _ := open(t, srv, "a", 2*time.Second)
	b, _ := open(t, srv, "b", 2*time.Second)
	c, _ := open(t, srv, "c", 2*time.Second)
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
	l.Close() // the Lease goes, as after a kill
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

// The names of commands and answers stay within what Kubernetes allows for the longest
// store and rollout names.
func TestRelayNamesFitKubernetesLimits(t *testing.T) {
	s := &Store{name: strings.Repeat("n", 40)}
	r := s.Rollout(strings.Repeat("r", 63-41))
	if r.err != nil {
		t.Fatal(r.err)
	}
	id := hexID('f')
	for _, name := range []string{r.commandName(id), r.answerName(id)} {
		if len(name) > 253 {
			t.Errorf("%s: %d characters, more than an object name's 253", name, len(name))
		}
	}
	for _, v := range []string{r.base, id} {
		if len(v) > 63 {
			t.Errorf("label value %s: %d characters, more than 63", v, len(v))
		}
	}
	if r.commandID(r.commandName(id)) != id || r.commandID(r.commandName("x")) != "" || r.commandID(r.answerName(id)) != "" {
		t.Error("commandID does not read back only the names of commands")
	}
}
