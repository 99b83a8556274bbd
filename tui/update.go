package tui

import (
	"errors"
	"fmt"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/perchhq/perch/engine"
)

// Update handles one message: keys, snapshots, command results, clock ticks.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if m.quitting {
		return m, nil // the choice is made; messages still in flight change nothing
	}
	switch msg := msg.(type) {
	case frameMsg:
		return m, m.wait() // nothing new to show: keep the last frame
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyMsg:
		m.dirty = true
		return m, m.handleKey(msg)
	case subscribedMsg:
		m.sub, m.cancel = msg.ch, msg.cancel
		return m, m.wait()
	case snapshotMsg:
		return m, m.handleSnapshot(msg)
	case tickMsg:
		m.setNow()
		m.readPresence()
		if m.status.text != "" && !m.now.Before(m.status.until) {
			m.status = status{}
		}
		cmds := []tea.Cmd{tick()}
		if m.opts.Playback != nil {
			cmds = append(cmds, playback(m.opts.Playback, nil))
		}
		m.dirty = true
		return m, tea.Batch(cmds...)
	case playbackMsg:
		m.playback = msg.status
		m.setNow()
	case commandDoneMsg:
		m.commandDone(msg)
	default:
		return m, nil
	}
	m.dirty = true
	return m, nil
}

func (m *Model) handleSnapshot(msg snapshotMsg) tea.Cmd {
	m.dirty = true
	if !msg.ok {
		m.ended = true
		m.sub = nil
		if m.dialog != nil && m.dialog.kind != dialogQuit {
			m.dialog = nil // nothing left to confirm
		}
		if m.dialog != nil && m.dialog.kind == dialogQuit {
			m.dialog = nil
			return m.quit(ChoiceNone)
		}
		return nil
	}
	m.st, m.have = m.printable(msg.st), true
	m.rows = logRows(m.st.Log)
	if d := m.dialog; d != nil && d.kind == dialogConfirm {
		m.dialog = m.confirmDialog(d.cmd, d.step) // the facts it states follow the rollout
	}
	if msg.playback != nil {
		m.playback = *msg.playback
	}
	// The countdowns are drawn against the state just taken, not the last tick's clock,
	// which may be a second old: "next look 2s" on a 1 s interval.
	m.setNow()
	m.clampScroll()
	return frame() // read the next state after a frame's time: at most ten redraws a second
}

// handleKey routes a key: to the open dialog, then the help overlay, then the main view.
func (m *Model) handleKey(msg tea.KeyMsg) tea.Cmd {
	switch {
	case m.dialog != nil:
		return m.dialogKey(msg)
	case m.help:
		return m.helpKey(msg)
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit), key.Matches(msg, k.Interrupt):
		return m.quitKey()
	case key.Matches(msg, k.Help):
		m.help, m.helpAt = true, 0
		return nil
	case key.Matches(msg, k.Theme):
		return m.nextTheme()
	case key.Matches(msg, k.NextFocus):
		m.focus = (m.focus + 1) % numPanes
		return nil
	case key.Matches(msg, k.PrevFocus):
		m.focus = (m.focus + numPanes - 1) % numPanes
		return nil
	case key.Matches(msg, k.Close):
		m.status = status{}
		return nil
	}
	if m.opts.Mode == ModeReplay {
		if cmd, ok := m.replayKey(msg); ok {
			return cmd
		}
	}
	if m.scrollKey(msg) {
		return nil
	}
	if m.opts.Mode != ModeReplay {
		return m.commandKey(msg)
	}
	return nil
}

// quitKey leaves the view. A local run with the engine still supervising asks first whether
// to keep it running headless or stop it; nothing else asks.
func (m *Model) quitKey() tea.Cmd {
	if m.opts.Mode == ModeLocal && !m.ended && m.opts.Commander != nil {
		if m.have && m.st.Phase.Done() {
			// Rolled back (the engine waits for a retry) or promoted: nothing left to
			// supervise and nothing for stopping to change.
			return m.quit(ChoiceStop)
		}
		m.dialog = m.quitDialog()
		return nil
	}
	return m.quit(ChoiceNone)
}

func (m *Model) replayKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	p, k := m.opts.Playback, m.keys
	if p == nil {
		return nil, false
	}
	for _, a := range []struct {
		b  key.Binding
		do func()
	}{
		{k.PlayPause, p.TogglePause}, {k.Faster, p.Faster}, {k.Slower, p.Slower},
		{k.PrevStep, p.PrevStep}, {k.NextStep, p.NextStep}, {k.ToStart, p.ToStart}, {k.ToEnd, p.ToEnd},
	} {
		if key.Matches(msg, a.b) {
			return playback(p, a.do), true
		}
	}
	return nil, false
}

