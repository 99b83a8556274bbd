// Package tui is perch's terminal UI: a bubbletea program that shows a rollout live (header,
// check panes, step timeline, event log, status bar) and sends an operator's keystrokes to the
// engine as commands. The same model serves a local `perch run`, each SSH session of
// `perch serve` (with the session's own renderer, size and theme) and `perch replay`.
//
// The model never blocks: states arrive through a tea.Cmd that reads one snapshot and re-arms
// (at most ten times a second), and commands go to the engine in tea.Cmds.
//
// Overview is the first screen when a fleet of rollouts runs (NewOverview, RunOverview; a Fleet
// gives it the rollouts' statuses and each one's engine): one row per rollout, sorted by what
// needs an operator, from which enter opens the same dashboard Model over that rollout alone.
// The dashboard's messages reach it wrapped with the opening they belong to (childMsg), so
// what a closed dashboard still had in flight is dropped; its esc and q go back to the
// overview once its own dialogs, help and detail view are closed.
package tui

import (
	"context"
	"io"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/themes"
)

// Snapshots is where the model gets rollout states: the engine, or a replay's player. The
// channel holds the newest state (a reader that falls behind skips to the newest) and closes
// after the last one; the function unsubscribes.
type Snapshots interface {
	Subscribe() (<-chan engine.State, func())
}

// Commander is where the view sends an operator's commands: the engine. A refusal wraps
// engine.ErrStaleCommand, engine.ErrNotAllowed or engine.ErrForbidden with the reason.
type Commander interface {
	Do(ctx context.Context, cmd engine.Command) error
}

// Playback steers a replay: *engine.Player.
type Playback interface {
	TogglePause()
	Faster()
	Slower()
	PrevStep()
	NextStep()
	ToStart()
	ToEnd()
	Status() engine.PlaybackStatus
}

// Mode says who the view is for, which decides what q does.
type Mode int

// The modes.
const (
	// ModeLocal is `perch run` in this terminal: q asks whether to leave the engine running
	// headless or to stop it (never changing traffic either way).
	ModeLocal Mode = iota
	// ModeRemote is one SSH session of `perch serve`: q disconnects; the engine runs on.
	ModeRemote
	// ModeReplay is `perch replay`: command keys are hidden, playback keys steer the replay,
	// and q quits.
	ModeReplay
)

// Choice is what the operator chose when leaving the view of a local run.
type Choice int

// The choices.
const (
	// ChoiceNone: the view closed with nothing to decide (remote, replay, or the engine had
	// already finished).
	ChoiceNone Choice = iota
	// ChoiceDetach: keep the engine running headless.
	ChoiceDetach
	// ChoiceStop: stop the engine, leaving traffic as it is, so the run can be resumed.
	ChoiceStop
)

// Options is what a view is built with.
type Options struct {
	Snapshots Snapshots
	Commander Commander // nil in a replay
	Playback  Playback  // set for a replay only
	// Actor is who commands come from: the local user for `perch run`, the key's owner for an
	// SSH session. A viewer's command keys are shown disabled.
	Actor engine.Actor
	Mode  Mode
	// Theme is the starting theme (zero: themes.Default). t cycles through it and the
	// built-in themes.
	Theme themes.Theme
	// Renderer renders styles for this view's terminal (an SSH session has its own); nil
	// means lipgloss.DefaultRenderer(). Its colour profile downsamples the theme.
	Renderer *lipgloss.Renderer
	// Context ends the subscription when done (an SSH session's context); nil: only quitting
	// ends it.
	Context context.Context
	// NoResume says a stopped run cannot be continued (the demo has no --resume), so the quit
	// dialog does not offer to.
	NoResume bool
	// Note is shown in the status bar beside who you are, when no message is (the demo puts
	// its proxy's address there, since the screen hides what perch printed before).
	Note string
	// Presence lists who is watching the same engine (the sessions of `perch serve`), shown in
	// the header; nil for a local view. It is read once a second, so it must not block.
	Presence func() []engine.Actor
	// Input and Output are the terminal of a local view (nil: the process's stdin and stdout,
	// as bubbletea chooses them); perch run passes its own to notice a terminal that went away.
	Input  io.Reader
	Output io.Writer
	// Clock and Location give the time shown (defaults time.Now and time.Local); tests fix
	// them. A replay shows the recording's time instead.
	Clock    func() time.Time
	Location *time.Location
}
