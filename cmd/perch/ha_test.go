package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica/etcd"
	"github.com/perchhq/perch/engine/replica/etcd/etcdtest"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/tui/tmuxtest"
)

// The HA suite runs three real perch replicas on one real etcd (Debian's etcd-server), driving
// a standalone perch proxy in front of two backends under load, kills or pauses the leader at
// chosen points, and checks from etcd's keys that the rollout ends as an uninterrupted run
// does: started once, no step skipped or repeated, and no replica acting after another took
// over.

const haLease = "2s"

// haWorld is etcd, a proxy under load in front of two backends, a rollout file that drives
// the proxy, and the replicas running it.
type haWorld struct {
	t        *testing.T
	endpoint string
	prefix   string
	rollout  string
	proxy    *proxyService
	failing  atomic.Bool // the canary answers 500
	store    *etcd.Store // nil on Kubernetes
	reader   haReader    // the store's view of the rollout
	ha       string      // --ha
	extra    []string    // more flags for each replica
	replicas []*haReplica
}

// haReader reads a rollout's leader and journal from a store.
type haReader interface {
	Leader(ctx context.Context) (string, error)
	Load(ctx context.Context) (*engine.Recording, error)
}

type haReplica struct {
	id     string
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{}
}

func newHAWorld(t *testing.T, endpoint, prefix string, failing bool) *haWorld {
	t.Helper()
	w := newHAScene(t, failing)
	w.endpoint, w.prefix, w.ha = endpoint, prefix, "etcd://"+endpoint+prefix
	s, err := etcd.Open(context.Background(), etcd.Config{Endpoints: []string{endpoint}, Prefix: prefix, ID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w.store, w.reader = s, s.Rollout("ha")
	return w
}

// newHAScene is the proxy under load and the rollout file, with no store yet.
func newHAScene(t *testing.T, failing bool) *haWorld {
	t.Helper()
	w := &haWorld{t: t}
	w.failing.Store(failing)
	stable := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("stable\n")) }))
	canary := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		if w.failing.Load() {
			http.Error(rw, "canary broke", http.StatusInternalServerError)
			return
		}
		rw.Write([]byte("canary\n"))
	}))
	t.Cleanup(stable.Close)
	t.Cleanup(canary.Close)
	w.proxy = newProxyService(t, stable.URL, canary.URL)
	w.proxy.start()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); load(ctx, "http://"+w.proxy.listen+"/") }()
	t.Cleanup(func() { stop(); <-done })
	w.rollout = filepath.Join(w.proxy.dir, "rollout.yaml")
	spec := fmt.Sprintf(`name: ha
traffic: {proxy: {admin: "unix://%s"}}
metrics: {builtin: {}}
analysis: {interval: 1s, stabilization: 250ms, judge: threshold}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.05, critical: true}
steps:
  - {setWeight: 20, analyze: 2s}
  - {setWeight: 50, analyze: 2s}
  - {setWeight: 80, analyze: 2s}
`, w.proxy.socket)
	if err := os.WriteFile(w.rollout, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// start runs n replicas, r1…rn.
func (w *haWorld) start(n int) {
	w.t.Helper()
	bin, err := perchBinary()
	if err != nil {
		w.t.Fatal(err)
	}
	for range n {
		r := &haReplica{id: fmt.Sprintf("r%d", len(w.replicas)+1), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
		args := []string{"run", w.rollout, "--headless", "-o", "json", "--socket", r.socket(w),
			"--ha", w.ha, "--ha-lease", haLease, "--ha-id", r.id}
		r.cmd = exec.Command(bin, append(args, w.extra...)...)
		r.cmd.Dir = w.proxy.dir
		r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
		if err := r.cmd.Start(); err != nil {
			w.t.Fatal(err)
		}
		go func() { r.cmd.Wait(); close(r.done) }()
		w.t.Cleanup(func() {
			r.cmd.Process.Signal(syscall.SIGCONT)
			r.cmd.Process.Kill()
			<-r.done
		})
		w.replicas = append(w.replicas, r)
	}
}

func (w *haWorld) replica(id string) *haReplica {
	for _, r := range w.replicas {
		if r.id == id {
			return r
		}
	}
	w.t.Fatalf("no replica %q", id)
	return nil
}

// socket is the replica's control socket.
func (r *haReplica) socket(w *haWorld) string { return filepath.Join(w.proxy.dir, r.id+".sock") }

// status is what `perch status -o json` says on the replica's socket.
func (w *haWorld) status(r *haReplica) map[string]any {
	w.t.Helper()
	bin, err := perchBinary()
	if err != nil {
		w.t.Fatal(err)
	}
	out, err := exec.Command(bin, "status", "--socket", r.socket(w), "-o", "json").Output()
	var resp struct{ Status map[string]any }
	if err != nil || json.Unmarshal(out, &resp) != nil {
		w.t.Logf("perch status on %s: %v\n%s", r.id, err, out)
	}
	return resp.Status
}

// leader is the replica leading now, once one does.
func (w *haWorld) leader(not string) *haReplica {
	w.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if id, err := w.reader.Leader(context.Background()); err == nil && id != "" && id != not {
			return w.replica(id)
		}
	}
	w.t.Fatal("no replica led within 30s")
	return nil
}

// events is the journal in etcd now.
func (w *haWorld) events() []engine.Event {
	rec, err := w.reader.Load(context.Background())
	if err != nil {
		w.t.Fatalf("the journal in the store does not read back: %v", err)
	}
	if rec == nil {
		return nil
	}
	return rec.Events
}

// waitFor waits until the journal holds the nth event of type typ and returns its seq.
func (w *haWorld) waitFor(typ engine.EventType, nth int) int64 {
	w.t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		seen := 0
		for _, ev := range w.events() {
			if ev.Type == typ {
				if seen++; seen == nth {
					return ev.Seq
				}
			}
		}
	}
	w.t.Fatalf("no %d× %s in etcd after a minute; replicas:\n%s", nth, typ, w.logs())
	return 0
}