// scrollKey moves the focused pane; it reports whether msg was a scroll key.
func (m *Model) scrollKey(msg tea.KeyMsg) bool {
	k, at := m.keys, &m.scroll[m.focus]
	page := max(m.pageSize(m.focus), 1)
	switch {
	case key.Matches(msg, k.Down):
		*at++
	case key.Matches(msg, k.Up):
		*at--
	case key.Matches(msg, k.PageDown):
		*at += page
	case key.Matches(msg, k.PageUp):
		*at -= page
	case key.Matches(msg, k.Top):
		*at = 0
	case key.Matches(msg, k.Bottom):
		*at = m.scrollMax(m.focus)
	default:
		return false
	}
	m.clampScroll()
	return true
}

// commandKey sends a command key's command, or opens its confirm dialog, or says why not.
func (m *Model) commandKey(msg tea.KeyMsg) tea.Cmd {
	for _, c := range m.commands() {
		if !key.Matches(msg, c.key) {
			continue
		}
		if c.err != nil {
			m.setStatus(statusError, fmt.Sprintf("✘ %s refused: %v", c.label, c.err))
			return nil
		}
		if c.confirm {
			m.dialog = m.confirmDialog(c.kind, m.st.Step)
			return nil
		}
		return m.sendCommand(c.kind, m.st.Step)
	}
	return nil
}

// sendCommand sends kind, issued against step (the step the operator was looking at, so the
// engine refuses it if the rollout has moved on).
func (m *Model) sendCommand(kind engine.CommandKind, step int) tea.Cmd {
	cmd := engine.Command{Kind: kind, Actor: m.opts.Actor, Step: step}
	m.setStatus(statusInfo, fmt.Sprintf("… sending %s", commandWords(kind)))
	return send(m.ctx, m.opts.Commander, cmd)
}

func (m *Model) commandDone(msg commandDoneMsg) {
	if msg.err == nil {
		m.setStatus(statusOK, fmt.Sprintf("✔ %s accepted", commandWords(msg.kind)))
		return
	}
	// The engine's refusals say why in their own words (stale, not allowed now, a viewer).
	what := "refused"
	if errors.Is(msg.err, engine.ErrNotRunning) {
		what = "failed"
	}
	m.setStatus(statusError, fmt.Sprintf("✘ %s %s: %v", commandWords(msg.kind), what, msg.err))
}

func (m *Model) nextTheme() tea.Cmd {
	m.themeIdx = (m.themeIdx + 1) % len(m.themes)
	m.styles = newStyles(m.themes[m.themeIdx], m.render)
	m.setStatus(statusInfo, fmt.Sprintf("theme %s (%d of %d; %s for the next)", m.themes[m.themeIdx].Name, m.themeIdx+1, len(m.themes), m.keys.Theme.Help().Key))
	return nil
}

func (m *Model) helpKey(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Help), key.Matches(msg, k.Close), key.Matches(msg, k.Quit):
		m.help = false
	case key.Matches(msg, k.Interrupt):
		m.help = false
		return m.quitKey()
	case key.Matches(msg, k.Theme):
		return m.nextTheme()
	case key.Matches(msg, k.Down):
		m.helpAt++
	case key.Matches(msg, k.Up):
		m.helpAt = max(m.helpAt-1, 0)
	case key.Matches(msg, k.Top):
		m.helpAt = 0
	}
	return nil
}

func (m *Model) dialogKey(msg tea.KeyMsg) tea.Cmd {
	d, k := m.dialog, m.keys
	if d.kind == dialogQuit {
		switch {
		case key.Matches(msg, k.Detach):
			return m.quit(ChoiceDetach)
		case key.Matches(msg, k.Stop), key.Matches(msg, k.Interrupt):
			return m.quit(ChoiceStop)
		case key.Matches(msg, k.Stay), key.Matches(msg, k.Quit):
			m.dialog = nil
		}
		return nil
	}
	switch {
	case key.Matches(msg, k.Yes):
		m.dialog = nil
		return m.sendCommand(d.cmd, d.step)
	case key.Matches(msg, k.No), key.Matches(msg, k.Quit), key.Matches(msg, k.Interrupt):
		m.dialog = nil
		m.setStatus(statusInfo, fmt.Sprintf("%s cancelled; nothing was sent", commandWords(d.cmd)))
	}
	return nil
}
