package tui

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/perchhq/perch/engine"
)

// harness drives a Model by calling Update directly, running the commands it returns (they
// never sleep: keys return at most one command) and feeding their messages back.
type harness struct {
	t    *testing.T
	m    *Model
	ctl  *fakeCommander
	pb   *fakePlayback
	quit bool
}

func newHarness(t *testing.T, st engine.State, now time.Time, edit func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, ctl: &fakeCommander{}, pb: &fakePlayback{}}
	opts := Options{
		Commander: h.ctl,
		Actor:     engine.Actor{Name: "alice", Role: engine.RoleOperator, Source: "tui"},
		Renderer:  asciiRenderer(),
		Clock:     func() time.Time { return now },
		Location:  time.UTC,
	}
	if edit != nil {
		edit(&opts)
	}
	h.m = New(opts)
	h.m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	h.m.Update(snapshotMsg{st: st, ok: true})
	return h
}

func keyMsg(k string) tea.KeyMsg {
	types := map[string]tea.KeyType{
		"tab": tea.KeyTab, "shift+tab": tea.KeyShiftTab, "esc": tea.KeyEsc, "enter": tea.KeyEnter,
		"ctrl+c": tea.KeyCtrlC, "up": tea.KeyUp, "down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight,
		"pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown, "home": tea.KeyHome, "end": tea.KeyEnd, " ": tea.KeySpace,
	}
	if t, ok := types[k]; ok {
		return tea.KeyMsg{Type: t}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

// press sends one key and runs what it returns to completion.
func (h *harness) press(k string) {
	h.t.Helper()
	_, cmd := h.m.Update(keyMsg(k))
	h.run(cmd)
}

func (h *harness) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case tea.QuitMsg:
		h.quit = true
	case nil:
	default:
		_, next := h.m.Update(msg)
		if _, isTick := msg.(tickMsg); !isTick {
			h.run(next)
		}
	}
}

// screen is what the view shows now, without escape codes.
func (h *harness) screen() string { return ansi.Strip(h.m.View()) }

func (h *harness) sentKinds() []engine.CommandKind {
	var out []engine.CommandKind
	for _, c := range h.ctl.sent() {
		out = append(out, c.Kind)
	}
	return out
}

// fakePlayback records playback actions.
type fakePlayback struct{ calls []string }

func (f *fakePlayback) TogglePause() { f.calls = append(f.calls, "toggle") }
func (f *fakePlayback) Faster()      { f.calls = append(f.calls, "faster") }
func (f *fakePlayback) Slower()      { f.calls = append(f.calls, "slower") }
func (f *fakePlayback) PrevStep()    { f.calls = append(f.calls, "prev") }
func (f *fakePlayback) NextStep()    { f.calls = append(f.calls, "next") }
func (f *fakePlayback) ToStart()     { f.calls = append(f.calls, "start") }
func (f *fakePlayback) ToEnd()       { f.calls = append(f.calls, "end") }
func (f *fakePlayback) Status() engine.PlaybackStatus {
	return engine.PlaybackStatus{Speed: 4, Pos: len(f.calls), Len: 100}
}

// Outcomes of a command key.
const (
	sends   = "sends"
	asks    = "asks"
	refuses = "refuses"
)

