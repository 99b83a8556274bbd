package engine

import (
	"fmt"
	"time"
)

// command applies an operator's command, or refuses it with the reason, recording either.
func (e *Engine) command(cmd Command) error {
	if err := e.allowed(cmd); err != nil {
		actor := cmd.Actor
		e.emit(Event{Type: EventCommandRefused, Actor: &actor, Command: cmd.Kind, Reason: err.Error()})
		if e.fatal != nil {
			return e.fatal
		}
		return err
	}
	actor := &cmd.Actor
	s := &e.state
	//exhaustive:enforce
	switch cmd.Kind {
	case CommandPause:
		e.emit(Event{Type: EventPaused, Actor: actor, Reason: orDefault(cmd.Reason, "paused by "+actor.Name)})
	case CommandResume:
		if s.PauseStep {
			e.passStep(actor, "resumed by "+actor.Name)
		} else {
			e.emit(Event{Type: EventResumed, Actor: actor, Reason: cmd.Reason})
		}
	case CommandAdvance:
		e.passStep(actor, orDefault(cmd.Reason, "advanced by "+actor.Name))
	case CommandRollback:
		e.rollback(actor, orDefault(cmd.Reason, "rolled back by "+actor.Name))
	case CommandPromote:
		e.windowClosed(actor) // outside the release window, journaled as an override
		e.emit(Event{Type: EventPromoteStarted, Actor: actor, Reason: orDefault(cmd.Reason, "promoted by "+actor.Name)})
		e.cancelLook()
		e.endStepHooks("the rollout is promoting", false)
		e.cancelStaleWeight()
	case CommandRetry:
		e.emit(Event{Type: EventRolloutStarted, Actor: actor, Attempt: s.Attempt + 1, Reason: orDefault(cmd.Reason, "retried by "+actor.Name)})
		e.startStep(0, time.Now())
	}
	return e.fatal
}

// allowed says whether cmd may run now, and if not, why, in words for the one who sent it.
func (e *Engine) allowed(cmd Command) error {
	s := &e.state
	if cmd.Actor.Role == RoleViewer {
		return fmt.Errorf("%w (%s is a viewer)", ErrForbidden, cmd.Actor.Name)
	}
	if cmd.Step != s.Step && !cmd.Kind.NeverStale() {
		return fmt.Errorf("%w: it was for step %d, the rollout is at step %d now", ErrStaleCommand, cmd.Step+1, s.Step+1)
	}
	return s.Allowed(cmd.Kind)
}

// NeverStale reports whether a command of kind acts on whatever step the rollout is at: a
// rollback or a pause only stops traffic or progress, which is never out of date, and one
// issued a moment before the rollout moved on must not be refused for it. The other commands
// are refused with ErrStaleCommand when the rollout has left the step they were issued on.
func (k CommandKind) NeverStale() bool { return k == CommandRollback || k == CommandPause }

// Allowed says whether a command of kind makes sense in the rollout's current phase, and if
// not, why, in words for the one who sent it. The engine also refuses viewers and stale
// commands; a UI uses this to show which keys work now.
func (s *State) Allowed(kind CommandKind) error {
	var ok bool
	//exhaustive:enforce
	switch ph := s.Phase; kind {
	case CommandPause:
		ok = ph == PhaseRunning || ph == PhaseHolding
	case CommandResume:
		ok = ph == PhasePaused || ph == PhaseHolding
	case CommandAdvance, CommandPromote:
		ok = ph == PhaseRunning || ph == PhasePaused || ph == PhaseHolding
	case CommandRollback:
		ok = ph == PhaseRunning || ph == PhasePaused || ph == PhaseHolding || ph == PhasePromoting
	case CommandRetry:
		ok = ph == PhaseRolledBack
	default:
		return fmt.Errorf("%w: unknown command %q", ErrNotAllowed, kind)
	}
	if !ok {
		return fmt.Errorf("%w: cannot %s while the rollout is %s", ErrNotAllowed, kind, s.Phase.Words())
	}
	return nil
}

// Words is the phase in running text ("rolling back").
func (p Phase) Words() string {
	switch p {
	case PhaseRollingBack:
		return "rolling back"
	case PhaseRolledBack:
		return "rolled back"
	case PhasePending:
		return "starting"
	}
	return string(p)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