func (w *haWorld) logs() string {
	var b strings.Builder
	for _, r := range w.replicas {
		fmt.Fprintf(&b, "--- %s stderr:\n%s\n", r.id, r.stderr)
	}
	return b.String()
}

// printed is the seqs of the events a replica journaled, from its JSON lines on stdout.
func (r *haReplica) printed() []int64 {
	var seqs []int64
	sc := bufio.NewScanner(bytes.NewReader([]byte(r.stdout.String())))
	for sc.Scan() {
		var ev struct{ Seq int64 }
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Seq > 0 {
			seqs = append(seqs, ev.Seq)
		}
	}
	return seqs
}

// finish waits for every replica still running to exit, and returns their exit codes.
func (w *haWorld) finish() map[string]int {
	w.t.Helper()
	codes := map[string]int{}
	timeout := time.After(time.Minute)
	for _, r := range w.replicas {
		select {
		case <-r.done:
		case <-timeout:
			w.t.Fatalf("replica %s did not finish in a minute;\n%s", r.id, w.logs())
		}
		codes[r.id] = r.cmd.ProcessState.ExitCode()
	}
	return codes
}

// check asserts what every takeover must keep, from the journal in etcd: one start, steps in
// order, each once, only named weights, replicas' events never interleaved, every event key
// written once, and the outcome of an uninterrupted run.
func (w *haWorld) check(want engine.Phase, steps []engine.StepStatus, weight int) []engine.Event {
	w.t.Helper()
	evs := w.events()
	lastStep, starts := -1, 0
	for _, ev := range evs {
		switch ev.Type {
		case engine.EventRolloutStarted:
			if starts++; starts > 1 {
				w.t.Errorf("event %d: the rollout started over", ev.Seq)
			}
		case engine.EventStepStarted:
			if ev.Step != lastStep+1 {
				w.t.Errorf("event %d: step %d started after step %d (a step restarted or was skipped)", ev.Seq, ev.Step+1, lastStep+1)
			}
			lastStep = ev.Step
		case engine.EventWeightSet:
			if !slices.Contains([]int{0, 20, 50, 80, 100}, *ev.Weight) {
				w.t.Errorf("event %d: traffic moved to %d%%, which no step names", ev.Seq, *ev.Weight)
			}
		}
	}
	if starts != 1 {
		w.t.Errorf("%d rollout_started events, want exactly 1", starts)
	}
	// Attribute each event to the replica that printed it: once a replica's events follow
	// another's, the earlier one never appears again.
	by := map[int64]string{}
	for _, r := range w.replicas {
		for _, seq := range r.printed() {
			if other, ok := by[seq]; ok {
				w.t.Errorf("event %d journaled by both %s and %s", seq, other, r.id)
			}
			by[seq] = r.id
		}
	}
	var order []string
	for _, ev := range evs {
		id, ok := by[ev.Seq]
		if !ok || len(order) > 0 && order[len(order)-1] == id {
			continue
		}
		if slices.Contains(order, id) {
			w.t.Errorf("event %d (%s) by %s after %v had led: replicas' actions interleaved", ev.Seq, ev.Type, id, order)
		}
		order = append(order, id)
	}
	if w.store != nil {
		resp, err := w.store.Client().Get(context.Background(), w.prefix+"/ha/events/", clientv3.WithPrefix())
		if err != nil {
			w.t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			if kv.Version != 1 {
				w.t.Errorf("%s was written %d times", kv.Key, kv.Version)
			}
		}
	}
	st := engine.NewState(w.store2spec())
	for _, ev := range evs {
		st.Apply(ev)
	}
	if st.Phase != want || st.Weight != weight {
		w.t.Errorf("the rollout ended %s at %d%%, want %s at %d%% (as uninterrupted)", st.Phase, st.Weight, want, weight)
	}
	for i, s := range steps {
		if st.Steps[i].Status != s {
			w.t.Errorf("step %d ended %s, want %s (as uninterrupted)", i+1, st.Steps[i].Status, s)
		}
	}
	if got := w.proxy.weight(); got != weight {
		w.t.Errorf("the proxy is at %d%%, want %d%%", got, weight)
	}
	return evs
}

