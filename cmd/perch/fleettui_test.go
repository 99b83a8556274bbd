package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
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
