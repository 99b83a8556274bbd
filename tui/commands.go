package tui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"

	"github.com/perchhq/perch/engine"
)

// command is one operator command as the view offers it now.
type command struct {
	kind    engine.CommandKind
	key     key.Binding
	label   string // what the status bar calls it now ("pause" or "resume")
	confirm bool   // asks before sending
	err     error  // why it cannot be sent now; nil when it can
}

// commands lists the operator commands in status-bar order, each with whether it can be sent
// now. It mirrors the engine's own rules so the status bar shows only what will work; the
// engine still decides, and its refusal is shown if the two disagree.
func (m *Model) commands() []command {
	st, k := &m.st, m.keys
	p := command{kind: engine.CommandPause, key: k.Pause, label: "pause"}
	if st.Phase == engine.PhasePaused || st.Phase == engine.PhaseHolding {
		p.kind, p.label = engine.CommandResume, "resume"
	}
	cmds := []command{
		p,
		{kind: engine.CommandAdvance, key: k.Advance, label: "advance"},
		{kind: engine.CommandRollback, key: k.Rollback, label: "roll back", confirm: true},
		{kind: engine.CommandPromote, key: k.Promote, label: "promote", confirm: true},
		{kind: engine.CommandRetry, key: k.Retry, label: "retry", confirm: true},
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
	case m.opts.Commander == nil:
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

// commandWords names a command in a sentence.
func commandWords(k engine.CommandKind) string {
	if k == engine.CommandRollback {
		return "roll back"
	}
	return string(k)
}
