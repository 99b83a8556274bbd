package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// decide moves the rollout on as far as it can at now: it emits the events that are due and
// starts the effects (weight changes, looks) that are needed, and returns when it next needs to
// be called if nothing else happens first (zero: only on a command or an effect's result). It
// is called after every input, so it acts only on what is due.
func (e *Engine) decide(now time.Time) time.Time {
	for {
		seq := e.state.Seq
		wake := e.decideOnce(now)
		if e.state.Seq == seq || e.fatal != nil {
			return wake
		}
	}
}

func (e *Engine) decideOnce(now time.Time) time.Time {
	s := &e.state
	// Every phase is listed: one the engine did not drive would stall the rollout.
	//exhaustive:enforce
	switch s.Phase {
	case PhasePending:
		e.emit(Event{Type: EventRolloutStarted, Attempt: 1})
		e.startStep(0, now)
	case PhaseRunning, PhasePaused, PhaseHolding:
		return e.driveStep(now)
	case PhaseRollingBack:
		// Segments go and flags are put back as they were alongside the weight.
		wake, waiting := e.ensureStrategies(now, true)
		if s.TargetConfirmed && !waiting {
			e.emit(Event{Type: EventRolledBack, Weight: intPtr(0)})
			e.startHooksAt(spec.HookAfterRollback, 0)
			return time.Time{}
		}
		if !s.TargetConfirmed {
			wake = earliest(wake, e.ensureWeight(now))
		}
		return wake
	case PhasePromoting:
		// Segments go (the canary takes everything); flags keep their last value.
		wake, waiting := e.ensureStrategies(now, true)
		if s.TargetConfirmed && !waiting {
			e.emit(Event{Type: EventPromoted, Weight: intPtr(100)})
			e.startHooksAt(spec.HookAfterPromote, 100)
			return time.Time{}
		}
		if !s.TargetConfirmed {
			wake = earliest(wake, e.ensureWeight(now))
		}
		return wake
	case PhaseRolledBack, PhasePromoted:
		// Over: only a retry command starts it again.
	}
	return time.Time{}
}

func (e *Engine) driveStep(now time.Time) time.Time {
	window, resumed := e.windowHold(now)
	if resumed {
		return time.Time{}
	}
	return earliest(window, e.driveStepTraffic(now))
}

// driveStepTraffic brings the step's weight, segments and flags about, then stabilizes,
// analyses or pauses.
func (e *Engine) driveStepTraffic(now time.Time) time.Time {
	s := &e.state
	step := s.CurrentStep()
	if e.ensureGates() {
		return time.Time{} // the step's traffic changes only once its before-* hooks pass
	}
	if s.Target >= 0 && !s.TargetConfirmed {
		// Traffic changes only while running: a pause or a hold means "leave it as it is".
		if s.Phase == PhaseRunning {
			return e.ensureWeight(now)
		}
		return time.Time{}
	}
	if wake, waiting := e.ensureStrategies(now, s.Phase == PhaseRunning); waiting {
		return wake
	}
	e.startLoad()
	if step.Pause != nil {
		return e.drivePause(now)
	}
	if s.AnalysisStartedAt.IsZero() {
		if at := s.StabilizedAt(); now.Before(at) {
			return at
		}
		if step.Analyze > 0 {
			e.emit(Event{Type: EventAnalysisStarted})
		} else if s.Phase == PhaseRunning {
			e.passStep(nil, doneWords(step)+"; the step has no analysis")
		}
		return time.Time{}
	}
	return e.nextLook(now)
}

// drivePause ends a pause step when it is over and, until then, keeps looking at the weight
// it holds, as during an operator's pause: a failure rolls back (judgeLook), while evidence
// that is merely short never holds or passes a pause.
func (e *Engine) drivePause(now time.Time) time.Time {
	s := &e.state
	step := s.CurrentStep()
	var wake time.Time
	switch {
	case s.Phase == PhaseRunning: // resumed from an operator's pause during a pause step
		e.passStep(nil, "pause ended")
		return time.Time{}
	case !s.PauseStep || s.PauseUntil.IsZero():
	case now.Before(s.PauseUntil):
		wake = s.PauseUntil
	default:
		e.passStep(nil, fmt.Sprintf("pause of %s over", step.Pause.Duration))
		return time.Time{}
	}
	if s.Weight <= 0 && len(s.Segments) == 0 || len(e.spec.Checks) == 0 {
		return wake // no canary traffic yet (a pause before the first weight or segment), or nothing to look at
	}
	if s.AnalysisStartedAt.IsZero() {
		if at := s.StabilizedAt(); now.Before(at) {
			return earliest(wake, at)
		}
		e.emit(Event{Type: EventAnalysisStarted})
		return time.Time{}
	}
	return earliest(wake, e.nextLook(now))
}

