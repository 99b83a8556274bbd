package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/tui/tmuxtest"
)

// lockedBuffer is a bytes.Buffer safe to read while perch writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sshKey makes an OpenSSH key pair with ssh-keygen; the comment names its owner.
func sshKey(t *testing.T, dir, name string) (private, public, fingerprint string) {
	t.Helper()
	private = filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", private).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(private + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh-keygen", "-l", "-f", private+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	return private, string(pub), strings.Fields(string(out))[1]
}

func requireOpenSSH(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing: CI must install the Debian package openssh-client (.ci/run)", bin)
			}
			t.Skip("the OpenSSH client is not installed: apt-get install openssh-client")
		}
	}
	tmuxtest.Require(t)
}

// TestServeOverRealSSH serves a rollout and drives it from the real OpenSSH client in tmux: a
// viewer sees the panes and cannot pause, an operator pauses and is recorded by name and key,
// an unknown key is refused, and two operators racing advance move the rollout one step.
func TestServeOverRealSSH(t *testing.T) {
	requireOpenSSH(t)
	dir := t.TempDir()
	alice, alicePub, aliceFP := sshKey(t, dir, "alice")
	bob, bobPub, _ := sshKey(t, dir, "bob")
	vic, vicPub, _ := sshKey(t, dir, "vic")
	mallory, _, _ := sshKey(t, dir, "mallory")
	os.WriteFile(filepath.Join(dir, "operators"), []byte(alicePub+bobPub), 0o600)
	os.WriteFile(filepath.Join(dir, "viewers"), []byte(vicPub), 0o600)
	var stderr lockedBuffer
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	journal := filepath.Join(dir, "j.jsonl")
	exit, port := startServe(ctx, t, dir, journal, &stderr)
	ssh := func(key, user string) []string {
		return []string{"ssh", "-tt", "-p", port, "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", user + "@127.0.0.1"}
	}
	viewer := tmuxtest.Start(t, tmuxtest.Options{Width: 120, Height: 40, Dir: dir, Command: ssh(vic, "vic")})
	viewer.WaitFor("the viewer sees the rollout", "served-api", "RUNNING", "latency", "STEPS", "you are a viewer")
	intruder := viewer.Window("mallory", nil, ssh(mallory, "mallory")...)
	intruder.WaitForHistory("the unknown key is refused", "Permission denied (publickey)")

	viewer.Key("p")
	viewer.WaitFor("the viewer cannot pause", "viewers cannot change traffic (vic is a viewer)", "RUNNING")

	op1 := viewer.Window("alice", nil, ssh(alice, "alice")...)
	op2 := viewer.Window("bob", nil, ssh(bob, "bob")...)
	op1.WaitFor("alice is in", "served-api", "3 here: alice, bob, vic (viewer)")
	op2.WaitFor("bob is in", "served-api", "step 1/3")
	op1.Key("p")
	viewer.WaitFor("the viewer sees alice's pause", "PAUSED", "paused by alice")

	tmuxtest.KeyTogether("a", op1, op2)
	viewer.WaitFor("one step on", "step 2/3")
	time.Sleep(2 * time.Second) // had both advances been taken, step 3 would show by now
	if !strings.Contains(op1.Screen()+op2.Screen(), "stale command") {
		t.Errorf("neither operator was told their advance came too late:\n%s\n%s", op1.Screen(), op2.Screen())
	}
	viewer.WaitFor("still step 2", "step 2/3")

	op1.Key("r")
	op1.WaitFor("rollback asks", "Roll back served-api?")
	op1.Key("y")
	viewer.WaitFor("the viewer sees the rollback", "ROLLED BACK", "rolled back by alice")
	stop()
	select {
	case code := <-exit:
		if code != exitRolledBack {
			t.Errorf("serve exited %d, want 1 (rolled back)\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}

	checkServedJournal(t, journal, engine.Actor{Name: "alice", Role: engine.RoleOperator, Source: "ssh", Fingerprint: aliceFP})
}

// startServe writes a three-step rollout into dir and serves it with the key files there until
// ctx ends; it returns the exit code's channel and the SSH port perch announced.
func startServe(ctx context.Context, t *testing.T, dir, journal string, stderr *lockedBuffer) (<-chan int, string) {
	t.Helper()
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
  - {setWeight: 60, analyze: 10m}
`), 0o644)

	var stdout lockedBuffer
	a := &app{stdout: &stdout, stderr: stderr, registry: memRegistry(&memBackend{}), getenv: func(string) string { return "" }}
	exit := make(chan int, 1)
	go func() {
		exit <- a.main(ctx, []string{"serve", rollout, "--ssh", "127.0.0.1:0", "--operator-keys", filepath.Join(dir, "operators"),
			"--viewer-keys", filepath.Join(dir, "viewers"), "--host-key", filepath.Join(dir, "host"), "--journal", journal,
			"--socket", "none", "--hold-open", "0s"})
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
	return exit, port
}

// checkServedJournal reads the served run's journal: alice's pause and rollback recorded as
// want, one advance taken and the other refused as stale, and nothing from the viewer.
func checkServedJournal(t *testing.T, journal string, want engine.Actor) {
	t.Helper()
	rec, err := engine.LoadRecording(journal)
	if err != nil {
		t.Fatal(err)
	}
	var paused, rolledBack *engine.Actor
	advanced, stale := 0, 0
	for _, ev := range rec.Events {
		switch {
		case ev.Type == engine.EventPaused:
			paused = ev.Actor
		case ev.Type == engine.EventRollbackStarted:
			rolledBack = ev.Actor
		case ev.Type == engine.EventStepPassed && ev.Actor != nil:
			advanced++
		case ev.Type == engine.EventCommandRefused && ev.Command == engine.CommandAdvance && strings.Contains(ev.Reason, "stale"):
			stale++
		case ev.Type == engine.EventCommandRefused && ev.Actor != nil && ev.Actor.Role == engine.RoleViewer:
			t.Errorf("the viewer's key reached the engine: %+v", ev)
		}
	}
	if paused == nil || *paused != want {
		t.Errorf("pause recorded as %+v, want %+v", paused, want)
	}
	if rolledBack == nil || *rolledBack != want {
		t.Errorf("rollback recorded as %+v, want %+v", rolledBack, want)
	}
	if advanced != 1 || stale != 1 {
		t.Errorf("%d advances taken and %d refused as stale; want 1 and 1", advanced, stale)
	}
}
