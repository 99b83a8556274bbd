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
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/log"
	gossh "golang.org/x/crypto/ssh"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/tui"
	"github.com/perchhq/perch/tui/remote"
	"github.com/perchhq/perch/tui/tmuxtest"
)

// flatSource answers every query with the same healthy value.
type flatSource struct{}

func (flatSource) Samples(_ context.Context, _ metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: 1})
	}
	return out, nil
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
	f := &enginetest.Fleet{Engines: map[string]*engine.Engine{}, Poll: 100 * time.Millisecond}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, name := range []string{"checkout-eu", "checkout-us"} {
		rollout, err := spec.Parse(name+".yaml", []byte(strings.ReplaceAll(fleetRollout, "NAME", name)))
		if err != nil {
			t.Fatal(err)
		}
		eng, err := engine.New(engine.Config{Spec: rollout, Router: &enginetest.Router{}, Source: flatSource{}})
		if err != nil {
			t.Fatal(err)
		}
		f.Engines[name] = eng
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
	waitRow(t, b, "checkout-eu", "alice watches checkout-eu", true)
	for _, l := range strings.Split(b.Screen(), "\n") {
		if strings.Contains(l, "checkout-us") && strings.Contains(l, "alice") {
			t.Errorf("alice shown watching checkout-us: %q", l)
		}
	}

	b.Key("Space")
	b.Key("p")
	b.WaitFor("bob refused", "pause refused", "(bob is a viewer)")
	if ph := f.Engines["checkout-eu"].Snapshot().Phase; ph != engine.PhaseRunning {
		t.Fatalf("after the viewer's p checkout-eu is %s", ph)
	}

	a.Key("Escape")
	waitRow(t, b, "checkout-eu", "alice back at the overview", false)
	b.WaitFor("alice in the header", "at the overview: alice")
	a.Key("Space")
	a.Key("p")
	a.WaitFor("alice asked", "Pause 1 rollout?", "Pause: checkout-eu.")
	a.Key("y")
	a.WaitFor("alice paused", "✔ pause accepted by 1 of 1")
	st := f.Engines["checkout-eu"].Snapshot()
	if st.Phase != engine.PhasePaused || st.PausedBy == nil || st.PausedBy.Name != "alice" || st.PausedBy.Source != "ssh" {
		t.Fatalf("checkout-eu is %s, paused by %+v: want paused by alice over ssh", st.Phase, st.PausedBy)
	}
	if ph := f.Engines["checkout-us"].Snapshot().Phase; ph != engine.PhaseRunning {
		t.Errorf("checkout-us is %s, want still running", ph)
	}
	b.WaitFor("bob sees it", "PAUSED", "paused by alice")
}

// waitRow waits until the row of rollout on s's screen names alice (or no longer does).
func waitRow(t *testing.T, s *tmuxtest.Session, rollout, what string, alice bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, l := range strings.Split(s.Screen(), "\n") {
			if strings.Contains(l, rollout) && strings.Contains(l, "alice") == alice {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never so on the screen:\n%s", what, s.Screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// countingFleet is a fleet of fakeEngines that counts its open list subscriptions.
type countingFleet struct {
	mu      sync.Mutex
	open    int
	engines map[string]*fakeEngine
}

func (f *countingFleet) Subscribe() (<-chan []fleet.Status, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open++
	var once sync.Once
	return make(chan []fleet.Status), func() { // never closed by cancelling, unlike the scoped one
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.open--
		})
	}
}

func (f *countingFleet) Rollout(name string) (fleet.Rollout, bool) {
	e, ok := f.engines[name]
	return e, ok
}

func (f *countingFleet) subscriptions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.open
	for _, e := range f.engines {
		n += e.subscriptions()
	}
	return n
}

// fleetWatcher subscribes to the fleet and opens the rollout named "a" at once, as the
// overview does when enter is pressed; "x" pauses "a" claiming to be someone else.
type fleetWatcher struct {
	s    remote.Session
	list <-chan []fleet.Status
}

func (w *fleetWatcher) Init() tea.Cmd { return nil }
func (w *fleetWatcher) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok && k.String() == "x" {
		r, _ := w.s.Fleet.Rollout("a")
		r.Do(context.Background(), engine.Command{Kind: engine.CommandPause, Actor: engine.Actor{Name: "impostor", Role: engine.RoleOperator}})
	}
	return w, nil
}
func (w *fleetWatcher) View() string { return "watching " + w.s.Actor.Name + "\n" }

// TestFleetSessionsAreScoped: a session's subscriptions to the fleet and to its rollouts end
// with the session however it ends, the list channel it was given closes, presence follows
// which rollout each session watches, and a rollout's commands carry the session's identity.
func TestFleetSessionsAreScoped(t *testing.T) {
	dir := t.TempDir()
	alice := newKey(t, "alice")
	keys, _ := remote.LoadKeyring(writeKeys(t, dir, "ops", alice.line), "")
	cf := &countingFleet{engines: map[string]*fakeEngine{"a": {}, "b": {}}}
	var mu sync.Mutex
	var lists []<-chan []fleet.Status
	f := serveWith(t, remote.Config{Keys: keys, HostKeyPath: filepath.Join(dir, "host"), Fleet: cf,
		NewModel: func(s remote.Session) tea.Model {
			if s.Rollout != nil {
				t.Error("a fleet session was given a single Rollout")
			}
			list, _ := s.Fleet.Subscribe()
			r, ok := s.Fleet.Rollout("a")
			if !ok {
				t.Error("rollout a not found")
			} else {
				r.Subscribe()
			}
			if _, ok := s.Fleet.Rollout("nope"); ok {
				t.Error("a rollout the fleet does not have was found")
			}
			mu.Lock()
			lists = append(lists, list)
			mu.Unlock()
			return &fleetWatcher{s: s, list: list}
		}})
	for i := range 3 {
		sess, out, err := f.session(t, "root", gossh.PublicKeys(alice.signer))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the model", func() bool { return strings.Contains(out.String(), "watching alice") })
		eventually(t, "alice watching a", func() bool { return len(f.presence.ByRollout()["a"]) == 1 })
		if by := f.presence.ByRollout(); len(by[""]) != 0 || len(by["b"]) != 0 {
			t.Errorf("presence %v: alice only watches a", by)
		}
		if i == 0 {
			f.stdin.Write([]byte("x"))
			eventually(t, "the command", func() bool {
				cf.engines["a"].mu.Lock()
				defer cf.engines["a"].mu.Unlock()
				return len(cf.engines["a"].cmds) == 1
			})
			if got := cf.engines["a"].cmds[0].Actor; got.Name != "alice" || got.Source != "ssh" {
				t.Errorf("command sent as %+v: the session's identity must replace whatever the model claims", got)
			}
		}
		switch i {
		case 0:
			sess.Close()
		case 1:
			f.client.Close()
		default:
			sess.Signal(gossh.SIGKILL)
			sess.Close()
		}
		eventually(t, "every subscription released", func() bool { return cf.subscriptions() == 0 })
		eventually(t, "nobody present", func() bool { return len(f.presence.ByRollout()) == 0 && len(f.presence.List()) == 0 })
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lists {
		select {
		case _, ok := <-l:
			if ok {
				t.Error("a list arrived from a fleet that sent none")
			}
		case <-time.After(5 * time.Second):
			t.Error("the list channel of an ended session never closed")
		}
	}
}
