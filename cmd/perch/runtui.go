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
	"sync/atomic"

	"github.com/charmbracelet/x/term"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica"
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
	if !a.stdoutIsTerminal() {
		return themes.Theme{}, badInput(errors.New("the terminal UI needs a terminal on stdout; use --headless for pipes, files and CI"))
	}
	return theme, nil
}

// stdoutIsTerminal says whether stdout is a terminal a view can draw on.
func (a *app) stdoutIsTerminal() bool {
	out, ok := a.stdout.(*os.File)
	return ok && term.IsTerminal(out.Fd())
}

// localTUI is the terminal UI in this terminal (perch run, perch demo). Leaving the view never
// changes traffic: the operator either detaches (the engine carries on, printing events as
// --headless does) or stops the engine (traffic stays as it is, to resume later). A terminal
// that goes away detaches.
type localTUI struct {
	theme  themes.Theme
	format string // what a detached run prints: text or json
	// noResume says a stopped run cannot be continued (the demo).
	noResume bool
}

func (localTUI) prepare(*session) error { return nil }

func (t localTUI) run(ctx context.Context, s *session) (engine.Outcome, error) {
	engineCtx, stopEngine := context.WithCancel(ctx)
	defer stopEngine()
	type result struct {
		out engine.Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := s.eng.Run(engineCtx)
		done <- result{out, err}
	}()
	choice, gone := t.show(ctx, s)
	printed := make(chan struct{})
	switch choice {
	case tui.ChoiceStop:
		stopEngine()
		close(printed)
	case tui.ChoiceDetach:
		if !gone {
			fmt.Fprintln(s.app.stderr, "perch: detached from the view; the rollout carries on here (Ctrl+C stops the engine and leaves traffic as it is)")
		}
		// Printing to a terminal that went away fails at once, and only the printing stops.
		go printEvents(s.eng.Events(), s.app.stdout, s.eng.Spec(), t.format, printed)
	default:
		close(printed)
	}
	r := <-done
	<-printed
	return r.out, r.err
}

// show runs the view until the operator leaves it, ctx ends or the terminal goes away (a
// hangup, or bubbletea's input ends or its output fails), and says what to do with the
// engine. The rollout must not go unsupervised because the screen went: then the engine
// carries on headless, and the journal says so.
func (t localTUI) show(ctx context.Context, s *session) (choice tui.Choice, gone bool) {
	viewCtx, endView := context.WithCancel(ctx)
	defer endView()
	var lost atomic.Bool
	lose := func() {
		lost.Store(true)
		endView()
	}
	previous := s.hangups.set(lose)
	in, out := watchTerminal(s.app.stdin, s.app.stdout, lose)
	actor := engine.Actor{Name: s.app.localUser(), Role: engine.RoleOperator, Source: "tui"}
	s.held.hold()
	choice, err := tui.Run(viewCtx, tui.Options{Snapshots: s.eng, Commander: s.eng, Mode: tui.ModeLocal, Theme: t.theme,
		Actor: actor, Note: s.rollout.note, Input: in, Output: out, NoResume: t.noResume})
	s.held.release()
	var why string
	switch {
	case lost.Load():
		why = "the terminal went away"
	case ctx.Err() != nil: // a signal: the engine stops with it, as headless
	case err != nil:
		why = err.Error()
	}
	s.hangups.set(previous)
	if why == "" {
		return choice, false
	}
	if lost.Load() {
		s.hangups.set(func() {}) // the terminal is gone; later hangups are its echoes
	}
	text := why + "; the rollout carries on headless (perch status, perch rollback… reach it through the control socket)"
	switch err := s.eng.Note(ctx, actor, text); {
	case errors.Is(err, engine.ErrNotRunning):
		return choice, true // the engine had ended already: nothing carries on
	case err != nil:
		fmt.Fprintf(s.app.stderr, "perch: could not journal that the view ended: %v\n", err)
	}
	fmt.Fprintf(s.app.stderr, "perch: %s\n", text)
	return tui.ChoiceDetach, true
}

// standbyView shows a standby replica's rollout in this terminal, as the leader journals it,
// until stop (this replica leads, or stops standing by). Its commands go to the leader through
// the follower. Leaving it, or losing the terminal, leaves the replica standing by.
func (a *app) standbyView(ctx context.Context, fl *replica.Follower, theme themes.Theme, held *heldWriter) (stop func()) {
	viewCtx, endView := context.WithCancel(ctx)
	in, out := watchTerminal(a.stdin, a.stdout, endView)
	actor := engine.Actor{Name: a.localUser(), Role: engine.RoleOperator, Source: "tui"}
	held.hold()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := tui.Run(viewCtx, tui.Options{Snapshots: fl, Commander: fl, Mode: tui.ModeRemote, Theme: theme,
			Actor: actor, Note: "standby replica: commands go to the leader", Input: in, Output: out})
		held.release()
		switch {
		case viewCtx.Err() != nil: // this replica leads, or stops
		case err != nil:
			fmt.Fprintf(a.stderr, "perch: %v; this replica still stands by (Ctrl+C stops it)\n", err)
		default:
			fmt.Fprintln(a.stderr, "perch: left the standby view; this replica still stands by and takes over if the leader is lost (Ctrl+C stops it)")
		}
	}()
	return func() {
		endView()
		<-done
	}
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
