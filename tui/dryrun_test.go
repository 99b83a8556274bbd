package tui

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// stateDryRun is step 1 with its error_rate check a dry run failing at every look: the
// engine recorded that it would have rolled back, and the rollout runs on.
func stateDryRun(t testing.TB) (engine.State, time.Time) {
	data, err := os.ReadFile("testdata/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "    critical: true\n", "    critical: true\n    dryRun: true\n", 1)
	rollout, err := spec.Parse("rollout.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	s := newSimSpec(t, rollout).start()
	s.lookN(6, badErrors)
	s.emit(engine.Event{Type: engine.EventDryRun, Check: "error_rate", Would: engine.WouldRollBack,
		Reason: "error_rate failed: " + s.st.Checks[1].Last.Reason + " (critical)"})
	return s.st, s.now.Add(5 * time.Second)
}

// TestDryRunMark: a dry-run check is tagged "dry run" in its pane and in its detail view,
// which says what it would have done; the header does not call the rollout failing for it.
func TestDryRunMark(t *testing.T) {
	st, now := stateDryRun(t)
	if st.Checks[1].Last.Verdict != "fail" || !st.Checks[1].DryRun || st.Checks[1].Would != engine.WouldRollBack {
		t.Fatalf("error_rate %+v: want a failing dry run that would have rolled back", st.Checks[1])
	}
	for _, size := range [][2]int{{80, 24}, {120, 40}, {200, 60}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			h := newHarness(t, st, now, nil)
			h.m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
			var line string
			for _, l := range strings.Split(h.screen(), "\n") {
				if strings.Contains(l, "error_rate") && strings.Contains(l, "FAIL") {
					line = l
				}
			}
			if !strings.Contains(line, "error_rate  dry run · criti") {
				t.Errorf("error_rate's head %q does not say it is a dry run:\n%s", line, h.screen())
			}
			if strings.Contains(h.screen(), "p99_latency  dry run") || strings.Contains(h.screen(), "throughput  dry run") {
				t.Errorf("only error_rate is a dry run:\n%s", h.screen())
			}
			if head := h.header(); strings.Contains(head, "failing") || !strings.Contains(head, "every check passes (look 6); dry run: error_rate fail") {
				t.Errorf("the header calls the rollout failing for a dry run, or does not say how the dry run stands:\n%s", head)
			}
			h.press("j")
			h.press("enter")
			screen := joined(h.screen())
			for _, want := range []string{"CHECK error_rate", "dry run: never holds, fails or rolls back",
				"would have rolled back this step; nothing was done"} {
				if !strings.Contains(screen, want) {
					t.Errorf("the detail view does not say %q:\n%s", want, h.screen())
				}
			}
		})
	}
}
