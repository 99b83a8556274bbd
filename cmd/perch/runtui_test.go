package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/tui/tmuxtest"
)

// The tmux test runs this test binary as `perch run` in a real terminal, with in-memory
// providers in the registry.
const (
	childEnv     = "PERCH_RUN_TUI_CHILD"
	childArgsEnv = "PERCH_RUN_TUI_ARGS"
	childExitEnv = "PERCH_RUN_TUI_EXIT"  // a file the child writes its exit code to, when set
	childNoHUP   = "PERCH_RUN_TUI_NOHUP" // 1: the child ignores SIGHUP, as under nohup
	// childFailEnv names rollouts (comma-separated) whose canary fails from 50% on; each rollout
	// of the child has its own in-memory backend.
	childFailEnv = "PERCH_RUN_TUI_FAIL"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if os.Getenv(childNoHUP) == "1" {
			signal.Ignore(syscall.SIGHUP)
		}
		backends := &fleetBackends{backends: map[string]*memBackend{}}
		for _, name := range strings.Split(os.Getenv(childFailEnv), ",") {
			backends.of(name).failAt = 50
		}
		a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, registry: backends.registry(), getenv: os.Getenv,
			notifyHangup: notifyHangup}
		code := a.main(context.Background(), strings.Fields(os.Getenv(childArgsEnv)))
		fmt.Printf("perch exited %d\n", code)
		if exitFile := os.Getenv(childExitEnv); exitFile != "" {
			os.WriteFile(exitFile, []byte(fmt.Sprint(code)), 0o600)
		}
		os.Exit(0)
	}
	// A perch given no --socket puts it under $XDG_RUNTIME_DIR: one directory per test
	// process keeps test runs side by side (and a perch of yours) from meeting there.
	xdg, err := os.MkdirTemp("", "perch-test-xdg-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_RUNTIME_DIR", xdg)
	code := m.Run()
	os.RemoveAll(xdg)
	os.Exit(code)
}

// withEnv is testEnv with vars set too, for a test that needs a variable of its own and must
// still keep its sockets in the test's own directory.
func withEnv(vars map[string]string) func(string) string {
	return func(name string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		return testEnv(name)
	}
}

// testEnv is the environment of the perches the tests run in-process: nothing but the
// $XDG_RUNTIME_DIR of this test process.
func testEnv(name string) string {
	if name == "XDG_RUNTIME_DIR" {
		return os.Getenv(name)
	}
	return ""
}

// writeRollout writes a rollout of one step analysed for analyze.
func writeRollout(t *testing.T, analyze string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rollout.yaml")
	spec := fmt.Sprintf(`name: tui-run
traffic: {istio: {virtualService: web, stable: {host: web, subset: stable}, canary: {host: web, subset: canary}}}
metrics: {prometheus: {address: http://127.0.0.1:9}}
analysis: {interval: 1s, stabilization: 1s, judge: threshold}
checks:
  - {name: latency, canary: 'l{version="canary"}', baseline: 'l{version="stable"}', direction: lower_is_better, maxDeviationPercent: 10}
steps:
  - {setWeight: 10, analyze: %s}
`, analyze)
	if err := os.WriteFile(p, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunRefusesTheTUIWithoutATerminal(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no terminal", []string{"run", "ROLLOUT"}, "the terminal UI needs a terminal on stdout; use --headless"},
		{"unknown theme", []string{"run", "ROLLOUT", "--theme", "neon"}, `--theme: unknown theme "neon" (want one of dark, light`},
		{"bad theme file", []string{"run", "ROLLOUT", "--headless", "--theme", "THEMEFILE"}, "theme.yaml:3:9: colors.pass"},
	}
	rollout := writeRollout(t, "1m")
	themeFile := filepath.Join(t.TempDir(), "theme.yaml")
	if err := os.WriteFile(themeFile, []byte("extends: dark\ncolors:\n  pass: green\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			a := &app{stdout: &stdout, stderr: &stderr, registry: memRegistry(&memBackend{}), getenv: func(string) string { return "" }}
			args := strings.Fields(strings.NewReplacer("ROLLOUT", rollout, "THEMEFILE", themeFile).Replace(strings.Join(tt.args, " ")))
			if code := a.main(context.Background(), args); code != exitBadInput {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitBadInput, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tt.want)
			}
			if strings.Contains(stderr.String(), "journal") {
				t.Errorf("a journal was opened before the TUI was checked: %s", stderr.String())
			}
		})
	}
}

