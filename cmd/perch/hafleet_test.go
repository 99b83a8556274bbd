package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica/etcd"
	"github.com/perchhq/perch/engine/replica/etcd/etcdtest"
	hakube "github.com/perchhq/perch/engine/replica/kube"
	"github.com/perchhq/perch/providers/kube/kubetest"
)

// haFleetWorld is a directory of rollouts, each driving its own standalone perch proxy, shared
// by perch serve --rollouts replicas meeting in one store.
type haFleetWorld struct {
	t        *testing.T
	store    haFleetStore
	dir      string // the rollouts
	work     string // sockets, keys
	replicas []*haReplica
}

// haFleetStore is where the replicas meet: --ha and the flags that reach it, and how the
// test reads each rollout's leader and journal there.
type haFleetStore struct {
	ha     string
	extra  []string
	reader func(name string) haReader
}

// haFleetStores runs f against each store: a real etcd, and the Kubernetes API server fake.
func haFleetStores(t *testing.T, f func(t *testing.T, store haFleetStore)) {
	t.Run("etcd", func(t *testing.T) {
		ep := etcdtest.Start(t)
		s, err := etcd.Open(context.Background(), etcd.Config{Endpoints: []string{ep}, Prefix: "/fleet", ID: "test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, haFleetStore{ha: "etcd://" + ep + "/fleet", reader: func(name string) haReader { return s.Rollout(name) }})
	})
	t.Run("kubernetes", func(t *testing.T) {
		ts := httptest.NewServer(kubetest.NewAPIServer())
		t.Cleanup(ts.Close)
		cs, err := kubernetes.NewForConfig(&rest.Config{Host: ts.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}, QPS: 1000, Burst: 1000})
		if err != nil {
			t.Fatal(err)
		}
		s, err := hakube.Open(context.Background(), hakube.Config{Client: cs, Namespace: "shop", Name: "fleet", ID: "test"})
		if err != nil {
			t.Fatal(err)
		}
		f(t, haFleetStore{ha: "kubernetes://shop/fleet", extra: []string{"--kubeconfig", kubetest.Kubeconfig(t, ts.URL, "shop")},
			reader: func(name string) haReader { return s.Rollout(name) }})
	})
}

func newHAFleetWorld(t *testing.T, store haFleetStore, rollouts map[string]string) *haFleetWorld {
	t.Helper()
	stable := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("stable\n")) }))
	canary := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("canary\n")) }))
	t.Cleanup(stable.Close)
	t.Cleanup(canary.Close)
	work, err := os.MkdirTemp("", "perch-hafleet") // short: it holds sockets
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	w := &haFleetWorld{t: t, store: store, dir: filepath.Join(work, "rollouts"), work: work}
	os.Mkdir(w.dir, 0o755)
	for name, rest := range rollouts {
		p := newProxyService(t, stable.URL, canary.URL)
		p.start()
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); load(ctx, "http://"+p.listen+"/") }()
		t.Cleanup(func() { stop(); <-done })
		text := fmt.Sprintf(`name: %s
traffic: {proxy: {admin: "unix://%s"}}
metrics: {builtin: {}}
analysis: {interval: 1s, stabilization: 250ms, judge: threshold}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.05, critical: true}
%s`, name, p.socket, rest)
		if err := os.WriteFile(filepath.Join(w.dir, name+".yaml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(work, "operators"), []byte(operatorKey(t)), 0o600)
	return w
}

// start runs n replicas of perch serve --rollouts, r1…rn, each leading at most maxLeading.
func (w *haFleetWorld) start(n, maxLeading int) {
	w.t.Helper()
	bin, err := perchBinary()
	if err != nil {
		w.t.Fatal(err)
	}
	for range n {
		r := &haReplica{id: fmt.Sprintf("r%d", len(w.replicas)+1), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
		r.cmd = exec.Command(bin, "serve", "--rollouts", w.dir, "-o", "json", "--socket", w.socket(r),
			"--ssh", "127.0.0.1:0", "--operator-keys", filepath.Join(w.work, "operators"), "--host-key", filepath.Join(w.work, r.id+".key"),
			"--ha", w.store.ha, "--ha-lease", haLease, "--ha-id", r.id, "--ha-max-leading", fmt.Sprint(maxLeading))
		r.cmd.Args = append(r.cmd.Args, w.store.extra...)
		r.cmd.Dir = w.work
		r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
		if err := r.cmd.Start(); err != nil {
			w.t.Fatal(err)
		}
		go func() { r.cmd.Wait(); close(r.done) }()
		w.t.Cleanup(func() {
			r.cmd.Process.Kill()
			<-r.done
		})
		w.replicas = append(w.replicas, r)
	}
}

func (w *haFleetWorld) socket(r *haReplica) string { return filepath.Join(w.work, r.id+".sock") }

// fleetSummary is one rollout as `perch status -o json` lists it.
type fleetSummary struct {
	Name, Phase, Role, Leader string
}

// status is every rollout as the replica's `perch status -o json` lists them, by name; nil if
// it does not answer.
func (w *haFleetWorld) status(r *haReplica) map[string]fleetSummary {
	bin, _ := perchBinary()
	out, err := exec.Command(bin, "status", "--socket", w.socket(r), "-o", "json").Output()
	var resp struct{ Rollouts []fleetSummary }
	if err != nil || json.Unmarshal(out, &resp) != nil {
		return nil
	}
	m := map[string]fleetSummary{}
	for _, s := range resp.Rollouts {
		m[s.Name] = s
	}
	return m
}

// leaders is who leads each rollout, from the store's elections.
func (w *haFleetWorld) leaders(names ...string) map[string]string {
	m := map[string]string{}
	for _, n := range names {
		id, _ := w.store.reader(n).Leader(context.Background())
		m[n] = id
	}
	return m
}

func (w *haFleetWorld) events(name string) []engine.Event {
	rec, err := w.store.reader(name).Load(context.Background())
	if err != nil || rec == nil {
		return nil
	}
	return rec.Events
}

func (w *haFleetWorld) phase(name string) engine.Phase {
	rec, err := w.store.reader(name).Load(context.Background())
	if err != nil || rec == nil {
		return ""
	}
	return rec.Fold().Phase
}

func (w *haFleetWorld) logs() string {
	var b strings.Builder
	for _, r := range w.replicas {
		fmt.Fprintf(&b, "--- %s stderr:\n%s\n", r.id, r.stderr)
	}
	return b.String()
}

// waitUntil polls ok for up to a minute.
func (w *haFleetWorld) waitUntil(what string, ok func() bool) {
	w.t.Helper()
	for deadline := time.Now().Add(time.Minute); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			w.t.Fatalf("after a minute, still not: %s;\n%s", what, w.logs())
		}
	}
}