func (w *haWorld) store2spec() *spec.Rollout {
	rec, err := w.reader.Load(context.Background())
	if err != nil || rec == nil {
		w.t.Fatalf("no journal in the store: %v", err)
	}
	return rec.Header.Spec
}

func countType(evs []engine.Event, typ engine.EventType) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// TestHAKillLeader kills the leader with SIGKILL at several points of a rollout; a standby
// takes over and the rollout ends as an uninterrupted one does.
func TestHAKillLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs perch replicas against a real etcd")
	}
	ep := etcdtest.Start(t)
	for i, c := range killCases() {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newHAWorld(t, ep, fmt.Sprintf("/kill%d", i), c.failing))
		})
	}
}

// killCase is a point in a rollout to kill the leader at, and how the rollout must end.
type killCase struct {
	name    string
	failing bool
	at      engine.EventType
	nth     int
	kills   int
	want    engine.Phase
	steps   []engine.StepStatus
	weight  int
}

func killCases() []killCase {
	passed := []engine.StepStatus{engine.StepPassed, engine.StepPassed, engine.StepPassed}
	return []killCase{
		// The second look of step 1 is under way right after the first is journaled.
		{name: "mid-look", at: engine.EventAnalysis, nth: 1, kills: 1, want: engine.PhasePromoted, steps: passed, weight: 100},
		// Step 2's weight is being set right after it started.
		{name: "mid-weight-change", at: engine.EventStepStarted, nth: 2, kills: 2, want: engine.PhasePromoted, steps: passed, weight: 100},
		// The canary fails: kill as the rollback begins, before traffic is back on stable.
		{name: "during-rollback", failing: true, at: engine.EventRollbackStarted, nth: 1, kills: 1, want: engine.PhaseRolledBack,
			steps: []engine.StepStatus{engine.StepFailed}, weight: 0},
	}
}