// TestCommandKeysInEveryPhase presses every command key in every phase: it is sent at once
// (p, a), asks first (r, P, R), or is refused locally with the reason in the status bar.
func TestCommandKeysInEveryPhase(t *testing.T) {
	phases := []struct {
		name  string
		build func(testing.TB) (engine.State, time.Time)
		keys  map[string]string // key → outcome
		p     engine.CommandKind
		words string // how the phase reads in a refusal
	}{
		{"running", stateRunning, map[string]string{"p": sends, "a": sends, "r": asks, "P": asks, "R": refuses}, engine.CommandPause, "running"},
		{"paused", statePaused, map[string]string{"p": sends, "a": sends, "r": asks, "P": asks, "R": refuses}, engine.CommandResume, "paused"},
		{"pause step", statePauseStep, map[string]string{"p": sends, "a": sends, "r": asks, "P": asks, "R": refuses}, engine.CommandResume, "paused"},
		{"holding", stateHolding, map[string]string{"p": sends, "a": sends, "r": asks, "P": asks, "R": refuses}, engine.CommandResume, "holding"},
		{"rolling back", stateRollingBack, map[string]string{"p": refuses, "a": refuses, "r": refuses, "P": refuses, "R": refuses}, engine.CommandPause, "rolling back"},
		{"rolled back", stateRolledBack, map[string]string{"p": refuses, "a": refuses, "r": refuses, "P": refuses, "R": asks}, engine.CommandPause, "rolled back"},
		{"promoted", statePromoted, map[string]string{"p": refuses, "a": refuses, "r": refuses, "P": refuses, "R": refuses}, engine.CommandPause, "promoted"},
	}
	kinds := map[string]engine.CommandKind{"a": engine.CommandAdvance, "r": engine.CommandRollback, "P": engine.CommandPromote, "R": engine.CommandRetry}
	for _, ph := range phases {
		for _, k := range []string{"p", "a", "r", "P", "R"} {
			t.Run(ph.name+"/"+k, func(t *testing.T) {
				st, now := ph.build(t)
				h := newHarness(t, st, now, nil)
				kind := kinds[k]
				if k == "p" {
					kind = ph.p
				}
				hintShown := strings.Contains(h.screen(), k+" "+h.m.labelOf(kind))
				h.press(k)
				switch ph.keys[k] {
				case sends:
					if got := h.ctl.sent(); len(got) != 1 || got[0].Kind != kind || got[0].Step != st.Step || got[0].Actor.Name != "alice" {
						t.Fatalf("sent %+v, want one %s for step %d from alice", got, kind, st.Step)
					}
					if !strings.Contains(h.screen(), "✔ "+commandWords(kind)+" accepted") {
						t.Errorf("status does not say the %s was accepted:\n%s", kind, h.screen())
					}
				case asks:
					if h.m.dialog == nil || h.m.dialog.cmd != kind {
						t.Fatalf("no confirm dialog for %s", kind)
					}
					if len(h.ctl.sent()) != 0 {
						t.Fatalf("sent %v before confirming", h.sentKinds())
					}
				case refuses:
					if len(h.ctl.sent()) != 0 {
						t.Fatalf("sent %v; want it refused locally", h.sentKinds())
					}
					want := fmt.Sprintf("cannot %s while the rollout is %s", kind, ph.words)
					if !strings.Contains(h.screen(), want) {
						t.Errorf("status does not say %q:\n%s", want, h.screen())
					}
				}
				if hintShown != (ph.keys[k] != refuses) {
					t.Errorf("status bar hint for %s shown=%v, want it shown only when the key works", k, hintShown)
				}
			})
		}
	}
}

// labelOf is the status-bar label of kind.
func (m *Model) labelOf(kind engine.CommandKind) string {
	for _, c := range m.commands() {
		if c.kind == kind {
			return c.label
		}
	}
	return string(kind)
}

func TestConfirmDialog(t *testing.T) {
	tests := []struct {
		name      string
		build     func(testing.TB) (engine.State, time.Time)
		key       string
		says      []string
		answer    string
		sent      engine.CommandKind // "" if nothing is sent
		afterText string
	}{
		{name: "roll back, yes", build: stateRunning, key: "r", says: []string{"Roll back checkout-api?", "Send 0% to canary (it has 25% now)", "Step 4 of 6 ends as failed"}, answer: "y", sent: engine.CommandRollback, afterText: "✔ roll back accepted"},
		{name: "roll back, enter", build: statePaused, key: "r", says: []string{"Send 0% to canary"}, answer: "enter", sent: engine.CommandRollback},
		{name: "roll back, n cancels", build: stateRunning, key: "r", says: []string{"y   roll back", "n   cancel"}, answer: "n", afterText: "roll back cancelled; nothing was sent"},
		{name: "roll back, esc cancels", build: stateHolding, key: "r", answer: "esc", afterText: "roll back cancelled; nothing was sent"},
		{name: "roll back, q cancels", build: stateRunning, key: "r", answer: "q", afterText: "roll back cancelled"},
		{name: "promote names skipped steps", build: stateRunning, key: "P", says: []string{"Promote checkout-api?", "Send 100% to canary now (it has 25% now)", "Steps 5–6 are skipped"}, answer: "y", sent: engine.CommandPromote},
		{name: "promote warns of a check not passing", build: stateHolding, key: "P", says: []string{"⚠ Not passing now: error_rate (inconclusive)."}, answer: "esc", afterText: "promote cancelled"},
		{name: "promote warns of checks not judged yet", build: statePauseStep, key: "P", says: []string{"⚠ 3 of 3 checks have no verdict yet in this step."}, answer: "n", afterText: "promote cancelled"},
		{name: "retry", build: stateRolledBack, key: "R", says: []string{"Retry checkout-api?", "Start the rollout again from step 1: send 1% to canary (it has"}, answer: "y", sent: engine.CommandRetry},
		{name: "other keys do nothing", build: stateRunning, key: "r", answer: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, now := tt.build(t)
			h := newHarness(t, st, now, nil)
			h.press(tt.key)
			screen := h.screen()
			for _, s := range tt.says {
				if !strings.Contains(screen, s) {
					t.Errorf("dialog does not say %q:\n%s", s, screen)
				}
			}
			h.press(tt.answer)
			got := h.sentKinds()
			switch {
			case tt.sent == "" && len(got) != 0:
				t.Errorf("sent %v, want nothing", got)
			case tt.sent != "" && (len(got) != 1 || got[0] != tt.sent):
				t.Errorf("sent %v, want %s", got, tt.sent)
			}
			if tt.answer == "a" {
				if h.m.dialog == nil {
					t.Error("an unrelated key closed the dialog")
				}
				return
			}
			if h.m.dialog != nil {
				t.Error("dialog still open after the answer")
			}
			if tt.afterText != "" && !strings.Contains(h.screen(), tt.afterText) {
				t.Errorf("status does not say %q:\n%s", tt.afterText, h.screen())
			}
		})
	}
}