// nextLook starts the next look if it is due, or returns when it will be.
func (e *Engine) nextLook(now time.Time) time.Time {
	switch next := e.state.NextLookAt(); {
	case e.lookBusy:
	case now.Before(next):
		return next
	default:
		e.startLook(now)
	}
	return time.Time{}
}

// doneWords says what a step did, once it is in place: "weight set", "segment set", "flag set".
func doneWords(st spec.Step) string {
	switch {
	case st.Segment != nil:
		return "segment set"
	case st.SetFlag != nil:
		return "flag set"
	}
	return "weight set"
}

// earliest is the sooner of two wake-up times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// startStep begins step i: a weight change or a pause.
func (e *Engine) startStep(i int, now time.Time) {
	ev := Event{Type: EventStepStarted, Step: i}
	st := e.spec.Steps[i]
	if st.SetWeight != nil {
		ev.Weight = intPtr(*st.SetWeight)
	}
	if st.Pause != nil && st.Pause.Duration > 0 {
		ev.Until = timePtr(now.Add(time.Duration(st.Pause.Duration)))
	}
	e.emit(ev)
}

// passStep ends the current step and starts the next, or promotes after the last; outside
// the release window it holds instead, unless an operator advances (windowClosed).
func (e *Engine) passStep(by *Actor, reason string) {
	if e.windowClosed(by) {
		return
	}
	e.emit(Event{Type: EventStepPassed, Actor: by, Reason: reason})
	e.cancelLook()
	e.endStepHooks("its step is over", false)
	e.startHooksAt(spec.HookAfterStep, e.state.Weight)
	if next := e.state.Step + 1; next < len(e.spec.Steps) {
		e.startStep(next, time.Now())
		return
	}
	e.emit(Event{Type: EventPromoteStarted, Reason: "every step passed"})
}

// rollback starts sending all traffic back to stable.
func (e *Engine) rollback(by *Actor, reason string) {
	e.emit(Event{Type: EventRollbackStarted, Actor: by, Reason: reason})
	e.cancelLook()
	e.endStepHooks("the rollout is rolling back", true)
	e.cancelStaleWeight()
}

// judgeLook acts on the verdicts of one look: roll back on a critical failure or past the
// failure limit; at the end of the analysis time pass, hold or fail.
func (e *Engine) judgeLook(now time.Time) {
	s := &e.state
	ended := !now.Before(s.AnalysisEndsAt()) && s.Phase != PhasePaused
	e.recordDryRuns(ended)
	var critical, overLimit, failing, inconclusive, dryNotPassing []string
	allPass := true
	for _, c := range s.Checks {
		if c.DryRun { // judged and shown, never acted on (recordDryRuns)
			if c.Last == nil || c.Last.Verdict != metrics.Pass {
				dryNotPassing = append(dryNotPassing, c.Name)
			}
			continue
		}
		if c.Last == nil {
			allPass = false
			continue
		}
		// Every verdict is listed, so a new one cannot pass by default.
		//exhaustive:enforce
		switch c.Last.Verdict {
		case metrics.Pass:
		case metrics.Fail:
			allPass = false
			desc := fmt.Sprintf("%s failed: %s", c.Name, c.Last.Reason)
			switch {
			case c.Critical:
				critical = append(critical, desc+" (critical)")
			case c.Failures > e.spec.Analysis.FailureLimit:
				overLimit = append(overLimit, fmt.Sprintf("%s (%d failures, limit %d)", desc, c.Failures, e.spec.Analysis.FailureLimit))
			default:
				failing = append(failing, desc)
			}
		case metrics.Inconclusive:
			allPass = false
			inconclusive = append(inconclusive, fmt.Sprintf("%s inconclusive: %s", c.Name, c.Last.Reason))
		}
	}
	if len(critical)+len(overLimit) > 0 {
		e.rollback(nil, strings.Join(append(critical, overLimit...), "; "))
		return
	}
	if e.outage(now) {
		return
	}
	if now.Before(s.AnalysisEndsAt()) || s.Phase == PhasePaused {
		return
	}
	switch {
	case allPass && len(dryNotPassing) > 0:
		e.passStep(nil, "every check passed (dry runs not counted: "+strings.Join(dryNotPassing, ", ")+")")
	case allPass:
		e.passStep(nil, "every check passed")
	case len(failing) > 0:
		// Failing within the limit: keep looking until it passes or the limit is crossed.
	case e.spec.Analysis.Inconclusive == spec.InconclusiveFail:
		e.rollback(nil, strings.Join(inconclusive, "; "))
	case s.Phase != PhaseHolding:
		e.emit(Event{Type: EventHeld, Hold: HoldInconclusive, Reason: strings.Join(inconclusive, "; ")})
	}
}

