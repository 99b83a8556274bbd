package tui

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/tui/tmuxtest"
)

// childEnv makes the test binary run the TUI on a real engine instead of the tests: the tmux
// test starts it that way in a real terminal. childFileEnv names another rollout file for it.
const (
	childEnv     = "PERCH_TUI_E2E_CHILD"
	childFileEnv = "PERCH_TUI_E2E_FILE"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" && os.Getenv(fleetChildEnv) == "1" {
		os.Exit(runFleetChild())
	}
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild runs testdata/e2e.yaml (or $PERCH_TUI_E2E_FILE) on a real engine.New over an
// in-memory router and source, shows it with Run as `perch run` would, and prints what the
// operator chose.
func runChild() int {
	file := os.Getenv(childFileEnv)
	if file == "" {
		file = "testdata/e2e.yaml"
	}
	rollout, err := spec.Load(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	eng, err := engine.New(engine.Config{Spec: rollout, Router: &enginetest.Router{}, Source: memSource{}})
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
	choice, err := Run(ctx, Options{Snapshots: eng, Commander: eng, Mode: ModeLocal,
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

// startTmux runs this test binary as the TUI program in a real terminal; env is added to the
// child's environment.
func startTmux(t *testing.T, width, height int, env ...string) *tmuxtest.Session {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return tmuxtest.Start(t, tmuxtest.Options{Width: width, Height: height, Dir: dir,
		Env: append([]string{childEnv + "=1"}, env...), Command: []string{os.Args[0], "-test.run=^$"}})
}

// TestRealTerminal drives the TUI in tmux: pause shows paused, rollback asks and then shows
// rolled back, a resize to 80×24 keeps the header and the keys, and q leaves.
func TestRealTerminal(t *testing.T) {
	s := startTmux(t, 120, 40)
	s.WaitFor("start", "e2e-api", "RUNNING", "every check passes", "p pause")
	s.Key("p")
	s.WaitFor("pause", "PAUSED", "paused by e2e", "p resume")
	s.Key("p")
	s.WaitFor("resume", "RUNNING", "resumed by e2e", "p pause")
	s.Key("r")
	s.WaitFor("rollback asks", "Roll back e2e-api?", "Send 0% to canary (it has 10% now)")
	s.Key("y")
	s.WaitFor("rolled back", "ROLLED BACK", "rolled back by e2e", "canary weight is 0%", "✔ roll back accepted")
	s.Resize(80, 24)
	screen := s.WaitFor("resize", "e2e-api", "ROLLED BACK", "STEPS", "? help", "q quit")
	lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
	if !strings.Contains(lines[0], "e2e-api") || !strings.Contains(lines[len(lines)-1], "q quit") {
		t.Errorf("after resizing, the header is not on the first line or the keys not on the last:\n%s", screen)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > 80 {
			t.Errorf("line %d is %d cells wide at 80 columns: %q", i+1, w, l)
		}
	}
	// The engine (no Linger here) ends after the rollback; once the view has seen that, q
	// leaves with no choice to make. Before, it would leave choosing stop: waiting makes it one.
	s.WaitFor("engine ended", "the engine has finished")
	s.Key("q")
	s.WaitForHistory("last words", "child choice: none", "child outcome: rolled_back")
}

// TestRealTerminalQuitStops: q on a running rollout asks, and s stops the engine without
// touching traffic.
func TestRealTerminalQuitStops(t *testing.T) {
	s := startTmux(t, 100, 30)
	s.WaitFor("start", "e2e-api", "RUNNING")
	s.Key("q")
	s.WaitFor("quit asks", "Leave the view?", "Neither choice changes traffic.", "detach", "stop the engine")
	s.Key("Escape")
	s.WaitGone("esc stays", "Leave the view?")
	s.Key("q")
	s.WaitFor("quit asks again", "Leave the view?")
	s.Key("s")
	s.WaitForHistory("last words", "child choice: stop", "child outcome: stopped")
}

// TestRealTerminalDetail drives the detail view in a real terminal at 80×24, on a rollout
// judged by the sequential judge, whose reasons are long: enter opens the first check, its
// whole reason is on screen (wrapped, never cut), esc returns; then the same for an event.
func TestRealTerminalDetail(t *testing.T) {
	s := startTmux(t, 80, 24, childFileEnv+"=testdata/e2e-sequential.yaml")
	s.WaitFor("start", "e2e-api", "RUNNING", "latency_p99")
	s.WaitFor("a verdict", "window Δ")
	s.Key("Enter")
	screen := s.WaitFor("detail", "CHECK latency_p99", "esc back", "reason", "tolerance  +15%")
	reason := fieldText(screen, "reason")
	t.Logf("the reason on screen: %q", reason)
	if !strings.HasPrefix(reason, "within tolerance: ") && !strings.HasPrefix(reason, "not decided after ") ||
		!strings.Contains(reason, "tolerance +15%") || !strings.HasSuffix(reason, ")") || strings.Contains(reason, "…") {
		t.Errorf("the reason is not whole on screen: %q\n%s", reason, screen)
	}
	if n := strings.Count(screen, "\n"); n > 24 {
		t.Errorf("%d lines on a 24-line terminal", n)
	}
	s.Key("Escape")
	s.WaitGone("esc returns", "CHECK latency_p99")
	s.WaitFor("back", "CHECKS 2")
	s.Key("Tab")
	s.Key("Tab")
	s.Key("Enter")
	s.WaitFor("event detail", "EVENT ", "event ", "what")
	s.Key("q")
	s.WaitGone("q returns", "EVENT ")
	s.Key("q")
	s.WaitFor("quit asks", "Leave the view?")
	s.Key("s")
	s.WaitForHistory("last words", "child choice: stop")
}

// fieldText is the text of a detail view's field on screen, its lines joined: from the line
// that starts with label to the next label or blank line.
func fieldText(screen, label string) string {
	var words []string
	in := false
	for _, l := range strings.Split(screen, "\n") {
		switch {
		case strings.HasPrefix(l, " "+label+" "):
			in = true
			l = strings.TrimPrefix(l, " "+label)
		case in && (strings.TrimSpace(l) == "" || len(l) > 1 && l[1] != ' '):
			return strings.Join(words, " ")
		case !in:
			continue
		}
		words = append(words, strings.Fields(l)...)
	}
	return strings.Join(words, " ")
}