// TestHAFleetSharesRollouts runs three rollouts over three replicas with a cap of two leads
// each: every rollout is led by exactly one replica and every replica's status agrees on who;
// the replica leading the longest rollout is killed (kill -9) and its rollouts are taken over
// and finish; the rollout that depends on another starts, wherever it is led, only once that
// one promoted.
func TestHAFleetSharesRollouts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs perch replicas against a real etcd and the Kubernetes API server fake")
	}
	haFleetStores(t, testHAFleetSharesRollouts)
}

func testHAFleetSharesRollouts(t *testing.T, store haFleetStore) {
	w := newHAFleetWorld(t, store, map[string]string{
		"api":    "steps:\n  - {setWeight: 20, analyze: 2s}\n  - {setWeight: 60, analyze: 2s}\n",
		"worker": "steps:\n  - {setWeight: 20, analyze: 3s}\n  - {setWeight: 50, analyze: 3s}\n  - {setWeight: 80, analyze: 3s}\n",
		"web":    "dependsOn: [api]\nsteps:\n  - {setWeight: 50, analyze: 2s}\n",
	})
	w.start(3, 2)
	names := []string{"api", "web", "worker"}

	// api and worker start at once, each led by one replica; every replica's status names the
	// same leaders, and says whether it is the leader or a standby.
	var led map[string]string
	w.waitUntil("api and worker led, and every replica's status agreeing", func() bool {
		led = w.leaders("api", "worker")
		if led["api"] == "" || led["worker"] == "" {
			return false
		}
		for _, r := range w.replicas {
			st := w.status(r)
			for _, n := range []string{"api", "worker"} {
				want := "standby"
				if led[n] == r.id {
					want = "leader"
				}
				if st[n].Leader != led[n] || st[n].Role != want {
					return false
				}
			}
		}
		return true
	})
	t.Logf("leaders: %v", led)
	for _, r := range w.replicas {
		n := 0
		for _, id := range led {
			if id == r.id {
				n++
			}
		}
		if n > 2 {
			t.Errorf("%s leads %d rollouts, over its cap of 2", r.id, n)
		}
	}

	// A command sent to a standby's socket reaches worker's leader, with the operator's name.
	w.waitUntil("worker begun", func() bool { return len(w.events("worker")) > 2 })
	standby := w.replicas[slices.IndexFunc(w.replicas, func(r *haReplica) bool { return r.id != led["worker"] })]
	bin, _ := perchBinary()
	for _, verb := range []string{"pause", "resume"} {
		out, err := exec.Command(bin, verb, "worker", "--socket", w.socket(standby), "--reason", verb+" via "+standby.id, "-o", "json").CombinedOutput()
		if err != nil {
			t.Fatalf("perch %s worker on standby %s: %v\n%s\n%s", verb, standby.id, err, out, w.logs())
		}
	}
	var steered []engine.Event
	for _, ev := range w.events("worker") {
		if ev.Type == engine.EventPaused || ev.Type == engine.EventResumed {
			steered = append(steered, ev)
		}
	}
	if len(steered) != 2 || steered[0].Type != engine.EventPaused || steered[0].Actor == nil || steered[0].Actor.Name != userName(t) ||
		steered[0].Reason != "pause via "+standby.id {
		t.Errorf("worker's journal has %+v; want a pause then a resume, relayed from %s with the operator's name", steered, standby.id)
	}

	// Kill the replica leading worker.
	victim := w.replicas[slices.IndexFunc(w.replicas, func(r *haReplica) bool { return r.id == led["worker"] })]
	victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.done
	w.waitUntil("worker taken over", func() bool {
		id := w.leaders("worker")["worker"]
		return id != "" && id != victim.id
	})

	webLeaders := map[string]bool{}
	for _, n := range names {
		w.waitUntil(n+" promoted", func() bool {
			if id := w.leaders("web")["web"]; id != "" {
				webLeaders[id] = true
			}
			return w.phase(n) == engine.PhasePromoted
		})
	}
	t.Logf("killed %s, which led worker; web was led by %v", victim.id, webLeaders)
	// web started only after api promoted, and exactly once; worker started once too.
	apiEvs, webEvs := w.events("api"), w.events("web")
	var promoted, started time.Time
	for _, ev := range apiEvs {
		if ev.Type == engine.EventPromoted {
			promoted = ev.Time
		}
	}
	for _, ev := range webEvs {
		if ev.Type == engine.EventRolloutStarted && started.IsZero() {
			started = ev.Time
		}
	}
	if promoted.IsZero() || started.IsZero() || started.Before(promoted) {
		t.Errorf("web started at %v, api promoted at %v: the wave did not wait", started, promoted)
	}
	for _, n := range names {
		if c := countType(w.events(n), engine.EventRolloutStarted); c != 1 {
			t.Errorf("%s: %d rollout_started events, want 1", n, c)
		}
	}
	if c := countType(w.events("worker"), engine.EventReconciled); c < 1 {
		t.Errorf("worker: no reconciled event: the takeover did not resume as --resume does")
	}
	// Every surviving replica's status shows every rollout promoted.
	for _, r := range w.replicas {
		if r == victim {
			continue
		}
		w.waitUntil(r.id+" shows every rollout promoted", func() bool {
			st := w.status(r)
			for _, n := range names {
				if st[n].Phase != string(engine.PhasePromoted) {
					return false
				}
			}
			return true
		})
	}
	if t.Failed() {
		t.Log(w.logs())
	}
}