// recordDryRuns records what each dry-run check would have made the rollout do at this look,
// judged as judgeLook judges the others (ended: the step's analysis time is over), once each
// time that changes: a check failing look after look is recorded once, not at every look.
func (e *Engine) recordDryRuns(ended bool) {
	for _, c := range e.state.Checks {
		if !c.DryRun {
			continue
		}
		if would, why := e.wouldAct(c, ended); would != "" && would != c.Would {
			e.emit(Event{Type: EventDryRun, Check: c.Name, Would: would, Reason: why})
		}
	}
}

// wouldAct is what check c would have made the rollout do, were it not a dry run, and why.
func (e *Engine) wouldAct(c CheckState, ended bool) (DryRunAction, string) {
	r := c.Last
	switch {
	case r == nil:
		return "", ""
	case r.SourceError != "":
		return WouldHold, "metrics source failing: " + r.SourceError
	}
	limit := e.spec.Analysis.FailureLimit
	// Every verdict is listed, so a new one cannot pass by default.
	//exhaustive:enforce
	switch r.Verdict {
	case metrics.Pass:
	case metrics.Fail:
		desc := fmt.Sprintf("%s failed: %s", c.Name, r.Reason)
		switch {
		case c.Critical:
			return WouldRollBack, desc + " (critical)"
		case c.Failures > limit:
			return WouldRollBack, fmt.Sprintf("%s (%d failures, limit %d)", desc, c.Failures, limit)
		case ended:
			return WouldBlock, desc
		}
	case metrics.Inconclusive:
		desc := fmt.Sprintf("%s inconclusive: %s", c.Name, r.Reason)
		switch {
		case !ended:
		case e.spec.Analysis.Inconclusive == spec.InconclusiveFail:
			return WouldRollBack, desc
		default:
			return WouldHold, desc
		}
	}
	return "", ""
}

// outage handles a look on which the metrics source failed: the rollout holds at once (a
// failing source is never a pass), continues by itself when data returns, and after
// analysis.maxOutage applies the inconclusive action. It reports whether the look was one.
func (e *Engine) outage(now time.Time) bool {
	s := &e.state
	if s.OutageSince.IsZero() {
		if s.Phase == PhaseHolding && s.Hold == HoldOutage {
			e.emit(Event{Type: EventResumed, Reason: "metrics source recovered"})
		}
		return false
	}
	var failing []string
	for _, c := range s.Checks {
		if c.Last != nil && c.Last.SourceError != "" && !c.DryRun {
			failing = append(failing, fmt.Sprintf("%s: %s", c.Name, c.Last.SourceError))
		}
	}
	down := now.Sub(s.OutageSince)
	limit := time.Duration(e.spec.Analysis.MaxOutage)
	switch {
	case down >= limit && e.spec.Analysis.Inconclusive == spec.InconclusiveFail:
		e.rollback(nil, fmt.Sprintf("metrics source down for %s (analysis.maxOutage %s): %s", spec.Duration(down), e.spec.Analysis.MaxOutage, strings.Join(failing, "; ")))
	case s.Phase == PhaseRunning:
		e.emit(Event{Type: EventHeld, Hold: HoldOutage, Reason: "metrics source failing: " + strings.Join(failing, "; ")})
	}
	return true
}