// TestConfirmCarriesTheStepSeen: a dialog opened at step 4 sends its command for step 4 even
// if the rollout moved on before the answer, so the engine refuses it as stale.
func TestConfirmCarriesTheStepSeen(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, nil)
	h.press("r")
	moved, _ := statePromoted(t)
	h.m.Update(snapshotMsg{st: moved, ok: true})
	h.ctl.err = fmt.Errorf("%w: it was for step 4, the rollout is at step 6 now", engine.ErrStaleCommand)
	h.press("y")
	if got := h.ctl.sent(); len(got) != 1 || got[0].Step != st.Step {
		t.Fatalf("sent %+v, want a rollback for step index %d", got, st.Step)
	}
	want := "✘ roll back refused: stale command: it was for step 4, the rollout is at step 6 now"
	if !strings.Contains(h.screen(), want) {
		t.Errorf("status does not say %q:\n%s", want, h.screen())
	}
}

// TestRefusalsFromTheEngine shows each kind of refusal with its reason.
func TestRefusalsFromTheEngine(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"stale", fmt.Errorf("%w: it was for step 4, the rollout is at step 5 now", engine.ErrStaleCommand),
			"✘ pause refused: stale command: it was for step 4, the rollout is at step 5 now"},
		{"not allowed", fmt.Errorf("%w: cannot pause while the rollout is paused", engine.ErrNotAllowed),
			"✘ pause refused: not allowed now: cannot pause while the rollout is paused"},
		{"forbidden", fmt.Errorf("%w (alice is a viewer)", engine.ErrForbidden),
			"✘ pause refused: viewers cannot change traffic (alice is a viewer)"},
		{"engine gone", engine.ErrNotRunning, "✘ pause failed: engine not running"},
		{"other", errors.New("journal: disk full"), "✘ pause refused: journal: disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, now := stateRunning(t)
			h := newHarness(t, st, now, nil)
			h.ctl.err = tt.err
			h.press("p")
			if !strings.Contains(h.screen(), tt.want) {
				t.Errorf("status does not say %q:\n%s", tt.want, h.screen())
			}
		})
	}
}

func TestViewerCommandKeysAreDisabled(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, func(o *Options) {
		o.Mode, o.Actor = ModeRemote, engine.Actor{Name: "bob", Role: engine.RoleViewer, Source: "ssh"}
	})
	screen := h.screen()
	if !strings.Contains(screen, "p a r P R off: you are a viewer") || strings.Contains(screen, "p pause") {
		t.Errorf("status bar does not show the viewer's disabled keys:\n%s", screen)
	}
	for _, k := range []string{"p", "a", "r", "P", "R"} {
		h.press(k)
		if h.m.dialog != nil {
			t.Fatalf("%s opened a dialog for a viewer", k)
		}
		if !strings.Contains(h.screen(), "viewers cannot change traffic (bob is a viewer)") {
			t.Errorf("%s: status does not say why:\n%s", k, h.screen())
		}
	}
	if len(h.ctl.sent()) != 0 {
		t.Errorf("a viewer sent %v", h.sentKinds())
	}
	// View keys still work.
	h.press("tab")
	h.press("?")
	if h.m.focus != paneSteps || !h.m.help {
		t.Errorf("view keys did not work for a viewer: %v", h.m)
	}
	if !strings.Contains(h.screen(), "viewers cannot change traffic") || !strings.Contains(h.screen(), "you are a viewer") {
		t.Errorf("help does not show why command keys are off:\n%s", h.screen())
	}
}

