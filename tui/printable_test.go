package tui

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable/printabletest"
)

// perchWrites are the types of State whose text perch derives or checks itself; every other
// string may come from outside (an alert, a provider, an SSH key, a hand-edited journal).
var perchWrites = []reflect.Type{
	reflect.TypeFor[*spec.Rollout](), reflect.TypeFor[engine.Phase](),
	reflect.TypeFor[engine.EventType](), reflect.TypeFor[engine.StepStatus](),
}

// hostile is st with every text from outside set to hostile text naming its field, actors
// included where st had none.
func hostile(st engine.State) engine.State {
	printabletest.Fill(&st, perchWrites...)
	return st
}

// TestPrintableState: every text field of a state, its log, checks and actors is printable
// in the view, as the log moves on and when a replay goes back, and the state it was given
// (shared with other viewers) is untouched.
func TestPrintableState(t *testing.T) {
	st, now := stateRolledBack(t)
	bad := hostile(st)
	h := newHarness(t, bad, now, nil)
	n := len(bad.Log)
	for _, step := range []struct {
		what string
		log  []engine.Event
	}{
		{"the first state", bad.Log},
		{"the same state again", bad.Log},
		{"a state whose log moved on", bad.Log[5:]},
		{"a replay gone back", bad.Log[:n-20]},
		{"a replay gone forward again", bad.Log[3:]},
	} {
		next := bad
		next.Log = step.log
		h.m.Update(snapshotMsg{st: next, ok: true})
		if path, r := printabletest.Unsafe(h.m.st); path != "" {
			t.Errorf("after %s: %s still holds %U", step.what, path, r)
		}
	}
	if path, _ := printabletest.Unsafe(bad); path == "" {
		t.Error("the view wrote to the state it was given")
	}
	clean, now := stateRunning(t)
	h = newHarness(t, clean, now, nil)
	if &h.m.st.Log[0] != &clean.Log[0] || &h.m.st.Checks[0] != &clean.Checks[0] {
		t.Error("a printable state was copied")
	}
}

// sgr matches the colour and attribute sequences the view itself draws.
var sgr = regexp.MustCompile("\x1b\\[[0-9;:]*m")

// TestViewShowsNoControlCharacters renders states whose every text from outside holds
// control characters, escape sequences (title, clipboard, clear screen; 7-bit and C1), line
// breaks and bidi controls, in every phase, size, pane focus, the help, a confirm dialog and
// a refusal in the status line: the frame holds none of them and exactly its height in lines.
func TestViewShowsNoControlCharacters(t *testing.T) {
	builds := map[string]func(testing.TB) (engine.State, time.Time){
		"running": stateRunning, "paused": statePaused, "pause step": statePauseStep, "holding": stateHolding,
		"rolling back": stateRollingBack, "rolled back": stateRolledBack, "promoted": statePromoted,
	}
	people := []engine.Actor{{Name: printabletest.Hostile("ssh-user"), Role: engine.RoleOperator}, {Name: printabletest.Hostile("viewer"), Role: engine.RoleViewer}}
	colour := lipgloss.NewRenderer(io.Discard)
	colour.SetColorProfile(termenv.TrueColor)
	for name, build := range builds {
		for _, r := range []struct {
			name   string
			render *lipgloss.Renderer
		}{{"ascii", asciiRenderer()}, {"colour", colour}} {
			t.Run(name+"/"+r.name, func(t *testing.T) {
				st, now := build(t)
				h := newHarness(t, hostile(st), now, func(o *Options) {
					o.Actor = engine.Actor{Name: printabletest.Hostile("me"), Role: engine.RoleOperator}
					o.Presence = func() []engine.Actor { return people }
					o.Note = printabletest.Hostile("note")
					o.Renderer = r.render
				})
				h.m.readPresence()
				check := func(what string) {
					t.Helper()
					for _, size := range [][2]int{{120, 40}, {80, 24}, {60, 20}} {
						h.m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
						frame := sgr.ReplaceAllString(h.m.View(), "")
						if r, ok := printabletest.Find(frame, true); ok {
							i := strings.IndexRune(frame, r)
							t.Fatalf("%s at %dx%d: %U reaches the terminal: …%q…", what, size[0], size[1], r, frame[max(i-60, 0):min(i+20, len(frame))])
						}
						if n := strings.Count(frame, "\n") + 1; n != size[1] {
							t.Fatalf("%s at %dx%d: %d lines, want %d:\n%s", what, size[0], size[1], n, size[1], frame)
						}
					}
				}
				for range numPanes {
					check(fmt.Sprintf("focus %s", h.m.focus))
					h.press("tab")
				}
				if !strings.Contains(ansiless(h.m.View()), `\x00\x01\x02`) {
					t.Errorf("the hostile text is not shown escaped anywhere:\n%s", h.m.View())
				}
				h.press("?")
				check("help")
				h.press("?")
				h.ctl.err = fmt.Errorf("%w (%s is a viewer)", engine.ErrForbidden, printabletest.Hostile("refusal"))
				for _, k := range []string{"p", "a"} {
					h.press(k)
					check("status after " + k)
				}
				for _, k := range []string{"r", "P", "R"} {
					h.press(k)
					check("after " + k)
					if h.m.dialog != nil {
						h.press("y")
						check("answer to " + k)
					}
				}
				h.m.Update(commandDoneMsg{kind: engine.CommandRollback, err: errors.New(printabletest.Hostile("engine error"))})
				check("an engine error")
			})
		}
	}
}

func ansiless(s string) string { return sgr.ReplaceAllString(s, "") }
