package tui

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/internal/printable"
)

// helpEntry is one key in the help overlay.
type helpEntry struct {
	key, does string
	off       string // why it does nothing now; empty when it works
}

// helpEntries lists every key and what it does in the current phase.
func (m *Model) helpEntries() []helpEntry {
	k := m.keys
	var out []helpEntry
	if m.opts.Mode == ModeReplay {
		out = append(out,
			helpEntry{key: k.PlayPause.Help().Key, does: "pause or play the replay"},
			helpEntry{key: pair(k.Faster, k.Slower, " / "), does: "play faster / slower"},
			helpEntry{key: pair(k.PrevStep, k.NextStep, " / "), does: "jump to the previous / next step"},
			helpEntry{key: pair(k.ToStart, k.ToEnd, " / "), does: "jump to the start / end of the recording"},
		)
	} else {
		for _, c := range m.commands() {
			e := helpEntry{key: c.key.Help().Key, does: m.commandHelp(c.kind)}
			if c.err != nil {
				e.off = m.offWords(c.err)
			}
			out = append(out, e)
		}
	}
	ends := pairs(k.Top, k.Bottom)
	if m.opts.Mode == ModeReplay {
		// The pair the replay's start/end keys are shown as is theirs here.
		ends = slices.DeleteFunc(ends, func(p string) bool { return p == pair(k.ToStart, k.ToEnd, "/") })
	}
	scroll := fmt.Sprintf("scroll the focused pane; %s by a page; %s", pair(k.PageDown, k.PageUp, "/"), strings.Join(ends, " or "))
	quit := k.Quit.Help().Key
	out = append(out,
		helpEntry{key: k.NextFocus.Help().Key, does: fmt.Sprintf("focus the next pane (now %s); %s the previous", m.focus, k.PrevFocus.Help().Key)},
		helpEntry{key: strings.Join(pairs(k.Down, k.Up), " "), does: scroll + " to the top/bottom; the cursor (▸) moves with it"},
		helpEntry{key: k.Open.Help().Key, does: fmt.Sprintf("open the check, step or event under the cursor in full: reason, query, tolerance, judge, charts over the step; %s returns", k.Back.Help().Key)},
		helpEntry{key: k.Theme.Help().Key, does: fmt.Sprintf("next colour theme (now %s)", printable.Line(m.themes[m.themeIdx].Name))},
		helpEntry{key: k.Help.Help().Key, does: fmt.Sprintf("close this help (%s too)", k.Close.Help().Key)},
		helpEntry{key: quit, does: m.quitHelp()},
	)
	if m.opts.Mode == ModeLocal && m.opts.Commander != nil {
		ctrlC := k.Interrupt.Help().Key
		out = append(out, helpEntry{key: ctrlC, does: fmt.Sprintf("as %s; a second %s stops the engine (traffic stays as it is)", quit, ctrlC)})
	}
	return out
}

// offWords says briefly why a command key does nothing now.
func (m *Model) offWords(err error) string {
	switch {
	case errors.Is(err, engine.ErrForbidden):
		return "viewers cannot change traffic"
	case errors.Is(err, engine.ErrNotRunning):
		return "the engine has stopped"
	case !m.have:
		return "no state from the engine yet"
	}
	return "not while " + m.st.Phase.Words()
}

func (m *Model) commandHelp(kind engine.CommandKind) string {
	st := &m.st
	if !m.have || st.Spec == nil {
		return commandWords(kind)
	}
	n, cur := len(st.Steps), st.Step+1
	switch kind {
	case engine.CommandPause:
		return "pause: stop progress here; checks keep running and a failure still rolls back"
	case engine.CommandResume:
		if st.Phase == engine.PhaseHolding {
			return "resume: continue (a hold on inconclusive evidence holds again if it stays inconclusive)"
		}
		if st.PauseStep {
			return fmt.Sprintf("resume: end pause step %d and go on", cur)
		}
		return "resume: continue the step where it was paused"
	case engine.CommandAdvance:
		if cur < n {
			return fmt.Sprintf("advance: end step %d now and start step %d (%s)", cur, cur+1, st.Spec.Steps[cur])
		}
		return fmt.Sprintf("advance: end step %d now; it is the last, so the canary is promoted", cur)
	case engine.CommandRollback:
		return "roll back: send 0% to canary and end the rollout (asks first)"
	case engine.CommandPromote:
		return "promote: send 100% to canary now, skipping the remaining steps (asks first)"
	case engine.CommandRetry:
		return "retry: start again from step 1 after a rollback (asks first)"
	}
	return string(kind)
}

func (m *Model) quitHelp() string {
	if m.inFleet {
		return fmt.Sprintf("back to the overview of every rollout (%s too); the rollout carries on", m.keys.Back.Help().Key)
	}
	switch m.opts.Mode {
	case ModeRemote:
		return "disconnect; the rollout carries on"
	case ModeReplay:
		return "quit the replay"
	}
	if m.ended || m.opts.Commander == nil {
		return "quit"
	}
	return "leave the view: asks whether to keep the engine running headless or stop it; never changes traffic"
}

// helpPane draws the overlay in the body's place.
func (m *Model) helpPane(width, height int) []string {
	s := &m.styles
	title := "KEYS"
	if m.have {
		title = fmt.Sprintf("KEYS — the rollout is %s at step %d/%d", m.st.Phase.Words(), m.st.Step+1, len(m.st.Steps))
	}
	if m.opts.Actor.Role == engine.RoleViewer {
		title += " — you are a viewer"
	}
	lines := []string{rule(s.titleFocus.Render(title), s.muted.Render(fmt.Sprintf("%s or %s closes", m.keys.Help.Help().Key, m.keys.Close.Help().Key)), width, s.border.Render)}
	var rows []string
	const keyW = 10 // "  " and the key, padded to 8
	for _, e := range m.helpEntries() {
		k, does, style := s.key.Render(fmt.Sprintf("  %-8s", e.key)), e.does, s.text
		if e.off != "" {
			k, does, style = s.keyOff.Render(fmt.Sprintf("  %-8s", e.key)), e.does+" — "+e.off, s.muted
		}
		for i, l := range strings.Split(ansi.Wordwrap(does, max(width-keyW-1, 10), " "), "\n") {
			if i > 0 {
				k = strings.Repeat(" ", keyW)
			}
			rows = append(rows, cut(k+" "+style.Render(l), width))
		}
	}
	first := min(m.helpAt, max(len(rows)-(height-1), 0))
	return append(lines, rows[first:min(len(rows), first+height-1)]...)
}
