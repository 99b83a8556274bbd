package tui

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// childEnv makes the test binary run the TUI on a real engine instead of the tests: the tmux
// test starts it that way in a real terminal.
const childEnv = "PERCH_TUI_E2E_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild runs testdata/e2e.yaml on a real engine.New over an in-memory router and source,
// shows it with Run as `perch run` would, and prints what the operator chose.
func runChild() int {
	spec, err := engine.LoadSpec("testdata/e2e.yaml")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	eng, err := engine.New(engine.Config{Spec: spec, Router: &memRouter{}, Source: memSource{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	outcome := make(chan engine.Outcome, 1)
	go func() {
		out, _ := eng.Run(ctx)
		outcome <- out
	}()
	choice, err := Run(ctx, Options{Snapshots: eng, Controller: eng, Mode: ModeLocal,
		Actor: engine.Actor{Name: "e2e", Role: engine.RoleOperator, Source: "tui"}})
	if err != nil {
		fmt.Println("child error:", err)
		return 3
	}
	names := map[Choice]string{ChoiceNone: "none", ChoiceDetach: "detach", ChoiceStop: "stop"}
	fmt.Println("child choice:", names[choice])
	if choice == ChoiceStop {
		stop()
	}
	fmt.Println("child outcome:", <-outcome)
	return 0
}

// memRouter is a traffic provider that holds the weight in memory.
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

// memSource answers every query with a healthy, gently varying series.
type memSource struct{}

func (memSource) Samples(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		wave := math.Sin(float64(t.Unix()) / 5)
		v := 0.0
		switch q.Expr {
		case `latency_p99{version="canary"}`:
			v = 0.210 + 0.01*wave
		case `latency_p99{version="stable"}`:
			v = 0.205 + 0.008*wave
		case `errors{version="canary"}`, `errors{version="stable"}`:
			v = 1
		default: // requests
			v = 200
		}
		out = append(out, metrics.Sample{Time: t, Value: v})
	}
	return out, nil
}

// tmuxSession is the TUI running in a detached tmux session on a private server.
type tmuxSession struct {
	t       *testing.T
	socket  string
	started time.Time
}

func startTmux(t *testing.T, width, height int) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is missing: CI must install the Debian package tmux (.ci/run)")
		}
		t.Skip("tmux not installed: apt-get install tmux to run the real-terminal test")
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "tmux.conf")
	// Keep the pane after the program exits, so its last words can be read.
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g status off\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &tmuxSession{t: t, started: time.Now(), socket: fmt.Sprintf("perch-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())}
	s.tmux("-f", conf, "new-session", "-d", "-s", "e2e", "-x", fmt.Sprint(width), "-y", fmt.Sprint(height),
		"-c", dir, "-e", childEnv+"=1", "-e", "TERM=xterm-256color", os.Args[0], "-test.run=^$")
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is what the pane shows now.
func (s *tmuxSession) screen() string { return s.tmux("capture-pane", "-p", "-t", "e2e") }

// lastWords polls the pane and its scrollback until the program has printed every want after
// leaving the alternate screen (tmux may scroll them up when it marks the pane dead).
func (s *tmuxSession) lastWords(want ...string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := s.tmux("capture-pane", "-p", "-S", "-", "-t", "e2e")
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(all, w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the program's last words %q never appeared:\n%s", want, all)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// key sends one key, then pauses briefly: tmux delivers keys sent together as one (FACTS.md).
func (s *tmuxSession) key(k string) {
	s.t.Helper()
	s.tmux("send-keys", "-t", "e2e", k)
	time.Sleep(50 * time.Millisecond)
}

// waitFor polls the screen until every want is on it.
func (s *tmuxSession) waitFor(what string, want ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		screen := s.screen()
		missing := ""
		for _, w := range want {
			if !strings.Contains(screen, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			s.t.Logf("%s: %s", what, time.Since(s.started))
			return screen
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %q never appeared; the screen:\n%s", what, missing, screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitGone polls the screen until gone is no longer on it.
func (s *tmuxSession) waitGone(what, gone string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Contains(s.screen(), gone) {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %q is still on the screen:\n%s", what, gone, s.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRealTerminal drives the TUI in tmux: pause shows paused, rollback asks and then shows
// rolled back, a resize to 80×24 keeps the header and the keys, and q leaves.
func TestRealTerminal(t *testing.T) {
	s := startTmux(t, 120, 40)
	s.waitFor("start", "e2e-api", "RUNNING", "every check passes", "p pause")
	s.key("p")
	s.waitFor("pause", "PAUSED", "paused by e2e", "p resume")
	s.key("p")
	s.waitFor("resume", "RUNNING", "resumed by e2e", "p pause")
	s.key("r")
	s.waitFor("rollback asks", "Roll back e2e-api?", "Send 0% to canary (it has 10% now)")
	s.key("y")
	s.waitFor("rolled back", "ROLLED BACK", "rolled back by e2e", "canary weight is 0%", "✔ roll back accepted")
	s.tmux("resize-window", "-t", "e2e", "-x", "80", "-y", "24")
	screen := s.waitFor("resize", "e2e-api", "ROLLED BACK", "STEPS", "? help", "q quit")
	lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
	if !strings.Contains(lines[0], "e2e-api") || !strings.Contains(lines[len(lines)-1], "q quit") {
		t.Errorf("after resizing, the header is not on the first line or the keys not on the last:\n%s", screen)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > 80 {
			t.Errorf("line %d is %d cells wide at 80 columns: %q", i+1, w, l)
		}
	}
	s.key("q")
	s.lastWords("child choice: none", "child outcome: rolled_back")
}

// TestRealTerminalQuitStops: q on a running rollout asks, and s stops the engine without
// touching traffic.
func TestRealTerminalQuitStops(t *testing.T) {
	s := startTmux(t, 100, 30)
	s.waitFor("start", "e2e-api", "RUNNING")
	s.key("q")
	s.waitFor("quit asks", "Leave the view?", "Neither choice changes traffic.", "detach", "stop the engine")
	s.key("Escape")
	s.waitGone("esc stays", "Leave the view?")
	s.key("q")
	s.waitFor("quit asks again", "Leave the view?")
	s.key("s")
	s.lastWords("child choice: stop", "child outcome: stopped")
}
