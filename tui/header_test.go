package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// header is the screen's first three lines.
func (h *harness) header() string {
	return strings.Join(strings.SplitN(h.screen(), "\n", 4)[:3], "\n")
}

// TestHoldReasonFollowsTheLooks: a hold on inconclusive evidence says why as of the newest
// look, not the look that started the hold ("after 14 intervals" when the check says 20).
func TestHoldReasonFollowsTheLooks(t *testing.T) {
	s := newSequentialSim(t).start()
	s.lookN(10, lowTraffic)
	s.emit(engine.Event{Type: engine.EventHeld, Hold: engine.HoldInconclusive,
		Reason: "error_rate inconclusive: " + s.st.Checks[1].Last.Reason})
	h := newHarness(t, s.st, s.now, nil)
	if head := h.header(); !strings.Contains(head, "not decided after 10 interval(s)") {
		t.Fatalf("the header does not give the hold's reason:\n%s", head)
	}
	s.lookN(6, lowTraffic)
	h.m.Update(snapshotMsg{st: s.st, ok: true})
	if head := h.header(); !strings.Contains(head, "not decided after 16 interval(s)") || strings.Contains(head, "after 10 interval") {
		t.Errorf("the header kept the reason of the look that started the hold:\n%s", head)
	}
}

// stateOutage is step 4 holding on a metrics outage 7 minutes into its 15 minutes of analysis.
func stateOutage(t testing.TB) (engine.State, time.Time) {
	s := newSim(t).toStep3()
	for range 3 {
		s.look(healthy, "error_rate")
	}
	s.emit(engine.Event{Type: engine.EventHeld, Hold: engine.HoldOutage,
		Reason: `metrics source failing: error_rate: errors{version="canary"}: connection refused`})
	return s.st, s.now.Add(5 * time.Second)
}

// TestOutageHoldShowsNoDecisionCountdown: nothing is decided while the metrics source is
// down, so the header says how long it has been down instead of counting to a decision.
func TestOutageHoldShowsNoDecisionCountdown(t *testing.T) {
	st, now := stateOutage(t)
	h := newHarness(t, st, now, nil)
	head := h.header()
	if strings.Contains(head, "decision in") || !strings.Contains(head, "source down 1m05s of 5m allowed") ||
		!strings.Contains(head, "holding (outage): metrics source failing: error_rate") {
		t.Errorf("the header of an outage hold:\n%s", head)
	}
}

// TestPromotedHeader: after promotion the header says the canary has all the traffic rather
// than naming the last step.
func TestPromotedHeader(t *testing.T) {
	st, now := statePromoted(t)
	h := newHarness(t, st, now, nil)
	first := strings.SplitN(h.screen(), "\n", 2)[0]
	if !strings.Contains(first, "promoted at 100%") || strings.Contains(first, "50% for 15m") {
		t.Errorf("the header after promotion: %s", first)
	}
}

// TestReplayAtTheStart: a replay gone back to its start (no event applied) shows no clock;
// it once said "in step 2562047h47m".
func TestReplayAtTheStart(t *testing.T) {
	st, _ := stateRunning(t)
	h := newHarness(t, engine.NewState(st.Spec), time.Now(), func(o *Options) { o.Mode, o.Commander = ModeReplay, nil })
	h.m.opts.Playback = h.pb
	h.m.Update(playbackMsg{status: engine.PlaybackStatus{Speed: 1, Paused: true, Len: 60}})
	if head := h.header(); strings.Contains(head, "in step") || strings.Contains(head, "h47m") || !strings.Contains(head, "not started") {
		t.Errorf("the header at the start of a replay:\n%s", head)
	}
}

// TestReplayHomeEndScroll: in a replay home and end scroll the focused pane, as elsewhere;
// g and G jump the recording.
func TestReplayHomeEndScroll(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, func(o *Options) { o.Mode, o.Commander = ModeReplay, nil })
	h.m.opts.Playback = h.pb
	h.m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	h.press("tab")
	h.press("tab")
	h.press("end")
	if h.m.scroll[paneEvents] != h.m.scrollMax(paneEvents) || h.m.scroll[paneEvents] == 0 || len(h.pb.calls) != 0 {
		t.Fatalf("end: events scrolled to %d of %d, playback %v; want the pane at its end and the recording untouched",
			h.m.scroll[paneEvents], h.m.scrollMax(paneEvents), h.pb.calls)
	}
	h.press("home")
	if h.m.scroll[paneEvents] != 0 || len(h.pb.calls) != 0 {
		t.Fatalf("home: events at %d, playback %v", h.m.scroll[paneEvents], h.pb.calls)
	}
	h.press("G")
	h.press("g")
	if got := strings.Join(h.pb.calls, " "); got != "end start" {
		t.Errorf("G and g: playback %q, want the recording's end and start", got)
	}
}

