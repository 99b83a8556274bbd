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
	_, err := tea.NewProgram(m, tea.WithContext(ctx), tea.WithAltScreen()).Run()
	m.unsubscribe()
	if err != nil {
		return ChoiceNone, fmt.Errorf("terminal UI: %w", err)
	}
	return m.Choice(), nil
}
