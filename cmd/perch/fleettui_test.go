package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/tui/tmuxtest"
)

// quickRollout is a rollout named name (dependsOn deps, "" for none) that looks every second
// and holds each of its steps, 10% then 50%, for analyze.
func quickRollout(name, deps, analyze string) string {
	head := "name: " + name + "\n"
	if deps != "" {
		head += "dependsOn: [" + deps + "]\n"
	}
	return strings.NewReplacer(
		"name: web\n", head,
		"interval: 10s, stabilization: 10s", "interval: 1s, stabilization: 1s",
		"analyze: 1m", "analyze: "+analyze,
	).Replace(rolloutYAML)
}

// fleetStatus is `perch status -o json` of the fleet on socket, by rollout name.
func fleetStatus(t *testing.T, socket string) map[string]control.Summary {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdout: &out, stderr: &errOut, registry: defaultRegistry(), getenv: testEnv}
	if code := a.main(context.Background(), []string{"status", "--socket", socket, "-o", "json"}); code != 0 {
		return nil
	}
	var list struct{ Rollouts []control.Summary }
	if err := json.Unmarshal(out.Bytes(), &list); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out.String())
	}
	m := map[string]control.Summary{}
	for _, s := range list.Rollouts {
		m[s.Name] = s
	}
	return m
}

// waitStatus waits up to 30 s for the fleet's status to satisfy ok.
func waitStatus(t *testing.T, socket, what string, ok func(map[string]control.Summary) bool) map[string]control.Summary {
	t.Helper()
	var last map[string]control.Summary
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if last = fleetStatus(t, socket); last != nil && ok(last) {
			return last
		}
	}
	t.Fatalf("status never showed %s: %+v", what, last)
	return nil
}