// TestQuitDialogIsWhole: the quit dialog's every word is on screen at every size (nothing cut
// with "…"), and a run that cannot be resumed (the demo) does not offer --resume.
func TestQuitDialogIsWhole(t *testing.T) {
	st, now := stateRunning(t)
	for _, noResume := range []bool{false, true} {
		for _, size := range [][2]int{{60, 20}, {80, 24}, {120, 40}, {200, 60}} {
			t.Run(fmt.Sprintf("%dx%d/noResume=%v", size[0], size[1], noResume), func(t *testing.T) {
				h := newHarness(t, st, now, func(o *Options) { o.NoResume = noResume })
				h.m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
				h.press("q")
				box := dialogText(h.screen())
				want := []string{"Leave the view?", "The rollout is running at step 4 of 6, with 25% to canary.", "Neither choice changes traffic.",
					"d detach: keep the rollout running without the view (events print as lines)", "esc stay"}
				if noResume {
					want = append(want, "s stop the engine: traffic stays as it is; this run cannot be continued later")
				} else {
					want = append(want, "s stop the engine: traffic stays as it is; continue later with --resume")
				}
				for _, w := range want {
					if !strings.Contains(box, w) {
						t.Errorf("the dialog does not say %q:\n%s", w, h.screen())
					}
				}
				if strings.Contains(box, "…") || noResume && strings.Contains(box, "--resume") {
					t.Errorf("the dialog is cut or offers --resume:\n%s", h.screen())
				}
			})
		}
	}
}

// dialogText is the text inside the dialog box on screen, its lines joined by single spaces.
func dialogText(screen string) string {
	var words []string
	for _, l := range strings.Split(screen, "\n") {
		start, end := strings.Index(l, "│ "), strings.LastIndex(l, " │")
		if start < 0 || end <= start {
			if i := strings.Index(l, "╭─ "); i >= 0 {
				words = append(words, strings.Fields(strings.Trim(l[i+len("╭─ "):], "─╮ "))...)
			}
			continue
		}
		words = append(words, strings.Fields(l[start+len("│ "):end])...)
	}
	return strings.Join(words, " ")
}

// TestHeaderNamesTheCanary: the rollout file's canary identity is in the header, whole where
// it fits and its version where it does not.
func TestHeaderNamesTheCanary(t *testing.T) {
	st, now := stateRunning(t)
	withCanary := *st.Spec
	withCanary.Canary = &spec.Canary{Version: "v2.4.0", Image: "ghcr.io/acme/checkout:v2.4.0", Commit: "1a2b3c4"}
	st.Spec = &withCanary
	h := newHarness(t, st, now, nil)
	for _, c := range []struct {
		width int
		want  string
	}{{120, "checkout-api v2.4.0 (image ghcr.io/acme/checkout:v2.4.0, commit 1a2b3c4)   RUNNING"}, {80, "checkout-api v2.4.0   RUNNING"}} {
		h.m.Update(tea.WindowSizeMsg{Width: c.width, Height: 30})
		if first := strings.SplitN(h.screen(), "\n", 2)[0]; !strings.Contains(first, c.want) {
			t.Errorf("at %d columns the header is %q, want %q in it", c.width, first, c.want)
		}
	}
}

// TestQuitDialogFollowsTheRollout: the quit dialog states where the rollout is now, not where
// it was when it opened.
func TestQuitDialogFollowsTheRollout(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, nil)
	h.press("q")
	paused, _ := statePaused(t)
	h.m.Update(snapshotMsg{st: paused, ok: true})
	if box := dialogText(h.screen()); !strings.Contains(box, "The rollout is paused at step 4 of 6") {
		t.Errorf("the quit dialog after the rollout paused:\n%s", h.screen())
	}
}
