package tui

import (
	"context"
	"errors"
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/perchhq/perch/engine"
)

// Messages, named for what happened.
type (
	subscribedMsg struct {
		ch     <-chan engine.State
		cancel func()
	}
	// snapshotMsg is the newest state, or ok=false once the channel has closed.
	snapshotMsg struct {
		st       engine.State
		ok       bool
		playback *engine.PlaybackStatus
	}
	frameMsg       struct{} // a frame's time has passed since the last state: read the next
	tickMsg        struct{} // a second has passed: clocks move
	playbackMsg    struct{ status engine.PlaybackStatus }
	commandDoneMsg struct {
		kind engine.CommandKind
		err  error
	}
)

// frameInterval is the least time between two states drawn: at most ten redraws a second
// while data streams in.
const frameInterval = 100 * time.Millisecond

// commandTimeout bounds how long a command may wait for the engine.
const commandTimeout = 10 * time.Second

func subscribe(src Snapshots) tea.Cmd {
	return func() tea.Msg {
		ch, cancel := src.Subscribe()
		return subscribedMsg{ch: ch, cancel: cancel}
	}
}

// wait reads one state (the newest) and returns it as a message; Update arms it again after
// a frame. It ends the subscription if the view's context ends first.
func (m *Model) wait() tea.Cmd {
	ch, cancel, ctx, pb := m.sub, m.cancel, m.ctx, m.opts.Playback
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		select {
		case st, ok := <-ch:
			msg := snapshotMsg{st: st, ok: ok}
			if ok && pb != nil {
				s := pb.Status()
				msg.playback = &s
			}
			return msg
		case <-ctx.Done():
			if cancel != nil {
				cancel()
			}
			return nil
		}
	}
}

func frame() tea.Cmd {
	return tea.Tick(frameInterval, func(time.Time) tea.Msg { return frameMsg{} })
}

func tick() tea.Cmd {
	return tea.Every(time.Second, func(time.Time) tea.Msg { return tickMsg{} })
}

// send runs cmd against the engine and reports how it went.
func send(ctx context.Context, c Commander, cmd engine.Command) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, commandTimeout)
		defer cancel()
		err := c.Do(ctx, cmd)
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer from the engine in %s", commandTimeout)
		}
		return commandDoneMsg{kind: cmd.Kind, err: err}
	}
}

// playback runs a playback action (nil: none) and reports where the replay stands.
func playback(p Playback, action func()) tea.Cmd {
	return func() tea.Msg {
		if action != nil {
			action()
		}
		return playbackMsg{status: p.Status()}
	}
}