// TestRunFleetOverview runs `perch run` with five rollout files in a real terminal: the overview
// shows them; checkout-us starts once checkout-eu has promoted (a wave); search-ap rolls back
// and search-latam, which depends on it, is cancelled; the filter, a dashboard and back; a bulk
// pause confirmed once, after which `perch status` says both are paused; q then s stops every
// engine, leaving traffic as it is.
func TestRunFleetOverview(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"eu.yaml":    quickRollout("checkout-eu", "", "3s"),
		"us.yaml":    quickRollout("checkout-us", "checkout-eu", "10m"),
		"ap.yaml":    quickRollout("search-ap", "", "3s"),
		"latam.yaml": quickRollout("search-latam", "search-ap", "3s"),
		"bill.yaml":  quickRollout("billing", "", "10m"),
	}
	var paths []string
	for _, name := range []string{"eu.yaml", "us.yaml", "ap.yaml", "latam.yaml", "bill.yaml"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(files[name]), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	socket := filepath.Join(dir, "fleet.sock")
	args := "run " + strings.Join(paths, " ") + " --socket " + socket
	tmux := tmuxtest.Start(t, tmuxtest.Options{Width: 120, Height: 40, Dir: dir, Command: []string{os.Args[0], "-test.run=^$"},
		Env: []string{childEnv + "=1", childArgsEnv + "=" + args, childFailEnv + "=search-ap", "USER=carol"}})

	tmux.WaitFor("the overview", "perch fleet", "checkout-eu", "checkout-us", "search-ap", "search-latam", "billing",
		"after checkout-eu", "after search-ap")
	first := waitStatus(t, socket, "checkout-us waiting", func(m map[string]control.Summary) bool { return len(m) == 5 })
	if s := first["checkout-us"]; s.Phase != "waiting" && first["checkout-eu"].Phase != "promoted" {
		t.Errorf("checkout-us is %s before checkout-eu promoted (%s)", s.Phase, first["checkout-eu"].Phase)
	}

	// The wave: checkout-us runs once checkout-eu has promoted; search-latam is cancelled once
	// search-ap has rolled back.
	tmux.WaitFor("the waves", "PROMOTED", "ROLLED BACK", "CANCELLED")
	st := waitStatus(t, socket, "the waves", func(m map[string]control.Summary) bool {
		return m["checkout-eu"].Phase == "promoted" && m["checkout-us"].Phase == "running" &&
			m["search-ap"].Phase == "rolled_back" && m["search-latam"].Phase == "cancelled"
	})
	if !strings.Contains(st["search-latam"].Reason, "search-ap rolled back") {
		t.Errorf("search-latam cancelled for %q", st["search-latam"].Reason)
	}
	eu, us := journalOf(t, dir, "checkout-eu"), journalOf(t, dir, "checkout-us")
	if promoted := eu.Events[len(eu.Events)-1]; promoted.Type != engine.EventPromoted || us.Header.Created.Before(promoted.Time) {
		t.Errorf("checkout-us's journal began %s, checkout-eu ended %s at %s", us.Header.Created, promoted.Type, promoted.Time)
	}
	if found, _ := filepath.Glob(filepath.Join(dir, "perch-search-latam-*")); len(found) != 0 {
		t.Errorf("the cancelled rollout journaled %q", found)
	}

	// The filter, a dashboard and back.
	tmux.Key("/")
	for _, k := range "-us" {
		tmux.Key(string(k))
	}
	tmux.Key("Enter")
	tmux.WaitFor("filtered", `filter "-us": 1 shown`)
	tmux.WaitGone("filtered out", "billing")
	tmux.Key("Enter")
	tmux.WaitFor("checkout-us's dashboard", "checkout-us", "CHECKS", "STEPS", "you are carol (operator)")
	tmux.Key("Escape")
	tmux.WaitFor("back", "perch fleet", `filter "-us": 1 shown`)
	tmux.Key("Escape")
	tmux.WaitFor("filter cleared", "billing", "search-ap")

	// Bulk pause: the running rollouts sort before those that ended; from the top, mark both,
	// and one confirmation names both.
	screen := tmux.Screen()
	if b, u, e := strings.Index(screen, "billing"), strings.Index(screen, "checkout-us"), strings.Index(screen, "checkout-eu"); b < 0 || u < b || e < u {
		t.Fatalf("the running rollouts are not first:\n%s", screen)
	}
	tmux.Key("g")
	tmux.Key("Space")
	tmux.Key("Space")
	tmux.WaitFor("marks", "2 marked")
	tmux.Key("p")
	tmux.WaitFor("confirm", "Pause 2 rollouts?", "Pause: billing, checkout-us.")
	tmux.Key("y")
	tmux.WaitFor("paused", "pause accepted by 2 of 2", "paused by carol")
	waitStatus(t, socket, "both paused", func(m map[string]control.Summary) bool {
		return m["billing"].Phase == "paused" && m["checkout-us"].Phase == "paused"
	})

	// Leaving: s stops every engine; traffic stays where it was (10% on each paused canary).
	tmux.Key("q")
	tmux.WaitFor("quit asks", "Leave the view?", "stop every engine")
	tmux.Key("s")
	history := tmux.WaitForHistory("stopped", "perch exited 3")
	for _, want := range []string{"perch: billing: stopped at step 1 with the canary at 10%", "perch: checkout-us: stopped at step 1 with the canary at 10%"} {
		if !strings.Contains(history, want) {
			t.Errorf("the end does not say %q:\n%s", want, history)
		}
	}
	for _, name := range []string{"billing", "checkout-us"} {
		rec := journalOf(t, dir, name)
		if last := rec.Events[len(rec.Events)-1]; last.Type != engine.EventStopped {
			t.Errorf("%s's journal ends with %s, want stopped", name, last.Type)
		}
	}
}