// run starts three replicas in w, kills the leader at the case's point, and checks the end.
func (c killCase) run(t *testing.T, w *haWorld) {
	w.start(3)
	leader, killed := w.leader(""), 0
	for k := 0; k < c.kills; k++ {
		w.waitFor(c.at, c.nth+k)
		killedAt := time.Now()
		leader.cmd.Process.Signal(syscall.SIGKILL)
		<-leader.done
		if evs := w.events(); len(evs) > 0 && (evs[len(evs)-1].Type == engine.EventRolledBack || evs[len(evs)-1].Type == engine.EventPromoted) {
			// On a busy machine the leader can finish before the kill lands: then there is
			// nothing to take over, and the end is checked below as for any run.
			t.Logf("the kill of %s landed after the rollout ended (%s); no takeover to check", leader.id, evs[len(evs)-1].Type)
			break
		}
		killed++
		next := w.leader(leader.id)
		before := len(w.events())
		for len(w.events()) == before && time.Since(killedAt) < 30*time.Second {
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("killed %s; %s wrote its first event %s later", leader.id, next.id, time.Since(killedAt).Round(time.Millisecond))
		leader = next
	}
	codes := w.finish()
	wantCode := exitOK
	if c.want == engine.PhaseRolledBack {
		wantCode = exitRolledBack
	}
	for id, code := range codes {
		if code != wantCode && code != -1 { // -1: killed
			t.Errorf("replica %s exited %d, want %d;\n%s", id, code, wantCode, w.logs())
		}
	}
	evs := w.check(c.want, c.steps, c.weight)
	if n := countType(evs, engine.EventReconciled); n < killed {
		t.Errorf("%d reconciled events after %d takeovers: a standby did not resume as --resume does", n, killed)
	}
}

// TestHAStandbySocketCommands steers the rollout through standbys' control sockets: a pause
// lands on the leader, journaled with the operator's identity; a resume sent while the leader
// is killed (kill -9) is applied once or reported as failed, never twice; the rollout ends as
// an uninterrupted one.
func TestHAStandbySocketCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs perch replicas against a real etcd")
	}
	ep := etcdtest.Start(t)
	w := newHAWorld(t, ep, "/steer", false)
	w.start(3)
	leader := w.leader("")
	standbys, steer := pauseThroughStandby(t, w)

	// Resume through a standby while the leader is killed.
	resumed := make(chan error, 1)
	go func() {
		out, err := steer(standbys[0], "resume")
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
		resumed <- err
	}()
	time.Sleep(20 * time.Millisecond)
	leader.cmd.Process.Signal(syscall.SIGKILL)
	<-leader.done
	resumeErr := <-resumed
	next := w.leader(leader.id)
	n := countType(w.events(), engine.EventResumed)
	t.Logf("resume while the leader was killed: %v; %d resumed event(s); %s leads now", resumeErr, n, next.id)
	switch {
	case n > 1:
		t.Fatalf("the resume was applied %d times", n)
	case resumeErr == nil && n != 1:
		t.Fatalf("the resume was reported applied, but the journal has %d resumed events", n)
	case n == 0: // reported failed and not applied: resume again, through whichever replica is not the leader
		via := standbys[0]
		if via == next {
			via = standbys[1]
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			out, err := steer(via, "resume")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("resume through %s: %v\n%s", via.id, err, out)
			}
		}
	}
	w.finish()
	evs := w.check(engine.PhasePromoted, []engine.StepStatus{engine.StepPassed, engine.StepPassed, engine.StepPassed}, 100)
	if n := countType(evs, engine.EventResumed); n != 1 {
		t.Errorf("%d resumed events; want 1", n)
	}
}

