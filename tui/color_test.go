package tui

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/perchhq/perch/engine"
)

// env is a terminal's environment for termenv.
type env map[string]string

func (e env) Getenv(k string) string { return e[k] }
func (e env) Environ() []string {
	var out []string
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

// TestColourFollowsTheTerminal: the view's colours come from the renderer's profile: none
// with NO_COLOR, 256-colour codes on a 256-colour terminal, true colour where it is offered,
// and every theme changes what is drawn (mono draws attributes only).
func TestColourFollowsTheTerminal(t *testing.T) {
	st, now := stateRunning(t)
	tests := []struct {
		name     string
		env      env
		theme    string
		want     []string // substrings of the frame
		wantNone []string
	}{
		{"NO_COLOR", env{"TERM": "xterm-256color", "COLORTERM": "truecolor", "NO_COLOR": "1"}, "dark", nil, []string{"\x1b["}},
		{"256 colours", env{"TERM": "xterm-256color"}, "dark", []string{"\x1b[38;5;"}, []string{"\x1b[38;2;"}},
		{"true colour", env{"TERM": "xterm-256color", "COLORTERM": "truecolor"}, "dark", []string{"\x1b[38;2;"}, nil},
		{"mono has no colours", env{"TERM": "xterm-256color", "COLORTERM": "truecolor"}, "mono", []string{"\x1b[1m", "\x1b[1;7m"}, []string{"\x1b[38;"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := lipgloss.NewRenderer(io.Discard, termenv.WithEnvironment(tt.env), termenv.WithTTY(true))
			m := New(Options{Snapshots: newFakeSnapshots(st), Renderer: r, Actor: engine.Actor{Name: "alice", Role: engine.RoleOperator},
				Commander: &fakeCommander{}, Clock: func() time.Time { return now }, Location: time.UTC, Theme: mustTheme(t, tt.theme)})
			m.Update(windowSize(120, 40))
			m.Update(snapshotMsg{st: st, ok: true})
			frame := m.View()
			for _, w := range tt.want {
				if !strings.Contains(frame, w) {
					t.Errorf("frame has no %q", w)
				}
			}
			for _, w := range tt.wantNone {
				if strings.Contains(frame, w) {
					t.Errorf("frame has %q", w)
				}
			}
		})
	}
}
