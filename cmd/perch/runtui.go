package main

import (
	"context"
	"errors"
	"fmt"
	"os"

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

// runTUI runs the engine under the terminal UI. Leaving the view never changes traffic: the
// operator either detaches (the engine carries on, printing events as --headless does) or
// stops the engine (traffic stays as it is, to resume later).
func (a *app) runTUI(ctx context.Context, eng *engine.Engine, theme themes.Theme, format string) (engine.Outcome, error) {
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
	user := a.getenv("USER")
	if user == "" {
		user = "operator"
	}
	choice, err := tui.Run(ctx, tui.Options{Snapshots: eng, Controller: eng, Mode: tui.ModeLocal, Theme: theme,
		Actor: engine.Actor{Name: user, Role: engine.RoleOperator, Source: "tui"}})
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
