package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/perchhq/perch/engine"
	hakube "github.com/perchhq/perch/engine/replica/kube"
	"github.com/perchhq/perch/providers/kube/kubetest"
)

// newKubeHAWorld is the HA scene with the replicas meeting in a Kubernetes namespace: the
// wire fake of the API server over HTTP, reached through a kubeconfig as in a cluster.
func newKubeHAWorld(t *testing.T, failing bool) (*haWorld, *kubetest.APIServer) {
	t.Helper()
	w := newHAScene(t, failing)
	srv := kubetest.NewAPIServer()
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	w.ha = "kubernetes://shop/perch"
	w.extra = []string{"--kubeconfig", kubetest.Kubeconfig(t, ts.URL, "shop")}
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: ts.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}, QPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	s, err := hakube.Open(context.Background(), hakube.Config{Client: cs, Namespace: "shop", Name: "perch", ID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	w.reader = s.Rollout("ha")
	return w, srv
}

// TestHAKubernetesKillLeader is TestHAKillLeader with --ha kubernetes://: three real replicas
// elect a leader on a Lease and journal into ConfigMaps of the API server fake.
func TestHAKubernetesKillLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs perch replicas")
	}
	for _, c := range killCases() {
		t.Run(c.name, func(t *testing.T) {
			w, srv := newKubeHAWorld(t, c.failing)
			c.run(t, w)
			if names := srv.Names("leases", "shop"); len(names) != 1 || names[0] != "perch-ha" {
				t.Errorf("leases %v, want perch-ha", names)
			}
		})
	}
}

func TestHAKubernetesFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ha", "kubernetes://shop"}, "want kubernetes://NAMESPACE/NAME"},
		{[]string{"--ha", "kubernetes://Shop/perch"}, "lowercase"},
		{[]string{"--ha", "kubernetes://shop/perch", "--ha-cacert", "ca.pem"}, "go with --ha etcd://"},
	} {
		code, _, stderr := runPerch(t, "", append([]string{"run", "testdata/none.yaml", "--headless"}, c.args...)...)
		if code != exitBadInput || !strings.Contains(stderr, c.want) {
			t.Errorf("run %v: exit %d, %q; want exit 2 saying %q", c.args, code, stderr, c.want)
		}
	}
}

// TestHAKubernetesPausedLeaderStopsActing pauses the leader (SIGSTOP) past its lease; a
// standby takes over; woken (SIGCONT), the old leader must write nothing more and exit.
func TestHAKubernetesPausedLeaderStopsActing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs perch replicas")
	}
	w, _ := newKubeHAWorld(t, false)
	w.start(3)
	old := w.leader("")
	w.waitFor(engine.EventWeightSet, 1)
	old.cmd.Process.Signal(syscall.SIGSTOP)
	stoppedAt := time.Now()
	next := w.leader(old.id)
	reconciled := w.waitFor(engine.EventReconciled, 1)
	t.Logf("paused %s; %s resumed the rollout %s later", old.id, next.id, time.Since(stoppedAt).Round(time.Millisecond))
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
	if n := countType(evs, engine.EventStopped); n != 0 {
		t.Errorf("%d stopped events: the woken leader recorded its stop", n)
	}
}

// TestHAKubernetesStandbySocketCommands steers a rollout through standbys' control sockets
// with --ha kubernetes://: a pause given to one standby lands on the leader, journaled with
// the operator's identity, and shows on the other; a resume given to the other is applied
// once; the rollout ends as an uninterrupted one and no command's ConfigMap is left.
func TestHAKubernetesStandbySocketCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs perch replicas")
	}
	w, srv := newKubeHAWorld(t, false)
	w.start(3)
	standbys, steer := pauseThroughStandby(t, w)
	if out, err := steer(standbys[1], "resume"); err != nil {
		t.Fatalf("perch resume on standby %s: %v\n%s\n%s", standbys[1].id, err, out, w.logs())
	}
	w.finish()
	evs := w.check(engine.PhasePromoted, []engine.StepStatus{engine.StepPassed, engine.StepPassed, engine.StepPassed}, 100)
	if n := countType(evs, engine.EventResumed); n != 1 {
		t.Errorf("%d resumed events; want 1", n)
	}
	for _, name := range srv.Names("configmaps", "shop") {
		if strings.Contains(name, "-cmd-") || strings.Contains(name, "-ans-") {
			t.Errorf("configmap %s left behind", name)
		}
	}
}