func TestQuit(t *testing.T) {
	tests := []struct {
		name   string
		mode   Mode
		ended  bool
		keys   []string
		quit   bool
		choice Choice
	}{
		{name: "local asks, d detaches", keys: []string{"q", "d"}, quit: true, choice: ChoiceDetach},
		{name: "local asks, s stops", keys: []string{"q", "s"}, quit: true, choice: ChoiceStop},
		{name: "local asks, esc stays", keys: []string{"q", "esc"}},
		{name: "local asks, q again stays", keys: []string{"q", "q"}},
		{name: "local ctrl+c twice stops", keys: []string{"ctrl+c", "ctrl+c"}, quit: true, choice: ChoiceStop},
		{name: "local, engine finished: no question", ended: true, keys: []string{"q"}, quit: true},
		{name: "remote disconnects", mode: ModeRemote, keys: []string{"q"}, quit: true},
		{name: "replay quits", mode: ModeReplay, keys: []string{"q"}, quit: true},
		{name: "help open: q closes help", keys: []string{"?", "q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, now := stateRunning(t)
			h := newHarness(t, st, now, func(o *Options) { o.Mode = tt.mode })
			if tt.ended {
				h.m.Update(snapshotMsg{ok: false})
			}
			h.press(tt.keys[0])
			if tt.mode == ModeLocal && !tt.ended && tt.keys[0] != "?" {
				screen := h.screen()
				for _, want := range []string{"Leave the view?", "The rollout is running at step 4 of 6, with 25% to canary.",
					"Neither choice changes traffic.", "d   detach", "s   stop the engine"} {
					if !strings.Contains(screen, want) {
						t.Errorf("quit dialog does not say %q:\n%s", want, screen)
					}
				}
			}
			for _, k := range tt.keys[1:] {
				h.press(k)
			}
			if h.quit != tt.quit || h.m.Choice() != tt.choice {
				t.Errorf("quit=%v choice=%v, want quit=%v choice=%v", h.quit, h.m.Choice(), tt.quit, tt.choice)
			}
			if len(h.ctl.sent()) != 0 {
				t.Errorf("quitting sent %v: leaving must never command the engine", h.sentKinds())
			}
		})
	}
}

func TestQuitDialogClosesWhenTheEngineEnds(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, nil)
	h.press("q")
	_, cmd := h.m.Update(snapshotMsg{ok: false})
	h.run(cmd)
	if !h.quit || h.m.Choice() != ChoiceNone {
		t.Errorf("quit=%v choice=%v: an engine that ends while asking leaves nothing to choose", h.quit, h.m.Choice())
	}
}

// TestChoiceSurvivesLateMessages: ending the subscription on quit closes the channel, and
// the read that was waiting on it must not turn a stop into a plain quit.
func TestChoiceSurvivesLateMessages(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, nil)
	h.press("q")
	h.press("s")
	h.m.Update(snapshotMsg{ok: false})
	h.m.Update(keyMsg("q"))
	if h.m.Choice() != ChoiceStop {
		t.Errorf("choice %v after late messages, want stop", h.m.Choice())
	}
}