// userName is the user running the test, as the control socket names it.
func userName(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestHAPausedLeaderStopsActing pauses the leader (SIGSTOP) past its lease, lets a standby take
// over, then wakes it (SIGCONT): it must write nothing more and exit, and the rollout ends as
// an uninterrupted one.
func TestHAPausedLeaderStopsActing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs perch replicas against a real etcd")
	}
	ep := etcdtest.Start(t)
	w := newHAWorld(t, ep, "/pause", false)
	w.start(3)
	old := w.leader("")
	w.waitFor(engine.EventWeightSet, 1)
	for _, r := range w.replicas {
		want := map[string]any{"role": "standby", "leader": old.id, "phase": "running"}
		if r == old {
			want["role"] = "leader"
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			st, ok := w.status(r), true
			for k, v := range want {
				ok = ok && st[k] == v
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("perch status on %s = %v, want %v;\n%s", r.id, st, want, w.logs())
			}
		}
	}
	old.cmd.Process.Signal(syscall.SIGSTOP)
	stoppedAt := time.Now()
	next := w.leader(old.id)
	reconciled := w.waitFor(engine.EventReconciled, 1)
	t.Logf("paused %s; %s resumed the rollout %s later", old.id, next.id, time.Since(stoppedAt).Round(time.Millisecond))
	rev, err := w.store.Client().Get(context.Background(), "/pause/ha/header")
	if err != nil {
		t.Fatal(err)
	}
	old.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-old.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("the woken leader did not exit;\n%s", w.logs())
	}
	if code := old.cmd.ProcessState.ExitCode(); code != exitRuntime {
		t.Errorf("the woken leader exited %d, want %d (stopped)", code, exitRuntime)
	}
	if !strings.Contains(old.stderr.String(), "no longer the rollout's leader") {
		t.Errorf("the woken leader did not say it lost the lead:\n%s", old.stderr)
	}
	for _, seq := range old.printed() {
		if seq >= reconciled {
			t.Errorf("the woken leader journaled event %d after %s took over at %d", seq, next.id, reconciled)
		}
	}
	w.finish()
	evs := w.check(engine.PhasePromoted, []engine.StepStatus{engine.StepPassed, engine.StepPassed, engine.StepPassed}, 100)
	// From etcd's own history: every put under the rollout since the woken leader resumed is
	// an event the new leader printed.
	mine := map[int64]bool{}
	for _, r := range w.replicas {
		if r != old {
			for _, s := range r.printed() {
				mine[s] = true
			}
		}
	}
	hist, err := w.store.Client().Get(context.Background(), "/pause/ha/events/", clientv3.WithPrefix(), clientv3.WithMinModRev(rev.Header.Revision+1))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range hist.Kvs {
		var ev engine.Event
		if json.Unmarshal(kv.Value, &ev) != nil || !mine[ev.Seq] {
			t.Errorf("%s was written after the old leader woke, by no live replica", kv.Key)
		}
	}
	if n := countType(evs, engine.EventStopped); n != 0 {
		t.Errorf("%d stopped events: the woken leader recorded its stop", n)
	}
}

