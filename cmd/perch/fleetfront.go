package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/themes"
	"github.com/perchhq/perch/tui"
	"github.com/perchhq/perch/tui/remote"
)

// localOverview is the fleet's overview in this terminal (perch run with several files). As
// for one rollout, leaving it never changes traffic: the operator detaches (every rollout
// carries on, printing its events as headless does) or stops every engine (traffic stays as
// it is, to resume each later). A terminal that goes away detaches.
type localOverview struct {
	theme themes.Theme
}

func (t localOverview) start(ctx context.Context, fl *fleet.Fleet, out fleetOutput) (func(), error) {
	a := out.app
	viewCtx, endView := context.WithCancel(ctx)
	var lost atomic.Bool
	lose := func() {
		lost.Store(true)
		endView()
	}
	previous := out.hangups.set(lose)
	in, w := watchTerminal(a.stdin, a.stdout, lose)
	actor := engine.Actor{Name: a.localUser(), Role: engine.RoleOperator, Source: "tui"}
	// The view owns the screen: events wait in the journals, reports until it is gone.
	out.events.mute(true)
	out.reports.hold()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer endView()
		choice, err := tui.RunOverview(viewCtx, tui.OverviewOptions{Fleet: fl, Actor: actor, Mode: tui.ModeLocal,
			Theme: t.theme, Input: in, Output: w})
		var why string
		switch {
		case lost.Load():
			why = "the terminal went away"
		case ctx.Err() != nil: // a signal: every engine stops with it, as headless
		case err != nil:
			why = err.Error()
		}
		if lost.Load() {
			out.hangups.set(func() {}) // the terminal is gone; later hangups are its echoes
		} else {
			out.hangups.set(previous)
		}
		out.events.mute(false)
		out.reports.release()
		switch {
		case why != "":
			text := why + "; the rollouts carry on headless (perch status, perch rollback NAME… reach them through the control socket)"
			noteEvery(ctx, fl, actor, text, out.reports)
			fmt.Fprintf(out.reports, "perch: %s\n", text)
		case ctx.Err() != nil:
		case choice == tui.ChoiceStop:
			out.stopAll()
		case choice == tui.ChoiceDetach:
			fmt.Fprintln(out.reports, "perch: detached from the overview; the rollouts carry on here (Ctrl+C stops every engine and leaves traffic as it is)")
		}
	}()
	return func() { <-done }, nil
}

// noter is an engine that journals a note: the engines of a fleet's rollouts.
type noter interface {
	Note(ctx context.Context, actor engine.Actor, text string) error
}

// noteEvery journals text in every rollout of fl that still runs, as the view of a rollout
// alone does when it ends on its own, so each journal says why nobody watched from then on.
func noteEvery(ctx context.Context, fl *fleet.Fleet, actor engine.Actor, text string, reports io.Writer) {
	for _, st := range fl.Statuses() {
		r, ok := fl.Rollout(st.Name)
		n, canNote := r.(noter)
		if !ok || !canNote {
			continue
		}
		if err := n.Note(ctx, actor, text); err != nil && !errors.Is(err, engine.ErrNotRunning) {
			fmt.Fprintf(reports, "perch: %s: could not journal that the view ended: %v\n", st.Name, err)
		}
	}
}

// sshFleet serves the fleet's overview over SSH to every session while the rollouts run
// headless, printing their events; once the fleet has ended by itself, sessions stay open
// for holdOpen so everyone sees the end.
type sshFleet struct {
	front *sshFront
}

func (f sshFleet) start(ctx context.Context, fl *fleet.Fleet, out fleetOutput) (func(), error) {
	// Not the fleet's context: sessions should see the rollouts' last events, so the server
	// stops only once every rollout has.
	sshCtx, stopSSH := context.WithCancel(context.Background())
	theme := f.front.theme
	done, err := out.app.startSSH(sshCtx, remote.Config{Fleet: fl, NewModel: func(s remote.Session) tea.Model {
		return tui.NewOverview(tui.OverviewOptions{Fleet: s.Fleet, Actor: s.Actor, Mode: tui.ModeRemote,
			Theme: theme, Renderer: s.Renderer, Presence: s.Presence.ByRollout})
	}}, f.front.keys, f.front.flags)
	if err != nil {
		stopSSH()
		return nil, err
	}
	return func() {
		if ctx.Err() == nil && f.front.holdOpen > 0 {
			fmt.Fprintf(out.reports, "perch: every rollout has ended; sessions stay open for %s\n", f.front.holdOpen)
			select {
			case <-time.After(f.front.holdOpen):
			case <-ctx.Done():
			}
		}
		stopSSH()
		<-done
	}, nil
}
