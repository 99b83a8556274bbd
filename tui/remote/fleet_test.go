package remote_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/log"
	gossh "golang.org/x/crypto/ssh"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/tui"
	"github.com/perchhq/perch/tui/remote"
	"github.com/perchhq/perch/tui/tmuxtest"
)

// memRouter holds the weight in memory.
type memRouter struct {
	mu     sync.Mutex
	weight int
}

func (r *memRouter) SetWeight(_ context.Context, w int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.weight = w
	return nil
}

func (r *memRouter) Weight(context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.weight, nil
}

// flatSource answers every query with the same healthy value.
type flatSource struct{}

func (flatSource) Samples(_ context.Context, _ metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: 1})
	}
	return out, nil
}

// engineFleet is real engines in one process, listed every 100 ms.
type engineFleet struct{ engines map[string]*engine.Engine }

func (f *engineFleet) Subscribe() (<-chan []fleet.Status, func()) {
	out := make(chan []fleet.Status, 1)
	stop := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(out)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			list := make([]fleet.Status, 0, len(f.engines))
			for name, e := range f.engines {
				list = append(list, fleet.Status{Name: name, State: e.Snapshot()})
			}
			sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
			select {
			case <-out:
			default:
			}
			out <- list
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return out, func() { once.Do(func() { close(stop) }) }
}

func (f *engineFleet) Rollout(name string) (fleet.Rollout, bool) {
	e, ok := f.engines[name]
	return e, ok
}

// TestFleetOverOpenSSH serves the overview of a fleet of real engines and drives it with the
// real OpenSSH client in tmux, as an operator and a viewer: each sees the overview as
// themselves; the viewer sees the operator in the row of the rollout the operator has open;
// the viewer's bulk pause is refused; the operator's pauses that engine, as the operator.
func TestFleetOverOpenSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ssh is missing: CI must install the Debian package openssh-client (.ci/run)")
		}
		t.Skip("the OpenSSH client is not installed: apt-get install openssh-client")
	}
	tmuxtest.Require(t)
	dir := t.TempDir()
	identity := func(name string) (string, string) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := gossh.MarshalPrivateKey(priv, name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		signer, _ := gossh.NewSignerFromKey(priv)
		return path, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + name
	}
	alice, aliceLine := identity("alice")
	bob, bobLine := identity("bob")
	keys, err := remote.LoadKeyring(writeKeys(t, dir, "ops", aliceLine), writeKeys(t, dir, "viewers", bobLine))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	f := &engineFleet{engines: map[string]*engine.Engine{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, name := range []string{"checkout-eu", "checkout-us"} {
		rollout, err := spec.Parse(name+".yaml", []byte(strings.ReplaceAll(fleetRollout, "NAME", name)))
		if err != nil {
			t.Fatal(err)
		}
		eng, err := engine.New(engine.Config{Spec: rollout, Router: &memRouter{}, Source: flatSource{}})
		if err != nil {
			t.Fatal(err)
		}
		f.engines[name] = eng
		wg.Go(func() { _, _ = eng.Run(ctx) })
	}

	srv, err := remote.New(remote.Config{Addr: "127.0.0.1:0", HostKeyPath: filepath.Join(dir, "host"), Keys: keys, Fleet: f, Logger: log.New(&syncBuffer{}),
		NewModel: func(s remote.Session) tea.Model {
			return tui.NewOverview(tui.OverviewOptions{Fleet: s.Fleet, Actor: s.Actor, Mode: tui.ModeRemote,
				Renderer: s.Renderer, Presence: s.Presence.ByRollout})
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = srv.Serve(ctx, ln) })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ssh := func(key string) []string {
		return []string{"ssh", "-tt", "-p", port, "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "root@127.0.0.1"}
	}

	a := tmuxtest.Start(t, tmuxtest.Options{Width: 160, Height: 30, Command: ssh(alice)})
	b := a.Window("bob", nil, ssh(bob)...)
	a.WaitFor("alice's overview", "perch fleet", "checkout-eu", "checkout-us", "RUNNING", "you are alice (operator)", "p pause/resume")
	b.WaitFor("bob's overview", "perch fleet", "you are bob (viewer)", "p r off: you are a viewer")

	a.Key("Enter") // checkout-eu
	a.WaitFor("alice's dashboard", "CHECKS", "q overview")
	b.WaitFor("alice watches checkout-eu", "WATCHING", "alice")
	screen := b.Screen()
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, "checkout-us") && strings.Contains(l, "alice") {
			t.Errorf("alice shown watching checkout-us: %q", l)
		}
	}

	b.Key("Space")
	b.Key("p")
	b.WaitFor("bob refused", "pause refused", "(bob is a viewer)")
	if ph := f.engines["checkout-eu"].Snapshot().Phase; ph != engine.PhaseRunning {
		t.Fatalf("after the viewer's p checkout-eu is %s", ph)
	}

	a.Key("Escape")
	b.WaitGone("alice is back at the overview", "alice")
	a.Key("Space")
	a.Key("p")
	a.WaitFor("alice asked", "Pause 1 rollout?", "Pause: checkout-eu.")
	a.Key("y")
	a.WaitFor("alice paused", "✔ pause accepted by 1 of 1")
	st := f.engines["checkout-eu"].Snapshot()
	if st.Phase != engine.PhasePaused || st.PausedBy == nil || st.PausedBy.Name != "alice" || st.PausedBy.Source != "ssh" {
		t.Fatalf("checkout-eu is %s, paused by %+v: want paused by alice over ssh", st.Phase, st.PausedBy)
	}
	if ph := f.engines["checkout-us"].Snapshot().Phase; ph != engine.PhaseRunning {
		t.Errorf("checkout-us is %s, want still running", ph)
	}
	b.WaitFor("bob sees it", "PAUSED", "paused by alice")
}

// fleetRollout is the rollout each engine of the fleet runs, NAME replaced.
const fleetRollout = `
name: NAME
traffic:
  istio:
    virtualService: vs
    stable: {host: app, subset: stable}
    canary: {host: app, subset: canary}
metrics:
  prometheus: {address: http://127.0.0.1:9}
analysis: {interval: 1s, stabilization: 1s, judge: threshold}
checks:
  - name: latency
    canary: 'latency{version="canary"}'
    baseline: 'latency{version="stable"}'
    direction: lower_is_better
    maxDeviationPercent: 15
steps:
  - setWeight: 10
    analyze: 10m
  - setWeight: 50
`