// TestServeHAStandbyOverRealSSH serves one rollout from two in-process replicas sharing one
// provider: an operator on the standby's SSH sees the rollout live and pauses it there (the
// standby relays the command to the leader); when the leader stops, the standby takes over
// (journaling reconciled), and the operator, reconnected, steers it.
func TestServeHAStandbyOverRealSSH(t *testing.T) {
	requireOpenSSH(t)
	ep := etcdtest.Start(t)
	dir := t.TempDir()
	alice, alicePub, _ := sshKey(t, dir, "alice")
	os.WriteFile(filepath.Join(dir, "operators"), []byte(alicePub), 0o600)
	rollout := filepath.Join(dir, "rollout.yaml")
	os.WriteFile(rollout, []byte(`name: served-api
traffic: {istio: {virtualService: web, stable: {host: web, subset: stable}, canary: {host: web, subset: canary}}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {interval: 1s, stabilization: 0s, judge: threshold}
checks:
  - {name: latency, canary: lat_canary, baseline: lat_stable, direction: lower_is_better, maxDeviationPercent: 20}
steps:
  - {setWeight: 10, analyze: 10m}
  - {setWeight: 30, analyze: 10m}
`), 0o644)
	provider := &memBackend{}
	type replica struct {
		stderr *lockedBuffer
		stop   context.CancelFunc
		exit   chan int // receives the exit code once
		done   chan struct{}
	}
	start := func(id string) *replica {
		r := &replica{stderr: &lockedBuffer{}, exit: make(chan int, 1), done: make(chan struct{})}
		ctx, stop := context.WithCancel(context.Background())
		r.stop = stop
		a := &app{stdout: &lockedBuffer{}, stderr: r.stderr, registry: memRegistry(provider), getenv: func(string) string { return "" }}
		go func() {
			defer close(r.done)
			r.exit <- a.main(ctx, []string{"serve", rollout, "--ssh", "127.0.0.1:0", "--operator-keys", filepath.Join(dir, "operators"),
				"--host-key", filepath.Join(dir, "host-"+id), "--socket", "none", "--hold-open", "0s",
				"--ha", "etcd://" + ep + "/serve", "--ha-lease", "2s", "--ha-id", id})
		}()
		t.Cleanup(func() {
			stop()
			<-r.done
		})
		return r
	}
	portRE := regexp.MustCompile(`ssh -p (\d+) 127\.0\.0\.1`)
	port := func(r *replica, nth int) string {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if m := portRE.FindAllStringSubmatch(r.stderr.String(), -1); len(m) >= nth {
				return m[nth-1][1]
			}
		}
		t.Fatalf("no %d× SSH port announced:\n%s", nth, r.stderr)
		return ""
	}
	leader := start("a")
	port(leader, 1) // a's standby server
	port(leader, 2) // a leads and serves again
	standby := start("b")
	ssh := func(p string) []string {
		return []string{"ssh", "-tt", "-p", p, "-i", alice, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "alice@127.0.0.1"}
	}
	view := tmuxtest.Start(t, tmuxtest.Options{Width: 120, Height: 40, Dir: dir, Command: ssh(port(standby, 1))})
	view.WaitFor("the standby shows the rollout live", "served-api", "step 1/2", "RUNNING", "standby replica: commands go to the leader")
	view.Key("p")
	view.WaitFor("alice pauses through the standby: the leader acts, the standby shows it", "PAUSED", "paused by alice")

	leader.stop()
	if code := <-leader.exit; code != exitRuntime {
		t.Errorf("the stopped leader exited %d, want %d", code, exitRuntime)
	}
	view2 := view.Window("again", nil, ssh(port(standby, 2))...)
	view2.WaitFor("the new leader's session, still paused", "served-api", "step 1/2", "PAUSED")
	if strings.Contains(view2.Screen(), "standby replica") {
		t.Errorf("the leader's session still says standby:\n%s", view2.Screen())
	}
	view2.Key("p")
	view2.WaitFor("alice resumes through the new leader", "RUNNING")

	s, err := etcd.Open(context.Background(), etcd.Config{Endpoints: []string{ep}, Prefix: "/serve", ID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec, err := s.Rollout("served-api").Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range rec.Events {
		types = append(types, string(ev.Type))
		if ev.Type == engine.EventPaused && (ev.Actor == nil || ev.Actor.Name != "alice" || ev.Actor.Source != "ssh" || ev.Actor.Role != engine.RoleOperator || ev.Actor.Fingerprint == "") {
			t.Errorf("the pause relayed from the standby was journaled as %+v; want alice's, over ssh, with her key's fingerprint", ev.Actor)
		}
	}
	got := strings.Join(types, " ")
	if !strings.Contains(got, "paused stopped reconciled") || !strings.Contains(got, "resumed") || strings.Count(got, "paused") != 1 || strings.Count(got, "rollout_started") != 1 {
		t.Errorf("journal in etcd: %s; want one start, alice's pause (once), the leader's stop, the standby's reconciled and alice's resume", got)
	}
}

func TestHAFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ha-lease", "5s"}, "go with --ha"},
		{[]string{"--ha", "etcd://127.0.0.1:1/p", "--ha-lease", "1500ms"}, "whole seconds"},
		{[]string{"--ha", "etcd://127.0.0.1:1/p", "--resume", "--journal", "j.jsonl"}, "the journal lives in etcd"},
		{[]string{"--ha", "http://127.0.0.1:1/p"}, "want etcd://"},
	} {
		code, _, stderr := runPerch(t, "", append([]string{"run", "testdata/none.yaml", "--headless"}, c.args...)...)
		if code != exitBadInput || !strings.Contains(stderr, c.want) {
			t.Errorf("run %v: exit %d, %q; want exit 2 saying %q", c.args, code, stderr, c.want)
		}
	}
	// A proxy inside perch would die with its replica.
	file := filepath.Join(t.TempDir(), "inproc.yaml")
	os.WriteFile(file, []byte(`name: inproc
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {builtin: {}}
steps:
  - setWeight: 10
`), 0o644)
	code, _, stderr := runPerch(t, "", "run", file, "--headless", "--ha", "etcd://127.0.0.1:1/p")
	if code != exitBadInput || !strings.Contains(stderr, "standalone perch proxy") {
		t.Errorf("run --ha with a proxy inside perch: exit %d, %q", code, stderr)
	}
}