// TestHAMaxLeadingRefused: the cap goes with --ha and is not negative.
func TestHAMaxLeadingRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ha-max-leading", "2"}, "go with --ha"},
		{[]string{"--ha", "etcd://127.0.0.1:1/p", "--ha-max-leading", "-1"}, "want 0 (no cap) or more"},
	} {
		code, _, stderr := runPerch(t, "", append([]string{"run", "testdata/none.yaml", "testdata/none2.yaml", "--headless"}, c.args...)...)
		if code != exitBadInput || !strings.Contains(stderr, c.want) {
			t.Errorf("run %v: exit %d, %q; want exit 2 saying %q", c.args, code, stderr, c.want)
		}
	}
}

// TestHAFleetCapHoldsBackLeads: one replica with --ha-max-leading 1 over two independent
// rollouts leads one, follows the other unled, and leads it once the first has ended.
func TestHAFleetCapHoldsBackLeads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs perch replicas against a real etcd and the Kubernetes API server fake")
	}
	haFleetStores(t, testHAFleetCapHoldsBackLeads)
}

func testHAFleetCapHoldsBackLeads(t *testing.T, store haFleetStore) {
	steps := "steps:\n  - {setWeight: 50, analyze: 2s}\n"
	w := newHAFleetWorld(t, store, map[string]string{"one": steps, "two": steps})
	w.start(1, 1)
	// Two campaigns may win at the same moment; the one over the cap resigns before acting,
	// so leading is judged from the journals: the second rollout acts only once the first
	// has ended.
	w.waitUntil("both promoted", func() bool {
		return w.phase("one") == engine.PhasePromoted && w.phase("two") == engine.PhasePromoted
	})
	first, second := "one", "two"
	if len(w.events("two")) > 0 && len(w.events("one")) > 0 && w.events("two")[0].Time.Before(w.events("one")[0].Time) {
		first, second = second, first
	}
	var promoted time.Time
	for _, ev := range w.events(first) {
		if ev.Type == engine.EventPromoted {
			promoted = ev.Time
		}
	}
	if start := w.events(second)[0].Time; start.Before(promoted) {
		t.Errorf("%s began at %v, before %s promoted at %v", second, start, first, promoted)
	}
}