// TestServeRolloutsOverviewOverSSH serves a directory of rollouts and watches it from the real
// OpenSSH client: the overview appears; a bad file dropped into the directory while the others
// run shows as invalid with its error, and the others go on (one promotes); enter opens a
// rollout's dashboard over SSH and esc returns.
func TestServeRolloutsOverviewOverSSH(t *testing.T) {
	requireOpenSSH(t)
	keys, rollouts := t.TempDir(), t.TempDir()
	t.Chdir(t.TempDir()) // the journals
	alice, alicePub, _ := sshKey(t, keys, "alice")
	os.WriteFile(filepath.Join(keys, "operators"), []byte(alicePub), 0o600)
	os.WriteFile(filepath.Join(rollouts, "api.yaml"), []byte(quickRollout("checkout-api", "", "4s")), 0o644)
	os.WriteFile(filepath.Join(rollouts, "web.yaml"), []byte(quickRollout("checkout-web", "", "10m")), 0o644)
	b := &fleetBackends{backends: map[string]*memBackend{}}
	var stdout, stderr lockedBuffer
	a := &app{stdout: &stdout, stderr: &stderr, registry: b.registry(), getenv: testEnv}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	exit := make(chan int, 1)
	go func() {
		exit <- a.main(ctx, []string{"serve", "--rollouts", rollouts, "--ssh", "127.0.0.1:0", "--operator-keys", filepath.Join(keys, "operators"),
			"--host-key", filepath.Join(keys, "host"), "--socket", "none", "--hold-open", "0s"})
	}()
	port := ""
	for deadline := time.Now().Add(30 * time.Second); port == ""; time.Sleep(20 * time.Millisecond) {
		if m := regexp.MustCompile(`ssh -p (\d+) 127\.0\.0\.1`).FindStringSubmatch(stderr.String()); m != nil {
			port = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("perch serve never said where it listens:\n%s", stderr.String())
		}
	}
	tmux := tmuxtest.Start(t, tmuxtest.Options{Width: 120, Height: 40, Command: []string{"ssh", "-tt", "-p", port, "-i", alice,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "LogLevel=ERROR", "alice@127.0.0.1"}})
	tmux.WaitFor("the overview", "perch fleet", "checkout-api", "checkout-web", "RUNNING")

	os.WriteFile(filepath.Join(rollouts, "bad.yaml"), []byte("name: checkout-bad\nsteps: []\n"), 0o644)
	tmux.WaitFor("the bad file", "checkout-bad", "INVALID", "bad.yaml:1:1: traffic")
	tmux.WaitFor("the others go on", "PROMOTED", "RUNNING")
	// Its whole error is one key away: it has no dashboard to open, and says why.
	tmux.Key(":")
	for _, k := range "checkout-bad" {
		tmux.Key(string(k))
	}
	tmux.Key("Enter")
	tmux.WaitFor("the error in full", "checkout-bad has no dashboard: bad.yaml:1:1: traffic: missing")
	if !strings.Contains(stderr.String(), "perch: "+filepath.Join(rollouts, "bad.yaml")+": refused: ") {
		t.Errorf("stderr does not report bad.yaml:\n%s", stderr.String())
	}

	tmux.Key(":")
	for _, k := range "checkout-web" {
		tmux.Key(string(k))
	}
	tmux.Key("Enter")
	tmux.WaitFor("checkout-web's dashboard", "checkout-web", "CHECKS", "STEPS", "you are alice (operator)")
	tmux.Key("Escape")
	tmux.WaitFor("back", "perch fleet", "checkout-bad")

	stop()
	select {
	case code := <-exit:
		if code != exitRuntime {
			t.Errorf("serve exited %d, want 3 (checkout-web stopped by the signal)\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestServeRolloutsPortInUse: the SSH server listens before any rollout starts, so a port in
// use fails the start and no rollout journals anything.
func TestServeRolloutsPortInUse(t *testing.T) {
	keys, rollouts, work := t.TempDir(), t.TempDir(), t.TempDir()
	t.Chdir(work)
	_, pub, _ := sshKey(t, keys, "alice")
	os.WriteFile(filepath.Join(keys, "operators"), []byte(pub), 0o600)
	os.WriteFile(filepath.Join(rollouts, "api.yaml"), []byte(quickRollout("checkout-api", "", "10m")), 0o644)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	b := &fleetBackends{backends: map[string]*memBackend{}}
	var stdout, stderr lockedBuffer
	a := &app{stdout: &stdout, stderr: &stderr, registry: b.registry(), getenv: testEnv}
	code := a.main(t.Context(), []string{"serve", "--rollouts", rollouts, "--ssh", taken.Addr().String(), "--operator-keys", filepath.Join(keys, "operators"),
		"--host-key", filepath.Join(keys, "host"), "--socket", "none"})
	if code != exitRuntime || !strings.Contains(stderr.String(), "listen for SSH on "+taken.Addr().String()) {
		t.Errorf("exit %d, want 3 naming the port\n%s", code, stderr.String())
	}
	if found, _ := filepath.Glob(filepath.Join(work, "perch-*")); len(found) != 0 {
		t.Errorf("a rollout started: %q", found)
	}
}

// TestRunFleetMetricsAddr: with several rollouts, each behind perch's own proxy, one /metrics
// serves every rollout's series under its rollout label, and each proxy registers beside the
// other (labelled by its rollout) instead of failing its rollout's start.
func TestRunFleetMetricsAddr(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer backend.Close()
	for _, name := range []string{"checkout-eu", "checkout-us"} {
		yaml := strings.NewReplacer("name: web\n", "name: "+name+"\n", "http://127.0.0.1:1", backend.URL, "http://127.0.0.1:2", backend.URL).Replace(rolloutYAML)
		os.WriteFile(filepath.Join(work, name+".yaml"), []byte(yaml), 0o644)
	}
	r := defaultRegistry() // the proxy, for real
	m := &memBackend{}
	for kind := range r.sources {
		r.sources[kind] = func(context.Context, *spec.Rollout, engine.Router, connectFlags) (engine.Source, error) {
			return m, nil
		}
	}
	var stdout, stderr lockedBuffer
	a := &app{stdout: &stdout, stderr: &stderr, registry: r, getenv: testEnv}
	addr := freeAddr(t)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	exit := make(chan int, 1)
	go func() {
		exit <- a.main(ctx, []string{"run", "checkout-eu.yaml", "checkout-us.yaml", "--headless", "--socket", "none", "--metrics-addr", addr})
	}()
	var body string
	want := []string{
		`perch_rollout_step{rollout="checkout-eu"} 1`,
		`perch_rollout_step{rollout="checkout-us"} 1`,
		`perch_rollout_phase{phase="running",rollout="checkout-eu"} 1`,
		`perch_rollout_phase{phase="running",rollout="checkout-us"} 1`,
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		missing := slices.IndexFunc(want, func(w string) bool { return !strings.Contains(body, w) })
		if missing < 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s:\n%s\nstderr:\n%s", want[missing], body, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "could not start") {
		t.Errorf("a rollout did not start:\n%s", stderr.String())
	}
	stop()
	if code := <-exit; code != exitRuntime {
		t.Errorf("exit %d, want 3 (stopped)\n%s", code, stderr.String())
	}
}

// TestRunFleetOverviewLeaves: leaving the overview with d detaches (every rollout carries on,
// printing its events, and promotes), and a terminal that goes away does the same, journaling
// in each rollout that it carried on headless.
func TestRunFleetOverviewLeaves(t *testing.T) {
	for _, how := range []string{"detach", "terminal gone"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			var paths []string
			for _, name := range []string{"checkout-eu", "checkout-us"} {
				p := filepath.Join(dir, name+".yaml")
				if err := os.WriteFile(p, []byte(quickRollout(name, "", "3s")), 0o600); err != nil {
					t.Fatal(err)
				}
				paths = append(paths, p)
			}
			exitFile := filepath.Join(dir, "exit")
			tmux := tmuxtest.Start(t, tmuxtest.Options{Width: 100, Height: 30, Dir: dir, Command: []string{os.Args[0], "-test.run=^$"},
				Env: []string{childEnv + "=1", childArgsEnv + "=run " + strings.Join(paths, " ") + " --socket none", childExitEnv + "=" + exitFile, "USER=carol"}})
			tmux.WaitFor("the overview", "perch fleet", "checkout-eu", "checkout-us", "RUNNING")
			if how == "detach" {
				tmux.Key("q")
				tmux.WaitFor("asks", "Leave the view?", "rollouts are running")
				tmux.Key("d")
				tmux.WaitForHistory("detached", "perch: detached from the overview; the rollouts carry on here",
					"checkout-eu: ", "promoted: canary weight is 100%", "checkout-us: ", "perch exited 0")
				return
			}
			tmux.Tmux("kill-pane", "-t", "main")
			if code := waitForFile(t, exitFile, ""); code != "0" {
				t.Errorf("exit %s, want 0: each rollout carried on and promoted", code)
			}
			for _, name := range []string{"checkout-eu", "checkout-us"} {
				rec := journalOf(t, dir, name)
				noted := slices.ContainsFunc(rec.Events, func(ev engine.Event) bool {
					return ev.Type == engine.EventNote && ev.Actor != nil && ev.Actor.Name == "carol" && strings.Contains(ev.Reason, "the terminal went away; the rollouts carry on headless")
				})
				if last := rec.Events[len(rec.Events)-1]; !noted || last.Type != engine.EventPromoted {
					t.Errorf("%s's journal: noted %v, ends with %s", name, noted, last.Type)
				}
			}
		})
	}
}