// runInTmux starts `perch run ROLLOUT` (this test binary as perch) in a real terminal.
func runInTmux(t *testing.T, rollout string) *tmuxtest.Session {
	t.Helper()
	dir := t.TempDir()
	args := fmt.Sprintf("run %s --journal %s", rollout, filepath.Join(dir, "journal.jsonl"))
	return tmuxtest.Start(t, tmuxtest.Options{Width: 100, Height: 30, Dir: dir,
		Env:     []string{childEnv + "=1", childArgsEnv + "=" + args, "USER=carol"},
		Command: []string{os.Args[0], "-test.run=^$"}})
}

// TestRunTUIDetach: leaving the view with d keeps the engine running, printing events as
// --headless does, until the rollout ends (promoted, exit 0).
func TestRunTUIDetach(t *testing.T) {
	tmux := runInTmux(t, writeRollout(t, "4s"))
	tmux.WaitForHistory("start", "tui-run", "RUNNING", "you are carol (operator)")
	tmux.Key("q")
	tmux.WaitForHistory("asks", "Leave the view?")
	tmux.Key("d")
	tmux.WaitForHistory("detached", "perch: detached from the view; the rollout carries on here",
		"promoted: canary weight is 100%", "perch exited 0")
}

// TestRunTUITerminalGone: when the terminal running the TUI goes away (its tmux pane is killed),
// the engine carries on headless, as a detach does, says so in the journal, and the rollout
// ends as it would have (promoted, exit 0). perch hears of it from the hangup, or, with SIGHUP
// ignored (nohup), from its input ending.
func TestRunTUITerminalGone(t *testing.T) {
	for _, tc := range []struct{ name, noHUP string }{{"hangup", "0"}, {"input ends", "1"}} {
		t.Run(tc.name, func(t *testing.T) {
			rollout := writeRollout(t, "4s")
			dir := t.TempDir()
			journal, exitFile := filepath.Join(dir, "journal.jsonl"), filepath.Join(dir, "exit")
			tmux := tmuxtest.Start(t, tmuxtest.Options{Width: 100, Height: 30, Dir: dir, Command: []string{os.Args[0], "-test.run=^$"},
				Env: []string{childEnv + "=1", childArgsEnv + "=run " + rollout + " --journal " + journal, childExitEnv + "=" + exitFile,
					childNoHUP + "=" + tc.noHUP, "USER=carol"}})
			tmux.WaitFor("start", "tui-run", "RUNNING", "you are carol (operator)")
			tmux.Tmux("kill-pane", "-t", "main")
			code := waitForFile(t, exitFile, journal)
			checkCarriedOnHeadless(t, journal, code)
		})
	}
}

// waitForFile waits up to 30 s for the child to write its exit code to exitFile.
func waitForFile(t *testing.T, exitFile, journal string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := os.ReadFile(exitFile); len(code) > 0 {
			return string(code)
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(journal)
			t.Fatalf("perch did not end the rollout after its terminal went away; the journal:\n%s", data)
		}
	}
}

// checkCarriedOnHeadless reads the journal of a run whose terminal went away: a note by the
// operator says the rollout carried on, the engine never stopped, and it was promoted.
func checkCarriedOnHeadless(t *testing.T, journal, code string) {
	t.Helper()
	rec, err := engine.LoadRecording(journal)
	if err != nil {
		t.Fatal(err)
	}
	var note *engine.Event
	for i, ev := range rec.Events {
		if ev.Type == engine.EventNote && strings.Contains(ev.Reason, "terminal went away") {
			note = &rec.Events[i]
		}
		if ev.Type == engine.EventStopped {
			t.Errorf("the engine stopped when the terminal went away: %+v", ev)
		}
	}
	if note == nil || note.Actor == nil || note.Actor.Name != "carol" || !strings.Contains(note.Reason, "carries on headless") {
		t.Errorf("the journal does not say the view ended and the rollout carried on: %+v", note)
	}
	if last := rec.Events[len(rec.Events)-1]; last.Type != engine.EventPromoted || code != "0" {
		t.Errorf("ended with %s, exit %s; want promoted, exit 0", last.Type, code)
	}
}

// TestRunTUIStop: leaving the view with s stops the engine with traffic as it was, and says
// how to resume (exit 3).
func TestRunTUIStop(t *testing.T) {
	tmux := runInTmux(t, writeRollout(t, "10m"))
	tmux.WaitForHistory("start", "tui-run", "RUNNING")
	tmux.Key("q")
	tmux.WaitForHistory("asks", "Leave the view?")
	tmux.Key("s")
	tmux.WaitForHistory("stopped", "stopped at step 1 with the canary at 10%; traffic was left as it is.",
		"--resume --journal", "perch exited 3")
}

