package tui

import (
	"context"
	"fmt"
	"io"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/themes"
)

// Fleet is where the overview gets the rollouts of a fleet: the list of their statuses, and
// the engine of each one that runs, to open its dashboard and send it commands.
type Fleet interface {
	// Subscribe sends the newest list of statuses (a reader that falls behind skips to the
	// newest) and closes once the fleet has ended; the function unsubscribes.
	Subscribe() (<-chan []fleet.Status, func())
	// Rollout is the engine of the rollout named name, if it runs (a rollout waiting for
	// others, cancelled or invalid has none).
	Rollout(name string) (fleet.Rollout, bool)
}

// OverviewOptions is what an overview is built with.
type OverviewOptions struct {
	Fleet Fleet
	// Actor is who commands come from, as in Options; a viewer's command keys are off, in the
	// overview and in every dashboard opened from it.
	Actor engine.Actor
	// Mode is ModeLocal (q asks whether to leave the engines running headless or stop them) or
	// ModeRemote (q disconnects).
	Mode Mode
	// Theme, Renderer, Context, NoResume, Note, Input, Output, Clock and Location are as in
	// Options, for the overview and the dashboards opened from it.
	Theme    themes.Theme
	Renderer *lipgloss.Renderer
	Context  context.Context
	NoResume bool
	Note     string
	Input    io.Reader
	Output   io.Writer
	Clock    func() time.Time
	Location *time.Location
	// Presence lists who watches each rollout, by rollout name (the SSH sessions of a served
	// fleet; the empty name: those at the overview); nil for a local view. It is read once a
	// second, so it must not block.
	Presence func() map[string][]engine.Actor
}

// RunOverview shows the fleet's overview in this terminal (full screen) until the operator
// leaves it or ctx ends, and returns what the operator chose on leaving (ChoiceStop: stop every
// engine, leaving traffic as it is). Like Run it never stops or steers an engine by itself.
func RunOverview(ctx context.Context, opts OverviewOptions) (Choice, error) {
	opts.Context = ctx
	o := NewOverview(opts)
	popts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithAltScreen()}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		popts = append(popts, tea.WithOutput(opts.Output))
	}
	_, err := tea.NewProgram(o, popts...).Run()
	o.unsubscribe()
	if err != nil {
		return ChoiceNone, fmt.Errorf("terminal UI: %w", err)
	}
	return o.Choice(), nil
}

// childMsg is a message of the dashboard opened from the overview, tagged with which opening
// it belongs to, so that what a closed dashboard still had in flight is dropped.
type childMsg struct {
	gen int
	msg tea.Msg
}

// wrapChild tags the messages cmd produces (a batch's one by one) as the dashboard's.
func wrapChild(gen int, cmd tea.Cmd) tea.Cmd {
	if cmd == nil {
		return nil
	}
	return func() tea.Msg {
		switch msg := cmd().(type) {
		case nil:
			return nil
		case tea.BatchMsg:
			out := make(tea.BatchMsg, len(msg))
			for i, c := range msg {
				out[i] = wrapChild(gen, c)
			}
			return out
		default:
			return childMsg{gen: gen, msg: msg}
		}
	}
}
