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

// newSequentialSim is the goldens' rollout judged by the sequential judge, as perch judges by
// default.
func newSequentialSim(t testing.TB) *sim {
	t.Helper()
	data, err := os.ReadFile("testdata/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rollout, err := spec.Parse("rollout.yaml", []byte(strings.Replace(string(data), "judge: threshold", "judge: sequential", 1)))
	if err != nil {
		t.Fatal(err)
	}
	return newSimSpec(t, rollout)
}

// lowTraffic is healthy but for an error check at a rate that cannot show safety in a few
// looks: a few requests, no errors on either side.
func lowTraffic(c, n int) (sideValue, sideValue) {
	canary, baseline := healthy(c, n)
	if c%3 == 1 {
		canary = sideValue{events: float64(n % 2), total: 40}
		baseline = sideValue{events: 1, total: 400}
	}
	return canary, baseline
}

// stateSequential is step 4 at 25% judged by the sequential judge: latency and throughput
// shown within tolerance, the error rate still undecided.
func stateSequential(t testing.TB) (engine.State, time.Time) {
	s := newSequentialSim(t).start()
	s.lookN(10, healthy)
	s.pass(nil, "every check passed")
	s.lookN(20, healthy)
	s.pass(nil, "every check passed")
	s.wait(3 * time.Minute)
	s.pass(alice, "resumed by alice")
	s.lookN(14, lowTraffic)
	return s.st, s.now.Add(12 * time.Second)
}

// TestDetailView: enter opens the item under the focused pane's cursor in full, whose whole
// reason is on screen, at every size; j scrolls it, command keys still work in it, and esc
// (or q) returns to where the operator was.
func TestDetailView(t *testing.T) {
	st, now := stateSequential(t)
	for _, size := range [][2]int{{80, 24}, {120, 40}, {200, 60}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			h := newHarness(t, st, now, nil)
			h.m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
			h.press("j") // the error rate, still undecided
			if h.m.cursor[paneChecks] != 1 {
				t.Fatalf("cursor on check %d after j, want 1", h.m.cursor[paneChecks])
			}
			h.press("enter")
			screen := h.screen()
			reason := st.Checks[1].Last.Reason
			if !strings.Contains(screen, "CHECK error_rate") || !strings.Contains(joined(screen), reason) {
				t.Fatalf("the detail of error_rate does not show its whole reason %q:\n%s", reason, screen)
			}
			for _, want := range []string{"of 5.7 needed to roll back", "safety not yet shown", "tolerance  +0.5pp", `errors{version="canary"}`,
				"judge      sequential", "esc back"} {
				if !strings.Contains(screen, want) {
					t.Errorf("the detail lacks %q:\n%s", want, screen)
				}
			}
			h.press("G")
			if size[1] < 60 && !strings.Contains(h.screen(), "figures") {
				t.Errorf("G did not scroll to the figures:\n%s", h.screen())
			}
			h.press("p")
			if got := h.sentKinds(); len(got) != 1 || got[0] != engine.CommandPause {
				t.Errorf("p in the detail view sent %v, want a pause", got)
			}
			h.press("esc")
			if h.m.detail != nil || !strings.Contains(h.screen(), "CHECKS 3") {
				t.Fatalf("esc did not return to the checks:\n%s", h.screen())
			}
			if h.m.focus != paneChecks || h.m.cursor[paneChecks] != 1 {
				t.Errorf("after esc: focus %s, cursor %d; want the checks pane, on error_rate", h.m.focus, h.m.cursor[paneChecks])
			}
		})
	}
}

// TestDetailOfStepAndEvent: enter on a step shows what it does, why it ended and its events;
// on an event, every field of it, whole; q returns.
func TestDetailOfStepAndEvent(t *testing.T) {
	st, now := stateRolledBack(t)
	h := newHarness(t, st, now, nil)
	h.press("tab")
	for range 3 {
		h.press("j") // step 4, failed
	}
	h.press("enter")
	screen := h.screen()
	for _, want := range []string{"STEP 4/6", "sends 25% to canary, then analyses for 15m", "status     failed",
		"its events", "ROLLING BACK: error_rate failed:", "rolled back: canary weight is 0%"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the step's detail lacks %q:\n%s", want, screen)
		}
	}
	if !strings.Contains(joined(screen), st.Steps[3].Reason) {
		t.Errorf("the step's detail does not give its whole reason %q:\n%s", st.Steps[3].Reason, screen)
	}
	h.press("q")
	if h.m.detail != nil || h.quit {
		t.Fatalf("q in the detail view: detail %v, quit %v; want it to return", h.m.detail != nil, h.quit)
	}
	h.press("tab")
	h.press("j")
	h.press("j") // the rollback
	h.press("enter")
	screen = h.screen()
	rb := st.Log[len(st.Log)-3]
	for _, want := range []string{"EVENT ROLLBACK STARTED", "rollback_started", "event " + fmt.Sprint(rb.Seq)} {
		if !strings.Contains(screen, want) {
			t.Errorf("the event's detail lacks %q:\n%s", want, screen)
		}
	}
	if !strings.Contains(joined(screen), rb.Reason) {
		t.Errorf("the event's detail does not give its whole reason %q:\n%s", rb.Reason, screen)
	}
}

// joined is the screen's text with every run of spaces and line breaks made one space, so
// that text wrapped over lines (under a label of the detail view) reads as one.
func joined(screen string) string {
	var words []string
	for _, l := range strings.Split(screen, "\n") {
		words = append(words, strings.Fields(l)...)
	}
	return strings.Join(words, " ")
}
