package tui

import (
	"context"
	"fmt"

	tea "github.com/charmbracelet/bubbletea"
)

// Run shows the view in this terminal (full screen) until the operator leaves it or ctx
// ends, and returns what the operator chose on leaving. It never stops or steers the engine
// by itself: the caller acts on the choice.
func Run(ctx context.Context, opts Options) (Choice, error) {
	opts.Context = ctx
	m := New(opts)
	popts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithAltScreen()}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		popts = append(popts, tea.WithOutput(opts.Output))
	}
	_, err := tea.NewProgram(m, popts...).Run()
	m.unsubscribe()
	if err != nil {
		return ChoiceNone, fmt.Errorf("terminal UI: %w", err)
	}
	return m.Choice(), nil
}
