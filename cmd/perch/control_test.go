package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
)

// TestControlVerbs runs a rollout in real time and steers it from other "shells" through its
// control socket, as an operator would when every TUI is frozen.
func TestControlVerbs(t *testing.T) {
	c := newCLI(t, &memBackend{})
	spec := strings.Replace(rolloutYAML, "  - {setWeight: 10, analyze: 1m}\n", "  - pause: {}\n  - {setWeight: 10, analyze: 1h}\n", 1)
	os.WriteFile(filepath.Join(c.dir, "web.yaml"), []byte(spec), 0o644)
	socket := filepath.Join(c.dir, "s.sock")
	exit := make(chan int, 1)
	go func() {
		exit <- c.run(t.Context(), "run", "DIR/web.yaml", "--headless", "--journal", "DIR/j.jsonl", "--socket", socket)
	}()

	shell := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		sh := &app{stdout: &out, stderr: &errOut, registry: c.app.registry, getenv: func(string) string { return "" }}
		code := sh.main(context.Background(), append(args, "--socket", socket))
		return code, out.String(), errOut.String()
	}
	waitForPauseStep(t, shell)
	if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if code, _, errOut := shell("advance", "--step", "2"); code != exitRuntime || !strings.Contains(errOut, "stale command") {
		t.Errorf("advance for a later step: exit %d, %q; want refused as stale", code, errOut)
	}
	if code, _, errOut := shell("promote", "--bogus"); code != exitBadInput || !strings.Contains(errOut, "unknown flag") {
		t.Errorf("bad flag: exit %d, %q", code, errOut)
	}
	if code, out, errOut := shell("resume"); code != 0 || !strings.Contains(out, "step 2/3") {
		t.Fatalf("resume: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := shell("rollback", "--reason", "pager went off"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case code := <-exit:
		if code != exitRolledBack {
			t.Fatalf("run exited %d, want 1 (rolled back)\n%s", code, c.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not end after the rollback")
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Errorf("socket left behind after the run ended: %v", err)
	}
	checkRolledBackThroughSocket(t, filepath.Join(c.dir, "j.jsonl"))
	if code, _, errOut := shell("status"); code != exitRuntime || !strings.Contains(errOut, "no perch answers") {
		t.Errorf("status with no perch running: exit %d, %q", code, errOut)
	}
}

// waitForPauseStep asks the status through shell until it shows the rollout's pause step.
func waitForPauseStep(t *testing.T, shell func(args ...string) (int, string, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, _ := shell("status")
		if code == 0 && strings.Contains(out, "web  paused  step 1/3 (pause)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the pause step: exit %d\n%s", code, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkRolledBackThroughSocket reads the journal: the rollback was recorded as the local user
// through the socket, with the reason given.
func checkRolledBackThroughSocket(t *testing.T, journal string) {
	t.Helper()
	rec, err := engine.LoadRecording(journal)
	if err != nil {
		t.Fatal(err)
	}
	me, _ := user.Current()
	var rb engine.Event
	for _, ev := range rec.Events {
		if ev.Type == engine.EventRollbackStarted {
			rb = ev
		}
	}
	if rb.Actor == nil || rb.Actor.Name != me.Username || rb.Actor.Source != "socket" || rb.Reason != "pager went off" {
		t.Errorf("rollback recorded as %+v by %+v; want by %s through the socket, with the reason", rb, rb.Actor, me.Username)
	}
}

// TestControlSocketFoundWithoutXDG: without $XDG_RUNTIME_DIR (a root shell, sudo, a
// container) the socket used to go beside the journal, where the verbs never looked: "found
// by itself" failed. Now both sides use $TMPDIR/perch-UID, a directory only perch's user may
// enter.
func TestControlSocketFoundWithoutXDG(t *testing.T) {
	c := newCLI(t, &memBackend{})
	tmp := t.TempDir()
	env := func(name string) string { return map[string]string{"TMPDIR": tmp}[name] }
	c.app.getenv = env
	spec := strings.Replace(rolloutYAML, "  - {setWeight: 10, analyze: 1m}\n", "  - pause: {}\n  - {setWeight: 10, analyze: 1h}\n", 1)
	os.WriteFile(filepath.Join(c.dir, "web.yaml"), []byte(spec), 0o644)
	exit := make(chan int, 1)
	go func() {
		exit <- c.run(t.Context(), "run", "DIR/web.yaml", "--headless", "--journal", "DIR/j.jsonl")
	}()
	shell := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		sh := &app{stdout: &out, stderr: &errOut, registry: c.app.registry, getenv: env}
		code := sh.main(context.Background(), args)
		return code, out.String(), errOut.String()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, errOut := shell("status")
		if code == 0 && strings.Contains(out, "web  paused  step 1/3 (pause)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status without --socket never found the run: exit %d\n%s%s", code, out, errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	dir := filepath.Join(tmp, fmt.Sprintf("perch-%d", os.Geteuid()))
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory %s: %v %v, want mode 0700", dir, fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "web.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v %v, want %s/web.sock, mode 0600", fi, err, dir)
	}
	if code, out, errOut := shell("rollback", "--reason", "found it"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errOut)
	}
	if code := <-exit; code != exitRolledBack {
		t.Fatalf("run exited %d, want 1 (rolled back)\n%s", code, c.stderr.String())
	}
	if code, _, errOut := shell("status"); code != exitRuntime || !strings.Contains(errOut, "no running perch of yours found in") || !strings.Contains(errOut, dir) {
		t.Errorf("status with no perch running: exit %d, %q", code, errOut)
	}
}
