package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"sync"

	"github.com/charmbracelet/x/term"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/themes"
	"github.com/perchhq/perch/tui"
)

// checkTUI loads the --theme and, unless --headless, makes sure there is a terminal to draw
// on, before anything connects or moves traffic.
func (a *app) checkTUI(f runFlags) (themes.Theme, error) {
	theme, err := themes.Load(f.theme)
	if err != nil {
		return themes.Theme{}, badInput(fmt.Errorf("--theme: %w", err))
	}
	if f.headless {
		return theme, nil
	}
	if out, ok := a.stdout.(*os.File); !ok || !term.IsTerminal(out.Fd()) {
		return themes.Theme{}, badInput(errors.New("the terminal UI needs a terminal on stdout; use --headless for pipes, files and CI"))
	}
	return theme, nil
}

// localTUI is the terminal UI in this terminal (perch run, perch demo).
type localTUI struct {
	theme  themes.Theme
	format string // what a detached run prints: text or json
}

func (localTUI) prepare(*session) error { return nil }

func (t localTUI) run(ctx context.Context, s *session) (engine.Outcome, error) {
	return s.app.runTUI(ctx, s.eng, t.theme, t.format, s.held, s.rollout.note)
}

// runTUI runs the engine under the terminal UI. Leaving the view never changes traffic: the
// operator either detaches (the engine carries on, printing events as --headless does) or
// stops the engine (traffic stays as it is, to resume later).
func (a *app) runTUI(ctx context.Context, eng *engine.Engine, theme themes.Theme, format string, held *heldWriter, note string) (engine.Outcome, error) {
	engineCtx, stopEngine := context.WithCancel(ctx)
	defer stopEngine()
	type result struct {
		out engine.Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := eng.Run(engineCtx)
		done <- result{out, err}
	}()
	name := a.localUser()
	held.hold()
	choice, err := tui.Run(ctx, tui.Options{Snapshots: eng, Commander: eng, Mode: tui.ModeLocal, Theme: theme,
		Actor: engine.Actor{Name: name, Role: engine.RoleOperator, Source: "tui"}, Note: note})
	held.release()
	switch {
	case ctx.Err() != nil: // a signal: the engine stops with it, as headless
	case err != nil:
		// The rollout must not go unsupervised because the screen failed: carry on headless.
		fmt.Fprintf(a.stderr, "perch: %v; the rollout carries on without it\n", err)
		choice = tui.ChoiceDetach
	}
	printed := make(chan struct{})
	switch choice {
	case tui.ChoiceStop:
		stopEngine()
		close(printed)
	case tui.ChoiceDetach:
		fmt.Fprintln(a.stderr, "perch: detached from the view; the rollout carries on here (Ctrl+C stops the engine and leaves traffic as it is)")
		go printEvents(eng.Events(), a.stdout, eng.Spec(), format, printed)
	default:
		close(printed)
	}
	r := <-done
	<-printed
	return r.out, r.err
}

// heldWriter passes writes through, except while held, when it keeps them to write on
// release. The alerts receiver and the notifier report on stderr from their goroutines; while
// the TUI owns the screen their lines would tear it, so they wait until it is gone.
type heldWriter struct {
	mu   sync.Mutex
	w    io.Writer
	held bool
	buf  bytes.Buffer
}

func (h *heldWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		return h.buf.Write(p)
	}
	return h.w.Write(p)
}

func (h *heldWriter) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = true
}

// release writes what was held and lets later writes through.
func (h *heldWriter) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = false
	h.w.Write(h.buf.Bytes()) // stderr: nowhere to report a failure to
	h.buf.Reset()
}

// holdingStderr is the app with a stderr that can be held while the TUI runs.
func (a *app) holdingStderr() (*app, *heldWriter) {
	held := &heldWriter{w: a.stderr}
	b := *a
	b.stderr = held
	return &b, held
}

// localUser names the person at this terminal: $USER, else the account perch runs as.
func (a *app) localUser() string {
	if name := a.getenv("USER"); name != "" {
		return name
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "operator"
}