// TestHeldStderr: what other parts of perch write while the TUI owns the screen waits for it
// to close, in order, and nothing is lost.
func TestHeldStderr(t *testing.T) {
	var out bytes.Buffer
	a := &app{stderr: &out}
	b, held := a.holdingStderr()
	fmt.Fprintln(b.stderr, "before")
	held.hold()
	fmt.Fprintln(b.stderr, "during 1")
	fmt.Fprintln(b.stderr, "during 2")
	if got := out.String(); got != "before\n" {
		t.Fatalf("while held, stderr got %q", got)
	}
	held.release()
	fmt.Fprintln(b.stderr, "after")
	if got, want := out.String(), "before\nduring 1\nduring 2\nafter\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	if a.stderr != &out {
		t.Error("holdingStderr changed the app it was called on")
	}
}

// TestDemoInRealTerminal drives `perch demo` from the keyboard in tmux: pause and resume,
// the quit dialog (which offers no --resume: a demo has none), roll back through the confirm
// dialog (R is offered after it: the engine stays for a retry), resize to 80×24 with the header
// and keys kept, quit.
func TestDemoInRealTerminal(t *testing.T) {
	dir := t.TempDir()
	args := fmt.Sprintf("demo --speed 2 --socket none --record %s", filepath.Join(dir, "demo.jsonl"))
	s := tmuxtest.Start(t, tmuxtest.Options{Width: 120, Height: 40, Dir: dir,
		Env: []string{childEnv + "=1", childArgsEnv + "=" + args, "USER=dana"}, Command: []string{os.Args[0], "-test.run=^$"}})
	s.WaitFor("the demo runs", "demo-healthy", "RUNNING", "error_rate", "latency_p99", "proxy http://127.0.0.1:", "you are dana (operator)")
	s.Key("p")
	s.WaitFor("paused", "PAUSED", "paused by dana")
	s.Key("p")
	s.WaitFor("resumed", "RUNNING", "resumed by dana")
	s.Key("q")
	screen := s.WaitFor("quit asks", "Leave the view?", "this run cannot be")
	if strings.Contains(screen, "--resume") {
		t.Errorf("the demo's quit dialog offers --resume:\n%s", screen)
	}
	s.Key("Escape")
	s.WaitGone("stays", "Leave the view?")
	s.Key("?")
	s.WaitFor("help", "KEYS", "roll back")
	s.Key("Escape")
	s.WaitGone("help closed", "KEYS —")
	s.Key("r")
	s.WaitFor("rollback asks", "Roll back demo-healthy?", "Send 0% to canary")
	s.Key("n")
	s.WaitGone("cancelled", "Roll back demo-healthy?")
	s.Key("r")
	s.WaitFor("rollback asks again", "Roll back demo-healthy?")
	s.Key("y")
	s.WaitFor("rolled back", "ROLLED BACK", "rolled back by dana", "canary weight is 0%", "R retry")
	s.Resize(80, 24)
	screen = s.WaitFor("narrow", "demo-healthy", "ROLLED BACK", "q quit")
	lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
	if !strings.Contains(lines[0], "demo-healthy") || !strings.Contains(lines[len(lines)-1], "q quit") {
		t.Errorf("at 80×24 the header is not first or the keys not last:\n%s", screen)
	}
	s.Key("q")
	s.WaitForHistory("exit", "perch exited 1")
}

// TestRunTUIRetry: after a rollback the local engine waits, R starts the rollout again (attempt
// 2), and q after the next rollback leaves at once with exit 1.
func TestRunTUIRetry(t *testing.T) {
	tmux := runInTmux(t, writeRollout(t, "10m"))
	tmux.WaitFor("start", "tui-run", "RUNNING")
	tmux.Key("r")
	tmux.WaitFor("asks", "Roll back tui-run?")
	tmux.Key("y")
	tmux.WaitFor("rolled back", "ROLLED BACK", "R retry")
	tmux.Key("R")
	tmux.WaitFor("retry asks", "Retry tui-run")
	tmux.Key("y")
	tmux.WaitFor("retried", "RUNNING", "attempt 2")
	tmux.Key("r")
	tmux.WaitFor("asks again", "Roll back tui-run?")
	tmux.Key("y")
	tmux.WaitFor("rolled back again", "ROLLED BACK", "attempt 2")
	tmux.Key("q")
	tmux.WaitForHistory("exit", "perch exited 1")
}