// TestHARunStandbyTerminal: perch run --ha in a terminal, standing by, shows the rollout as
// the leader runs it and says its commands go to the leader; a pause typed there reaches the
// leader (journaled as the terminal's user); once the leader is killed it takes over in the
// same terminal, its view now the leader's, the rollout still paused.
func TestHARunStandbyTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs perch replicas against a real etcd, in tmux")
	}
	tmuxtest.Require(t)
	ep := etcdtest.Start(t)
	w := newHAWorld(t, ep, "/term", false)
	text, err := os.ReadFile(w.rollout)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Replace(string(text), "analyze: 2s", "analyze: 60s", 1)
	if err := os.WriteFile(w.rollout, []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	w.start(1)
	w.waitFor(engine.EventAnalysisStarted, 1)
	leader := w.replicas[0]
	bin, err := perchBinary()
	if err != nil {
		t.Fatal(err)
	}
	view := tmuxtest.Start(t, tmuxtest.Options{Width: 140, Height: 40, Dir: w.proxy.dir, Env: []string{"USER=carol"},
		Command: []string{bin, "run", w.rollout, "--socket", "none", "--ha", w.ha, "--ha-lease", haLease, "--ha-id", "term"}})
	view.WaitFor("the standby shows the rollout live", "RUNNING", "step 1/3", "standby replica: commands go to the leader")
	view.Key("p")
	view.WaitFor("carol's pause reaches the leader, and the standby shows it", "PAUSED", "paused by carol")

	leader.cmd.Process.Signal(syscall.SIGKILL)
	<-leader.done
	w.waitFor(engine.EventReconciled, 1)
	view.WaitGone("the terminal's view becomes the leader's", "standby replica")
	view.WaitFor("the new leader's view, still paused", "PAUSED", "step 1/3")
	if id, _ := w.reader.Leader(context.Background()); id != "term" {
		t.Errorf("leader %q after the kill, want the terminal's replica (term)", id)
	}
	var paused []engine.Event
	for _, ev := range w.events() {
		if ev.Type == engine.EventPaused {
			paused = append(paused, ev)
		}
	}
	if len(paused) != 1 || paused[0].Actor == nil || paused[0].Actor.Name != "carol" || paused[0].Actor.Source != "tui" {
		t.Errorf("paused events %+v; want one, carol's from the terminal", paused)
	}
}

// pauseThroughStandby pauses w's rollout through a standby's control socket and checks that
// the leader took it once, journaled with the operator's identity and reason, and that another
// standby shows it. It returns the standbys and how to steer one.
func pauseThroughStandby(t *testing.T, w *haWorld) ([]*haReplica, func(r *haReplica, verb string) ([]byte, error)) {
	t.Helper()
	leader := w.leader("")
	var standbys []*haReplica
	for _, r := range w.replicas {
		if r != leader {
			standbys = append(standbys, r)
		}
	}
	bin, err := perchBinary()
	if err != nil {
		t.Fatal(err)
	}
	steer := func(r *haReplica, verb string) ([]byte, error) {
		return exec.Command(bin, verb, "--socket", r.socket(w), "--reason", verb+" via "+r.id, "-o", "json").CombinedOutput()
	}
	w.waitFor(engine.EventAnalysis, 1)
	if out, err := steer(standbys[0], "pause"); err != nil || !strings.Contains(string(out), `"phase":"paused"`) {
		t.Fatalf("perch pause on standby %s: %v\n%s\n%s", standbys[0].id, err, out, w.logs())
	}
	me := userName(t)
	var paused []engine.Event
	for _, ev := range w.events() {
		if ev.Type == engine.EventPaused {
			paused = append(paused, ev)
		}
	}
	if len(paused) != 1 || paused[0].Actor == nil || paused[0].Actor.Name != me || paused[0].Actor.Source != "socket" ||
		paused[0].Actor.Role != engine.RoleOperator || paused[0].Reason != "pause via "+standbys[0].id {
		t.Fatalf("paused events %+v; want one, by %s on the socket, with the reason", paused, me)
	}
	if got := w.status(standbys[1])["phase"]; got != "paused" {
		t.Errorf("the other standby's status says %v; want paused", got)
	}
	return standbys, steer
}
