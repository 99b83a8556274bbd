package tui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"

	"github.com/perchhq/perch/engine"
)

// keyMap is every key the view answers, built per view (never shared).
type keyMap struct {
	Pause, Advance, Rollback, Promote, Retry key.Binding
	NextFocus, PrevFocus                     key.Binding
	Down, Up, PageDown, PageUp, Top, Bottom  key.Binding
	Theme, Help, Quit, Close, Interrupt      key.Binding
	Yes, No, Detach, Stop                    key.Binding
	// Replay.
	PlayPause, Faster, Slower, PrevStep, NextStep, ToStart, ToEnd key.Binding
}

func newKeyMap() keyMap {
	b := func(help string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(keys[0], help))
	}
	return keyMap{
		Pause:     b("pause/resume", "p"),
		Advance:   b("advance", "a"),
		Rollback:  b("roll back", "r"),
		Promote:   b("promote", "P"),
		Retry:     b("retry", "R"),
		NextFocus: b("next pane", "tab"),
		PrevFocus: b("previous pane", "shift+tab"),
		Down:      b("down", "j", "down"),
		Up:        b("up", "k", "up"),
		PageDown:  b("page down", "pgdown", "ctrl+d", "ctrl+f"),
		PageUp:    b("page up", "pgup", "ctrl+u", "ctrl+b"),
		Top:       b("top", "home", "g"),
		Bottom:    b("bottom", "end", "G"),
		Theme:     b("theme", "t"),
		Help:      b("help", "?"),
		Quit:      b("quit", "q"),
		Close:     b("close", "esc"),
		Interrupt: b("interrupt", "ctrl+c"),
		Yes:       b("yes", "y", "enter"),
		No:        b("no", "n", "esc"),
		Detach:    b("detach", "d"),
		Stop:      b("stop", "s"),
		PlayPause: b("pause/play", " "),
		Faster:    b("faster", "+", "="),
		Slower:    b("slower", "-", "_"),
		PrevStep:  b("previous step", "left"),
		NextStep:  b("next step", "right"),
		ToStart:   b("start", "g", "home"),
		ToEnd:     b("end", "G", "end"),
	}
}

// command is one operator command as the view offers it now.
type command struct {
	kind    engine.CommandKind
	key     string
	label   string // what the status bar calls it now ("pause" or "resume")
	confirm bool   // asks before sending
	err     error  // why it cannot be sent now; nil when it can
}

// commands lists the operator commands in status-bar order, each with whether it can be sent
// now. It mirrors the engine's own rules so the status bar shows only what will work; the
// engine still decides, and its refusal is shown if the two disagree.
func (m *Model) commands() []command {
	st := &m.st
	p := command{kind: engine.CommandPause, key: "p", label: "pause"}
	if st.Phase == engine.PhasePaused || st.Phase == engine.PhaseHolding {
		p.kind, p.label = engine.CommandResume, "resume"
	}
	cmds := []command{
		p,
		{kind: engine.CommandAdvance, key: "a", label: "advance"},
		{kind: engine.CommandRollback, key: "r", label: "roll back", confirm: true},
		{kind: engine.CommandPromote, key: "P", label: "promote", confirm: true},
		{kind: engine.CommandRetry, key: "R", label: "retry", confirm: true},
	}
	for i := range cmds {
		cmds[i].err = m.refusal(cmds[i].kind)
	}
	return cmds
}

// refusal is why kind cannot be sent now, worded as the engine words its refusals.
func (m *Model) refusal(kind engine.CommandKind) error {
	switch {
	case m.opts.Mode == ModeReplay:
		return fmt.Errorf("%w: this is a replay", engine.ErrNotAllowed)
	case m.opts.Controller == nil:
		return fmt.Errorf("%w: this view has no engine to command", engine.ErrNotAllowed)
	case m.opts.Actor.Role == engine.RoleViewer:
		return fmt.Errorf("%w (%s is a viewer)", engine.ErrForbidden, m.opts.Actor.Name)
	case m.ended:
		return engine.ErrNotRunning
	case !m.have:
		return fmt.Errorf("%w: no state from the engine yet", engine.ErrNotAllowed)
	}
	return m.st.Allowed(kind)
}