func TestViewKeys(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, nil)
	h.m.Update(tea.WindowSizeMsg{Width: 80, Height: 18})
	steps := []struct {
		key   string
		check func() bool
		what  string
	}{
		{"tab", func() bool { return h.m.focus == paneSteps }, "tab focuses steps"},
		{"tab", func() bool { return h.m.focus == paneEvents }, "tab focuses events"},
		{"j", func() bool { return h.m.scroll[paneEvents] == 1 }, "j scrolls events"},
		{"down", func() bool { return h.m.scroll[paneEvents] == 2 }, "↓ scrolls events"},
		{"k", func() bool { return h.m.scroll[paneEvents] == 1 }, "k scrolls back"},
		{"G", func() bool { return h.m.scroll[paneEvents] == len(h.m.rows)-h.m.pageSize(paneEvents) }, "G shows the oldest at the bottom"},
		{"j", func() bool { return h.m.scroll[paneEvents] == h.m.scrollMax(paneEvents) }, "j stops at the end"},
		{"g", func() bool { return h.m.scroll[paneEvents] == 0 }, "g goes to the newest"},
		{"pgdown", func() bool { return h.m.scroll[paneEvents] == h.m.pageSize(paneEvents) }, "pgdown moves a page"},
		{"pgup", func() bool { return h.m.scroll[paneEvents] == 0 }, "pgup moves back"},
		{"up", func() bool { return h.m.scroll[paneEvents] == 0 }, "↑ stops at the top"},
		{"shift+tab", func() bool { return h.m.focus == paneSteps }, "shift+tab goes back"},
		{"tab", func() bool { return h.m.focus == paneEvents }, ""},
		{"tab", func() bool { return h.m.focus == paneChecks }, "tab wraps to checks"},
		{"j", func() bool { return h.m.scroll[paneChecks] == 1 && strings.Contains(h.screen(), "2–3 of 3") }, "j scrolls checks"},
		{"end", func() bool { return h.m.scroll[paneChecks] == 3-h.m.pageSize(paneChecks) }, "end shows the last check"},
		{"home", func() bool { return h.m.scroll[paneChecks] == 0 }, "home goes to the first"},
		{"t", func() bool { return h.m.styles.theme.Name == "light" && strings.Contains(h.screen(), "theme light") }, "t cycles the theme"},
		{"?", func() bool {
			return h.m.help && strings.Contains(h.screen(), "KEYS — the rollout is running at step 4/6")
		}, "? opens help"},
		{"j", func() bool { return h.m.help && h.m.helpAt == 1 }, "j scrolls help"},
		{"t", func() bool { return h.m.help && h.m.styles.theme.Name == "high-contrast" }, "t works in help"},
		{"?", func() bool { return !h.m.help }, "? closes help"},
		{"?", func() bool { return h.m.help }, ""},
		{"esc", func() bool { return !h.m.help }, "esc closes help"},
		{"esc", func() bool { return h.m.status.text == "" }, "esc clears the message"},
		{"x", func() bool { return len(h.ctl.sent()) == 0 && !h.quit }, "an unbound key does nothing"},
	}
	for _, s := range steps {
		h.press(s.key)
		if !s.check() {
			t.Fatalf("%s: after %q: %v scroll=%v\n%s", s.what, s.key, h.m, h.m.scroll, h.screen())
		}
	}
}

func TestReplayKeysDrivePlayback(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, func(o *Options) { o.Mode, o.Commander = ModeReplay, nil })
	h.m.opts.Playback = h.pb
	for _, k := range []string{" ", "+", "=", "-", "_", "left", "right", "g", "home", "G", "end", "p", "a", "r", "P", "R"} {
		h.press(k)
	}
	// home and end scroll the focused pane, as outside a replay.
	want := "toggle faster faster slower slower prev next start end"
	if got := strings.Join(h.pb.calls, " "); got != want {
		t.Errorf("playback calls %q, want %q", got, want)
	}
	if h.m.dialog != nil || len(h.ctl.sent()) != 0 {
		t.Error("a command key acted in a replay")
	}
	h.m.Update(playbackMsg{status: engine.PlaybackStatus{Speed: 2, Paused: true, Pos: 40, Len: 100, At: st.StepStartedAt.Add(90 * time.Second)}})
	screen := h.screen()
	for _, s := range []string{"REPLAY ‖ paused event 40/100", "in step 1m30s", "space pause/play", "+/- speed", "←/→ step", "replay: commands are off"} {
		if !strings.Contains(screen, s) {
			t.Errorf("replay screen lacks %q:\n%s", s, screen)
		}
	}
	for _, s := range []string{"p pause", "r roll back"} {
		if strings.Contains(screen, s) {
			t.Errorf("replay screen shows command key %q", s)
		}
	}
}

func TestEngineEndedDisablesCommands(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, nil)
	h.m.Update(snapshotMsg{ok: false})
	h.press("p")
	if len(h.ctl.sent()) != 0 {
		t.Fatal("sent a command to an engine that has stopped")
	}
	screen := h.screen()
	for _, s := range []string{"✘ pause refused: engine not running", "ENGINE STOPPED"} {
		if !strings.Contains(screen, s) {
			t.Errorf("screen lacks %q:\n%s", s, screen)
		}
	}
}

// TestSnapshotsAreCoalesced: a state is drawn at once, and the next is read only after a
// frame's time, so a stream of states redraws at most ten times a second.
func TestSnapshotsAreCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, now := stateRunning(t)
		h := newHarness(t, st, now, nil)
		ch := make(chan engine.State, 1)
		h.m.sub = ch
		_, cmd := h.m.Update(snapshotMsg{st: st, ok: true})
		if cmd == nil {
			t.Fatal("no frame timer after a state")
		}
		start := time.Now()
		msg := cmd()
		if _, ok := msg.(frameMsg); !ok || time.Since(start) != frameInterval {
			t.Fatalf("after a state: %T after %s, want a frameMsg after %s", msg, time.Since(start), frameInterval)
		}
		before := h.m.View()
		_, wait := h.m.Update(msg)
		if wait == nil {
			t.Fatal("the frame did not re-arm the reader")
		}
		if h.m.dirty || h.m.View() != before {
			t.Error("a frame with no new state redrew the screen")
		}
		paused, _ := statePaused(t)
		ch <- paused
		got, ok := wait().(snapshotMsg)
		if !ok || !got.ok || got.st.Phase != engine.PhasePaused {
			t.Fatalf("the re-armed reader returned %+v", got)
		}
		h.m.Update(got)
		if !strings.Contains(h.screen(), "PAUSED") {
			t.Errorf("the next state was not drawn:\n%s", h.screen())
		}
	})
}

func TestHeaderShowsWhoIsConnected(t *testing.T) {
	st, now := stateRunning(t)
	people := []engine.Actor{{Name: "alice", Role: engine.RoleOperator}, {Name: "bob", Role: engine.RoleViewer}}
	h := newHarness(t, st, now, func(o *Options) {
		o.Mode = ModeRemote
		o.Presence = func() []engine.Actor { return people }
	})
	h.m.Init()
	if first := strings.Split(h.screen(), "\n")[0]; !strings.Contains(first, "2 here: alice, bob (viewer)") {
		t.Errorf("header does not list who is connected:\n%s", first)
	}
	people = append(people, engine.Actor{Name: "carol", Role: engine.RoleOperator})
	h.m.Update(tickMsg{})
	if first := strings.Split(h.screen(), "\n")[0]; !strings.Contains(first, "3 here: alice, bob (viewer), carol") {
		t.Errorf("header did not follow a new arrival within a tick:\n%s", first)
	}
}

func TestNoteInStatusBar(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, func(o *Options) { o.Note = "proxy http://127.0.0.1:8080" })
	lines := strings.Split(strings.TrimRight(h.screen(), "\n"), "\n")
	if !strings.Contains(lines[len(lines)-2], "you are alice (operator) · proxy http://127.0.0.1:8080") {
		t.Errorf("status bar does not carry the note:\n%s", lines[len(lines)-2])
	}
}

// TestQuitAfterRollbackDoesNotAsk: a local run whose engine waits after a rollback (for R)
// leaves at once on q, stopping the engine: there is nothing left to supervise.
func TestQuitAfterRollbackDoesNotAsk(t *testing.T) {
	st, now := stateRolledBack(t)
	h := newHarness(t, st, now, nil)
	if !strings.Contains(h.screen(), "R retry") {
		t.Errorf("a rolled-back local run does not offer R:\n%s", h.screen())
	}
	h.press("q")
	if h.m.dialog != nil || !h.quit || h.m.Choice() != ChoiceStop {
		t.Errorf("q after a rollback: dialog %v, quit %v, choice %v; want to leave at once, stopping", h.m.dialog, h.quit, h.m.Choice())
	}
}

// TestCountdownsCountFromTheSnapshot: a snapshot that arrives between clock ticks is drawn
// against the time it arrived, not the last tick's, so the next look is never shown further
// off than one interval.
func TestCountdownsCountFromTheSnapshot(t *testing.T) {
	st, _ := stateRunning(t)
	now := st.LastLookAt.Add(-900 * time.Millisecond) // a tick just before the last look
	h := newHarness(t, st, now, func(o *Options) { o.Clock = func() time.Time { return now } })
	h.m.Update(tickMsg{})
	now = st.LastLookAt.Add(50 * time.Millisecond) // the look's snapshot arrives
	h.m.Update(snapshotMsg{st: st, ok: true})
	want := "next look " + formatDuration(st.NextLookAt().Sub(now))
	if !strings.Contains(h.screen(), want) {
		t.Errorf("header does not say %q:\n%s", want, h.screen())
	}
}
