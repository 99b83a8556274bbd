package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
)

// headerHeight is the lines the header takes.
const headerHeight = 3

// header is three lines: the rollout, its phase and step; the canary's weight and the clocks;
// and what is happening now, in a sentence.
func (m *Model) header(width int) []string {
	s := &m.styles
	st := &m.st
	if !m.have || st.Spec == nil {
		return []string{cut(s.bold.Render("perch")+"  "+s.muted.Render("waiting for the first state from the engine…"), width), "", ""}
	}
	right := s.text.Render(fmt.Sprintf("step %d/%d", st.Step+1, len(st.Steps))) + s.muted.Render(" · "+st.CurrentStep().String())
	switch {
	case st.Phase == engine.PhasePromoted:
		right = s.pass.Render("promoted at 100%")
	case st.StepStartedAt.IsZero():
		right = s.muted.Render(fmt.Sprintf("not started · %d steps", len(st.Steps)))
	}
	if m.opts.Mode == ModeReplay {
		right = m.replayStatus() + s.muted.Render("  ") + right
	}
	// The canary's identity whole where it fits, else its version.
	name := s.bold.Render(st.Spec.Name)
	if c := st.Spec.Canary; c != nil {
		whole, short := printable.Line(c.String()), printable.Line(c.Short())
		if cells(st.Spec.Name)+cells(whole)+cells(right)+24 <= width {
			name += " " + s.accent.Render(whole)
		} else if short != "" {
			name += " " + s.accent.Render(short)
		}
	}
	left := name + "  " + m.phaseBadge()
	if st.Attempt > 1 {
		left += s.muted.Render(fmt.Sprintf("  attempt %d", st.Attempt))
	}
	if len(m.people) > 0 {
		left += s.muted.Render("  " + presenceText(m.people))
	}
	weight := s.text.Render("canary ") + gauge(s, float64(max(st.Weight, 0))/100, min(20, width/6)) + s.bold.Render(" "+weightText(st.Weight))
	if st.Target >= 0 && st.Target != st.Weight {
		weight += s.accent.Render(fmt.Sprintf(" → %d%%", st.Target))
	}
	// The weight stays whole, with the segments and flags beside it when the first clock
	// still fits; the clocks drop from the right when there is no room.
	clocks := m.clocks()
	if text := m.strategyText(); text != "" && len(clocks) > 0 && cells(weight)+cells(text)+4+cells(clocks[0]) <= width {
		weight += "  " + s.accent.Render(text)
	}
	for len(clocks) > 0 && cells(weight)+2+cells(strings.Join(clocks, " · ")) > width {
		clocks = clocks[:len(clocks)-1]
	}
	return []string{
		spread(left, right, width),
		spread(weight, s.muted.Render(strings.Join(clocks, " · ")), width),
		m.situationLine(width),
	}
}

// situationLine is the situation, with its afterthought when there is room for it.
func (m *Model) situationLine(width int) string {
	main, extra := m.situation()
	if extra != "" && cells(main)+cells(extra) <= width {
		return main + extra
	}
	return cut(main, width)
}

func (m *Model) phaseBadge() string {
	s := &m.styles
	st := &m.st
	word, style := strings.ToUpper(st.Phase.Words()), s.badgeRunning
	switch st.Phase {
	case engine.PhasePaused:
		style = s.badgePaused
	case engine.PhaseHolding:
		style = s.badgeHolding
	case engine.PhaseRollingBack, engine.PhaseRolledBack:
		style = s.badgeFail
	case engine.PhasePromoting, engine.PhasePromoted:
		style = s.badgePass
	}
	badge := style.Render(" " + word + " ")
	if (st.Stopped || m.ended) && !st.Phase.Done() && m.opts.Mode != ModeReplay {
		badge += " " + s.badgePaused.Render(" ENGINE STOPPED ")
	}
	return badge
}

func (m *Model) replayStatus() string {
	s := &m.styles
	p := m.playback
	state := fmt.Sprintf("▶ %s×", metrics.FormatValue(p.Speed))
	switch {
	case p.Done:
		state = "■ end"
	case p.Paused:
		state = "‖ paused"
	}
	return s.accent.Render("REPLAY "+state) + s.muted.Render(fmt.Sprintf(" event %d/%d", p.Pos, p.Len))
}

// clocks are the time in the step and the time to the next decision, most important first.
func (m *Model) clocks() []string {
	st := &m.st
	now := m.now
	switch {
	case st.StartedAt.IsZero() || st.StepStartedAt.IsZero(): // a replay at its start
		return nil
	case st.Phase.Done():
		return []string{"took " + formatDuration(st.LastEventAt.Sub(st.StartedAt))}
	}
	parts := []string{"in step " + formatDuration(now.Sub(st.StepStartedAt))}
	step := st.CurrentStep()
	switch {
	case st.Phase == engine.PhaseRollingBack || st.Phase == engine.PhasePromoting:
	case st.Phase == engine.PhaseHolding && st.Hold == engine.HoldOutage:
		// Nothing is decided while the source is down: say how long it has been.
		if !st.OutageSince.IsZero() {
			parts = append(parts, fmt.Sprintf("source down %s of %s allowed", formatDuration(now.Sub(st.OutageSince)),
				formatSpan(time.Duration(st.Spec.Analysis.MaxOutage))))
		}
		parts = append(parts, "next look "+formatDuration(until(now, st.NextLookAt())))
	case st.WeightAttempts > 0 && !st.RetryAt.IsZero():
		parts = append(parts, "retry in "+formatDuration(until(now, st.RetryAt)))
	case st.Phase == engine.PhaseHolding && st.Hold == engine.HoldRouter:
		// Held until an operator decides: no countdown.
	case step.Pause != nil:
		if st.PauseStep && !st.PauseUntil.IsZero() {
			parts = append(parts, "resumes in "+formatDuration(until(now, st.PauseUntil)))
		}
		if !st.AnalysisStartedAt.IsZero() { // a pause step watches the weight it holds
			parts = append(parts, "next look "+formatDuration(until(now, st.NextLookAt())))
		}
	case !st.AnalysisStartedAt.IsZero():
		switch end := st.AnalysisEndsAt(); {
		case now.Before(end) && st.Phase == engine.PhasePaused: // no decision until resumed
			parts = append(parts, "analysis ends in "+formatDuration(until(now, end)))
		case now.Before(end):
			parts = append(parts, "decision in "+formatDuration(until(now, end)))
		default:
			parts = append(parts, "analysis time over")
		}
		parts = append(parts, "next look "+formatDuration(until(now, st.NextLookAt())))
	case st.TargetConfirmed && step.Analyze > 0:
		parts = append(parts, "analysis starts in "+formatDuration(until(now, st.StabilizedAt())))
	}
	return parts
}

// situation is what is happening now and why, in one sentence coloured by what it means, and
// an afterthought shown when there is room.
func (m *Model) situation() (string, string) {
	s := &m.styles
	st := &m.st
	by := func(a *engine.Actor) string {
		if a == nil {
			return ""
		}
		return " by " + a.Name
	}
	// why is a reason unless it only repeats who did it.
	why := func(reason string, a *engine.Actor) string {
		if reason == "" || a != nil && strings.HasSuffix(reason, by(a)) {
			return by(a)
		}
		return by(a) + ": " + reason
	}
	switch {
	case st.Phase == engine.PhaseRolledBack:
		return s.fail.Render("✘ rolled back" + why(st.EndReason, st.EndedBy)), ""
	case st.Phase == engine.PhaseRollingBack:
		return s.fail.Render("✘ rolling back" + why(st.EndReason, st.EndedBy)), s.fail.Render(" — sending 0% to canary")
	case st.Phase == engine.PhasePromoted:
		return s.pass.Render("✔ promoted" + why(st.EndReason, st.EndedBy)), ""
	case st.Phase == engine.PhasePromoting:
		return s.pass.Render("✔ promoting" + why(st.EndReason, st.EndedBy)), s.pass.Render(" — sending 100% to canary")
	case st.RouterError != "" && st.WeightAttempts > 0:
		return s.warning.Render(fmt.Sprintf("⚠ traffic provider failed %d× setting %d%%: %s", st.WeightAttempts, st.Target, st.RouterError)), ""
	case st.Phase == engine.PhaseHolding && st.Hold == engine.HoldWindow:
		return s.inconclusive.Render(fmt.Sprintf("? holding (%s): %s", st.Hold, st.HoldReason)),
			s.muted.Render(fmt.Sprintf(" (checks still run; %s advances anyway)", m.keys.Advance.Help().Key))
	case st.Phase == engine.PhaseHolding:
		return s.inconclusive.Render(fmt.Sprintf("? holding (%s): %s", st.Hold, m.holdReason())), ""
	case st.Phase == engine.PhasePaused && st.PauseStep:
		if st.PauseUntil.IsZero() {
			extra := ""
			if st.Weight > 0 && len(st.Checks) > 0 {
				extra = s.muted.Render(" (checks still run; a failure still rolls back)")
			}
			return s.warning.Render(fmt.Sprintf("‖ pause step: waiting for an operator to resume (%s)", m.keys.Pause.Help().Key)), extra
		}
		return s.warning.Render("‖ pause step until " + st.PauseUntil.In(m.loc).Format("15:04:05")), s.muted.Render(fmt.Sprintf(" (%s resumes now)", m.keys.Pause.Help().Key))
	case st.Phase == engine.PhasePaused:
		return s.warning.Render("‖ paused" + why(st.PauseReason, st.PausedBy)), s.muted.Render(" (checks still run; a failure still rolls back)")
	case st.Phase == engine.PhasePending:
		return s.muted.Render("starting…"), ""
	}
	return m.runningWords(), ""
}

// holdReason is why the rollout holds, as of the newest look: the checks still inconclusive
// (or whose source fails) with their reasons now, which move on with every look while the
// held event keeps the words of the look that started the hold.
func (m *Model) holdReason() string {
	st := &m.st
	var now []string
	for _, c := range st.Checks {
		if c.Last == nil || c.DryRun { // a dry run holds nothing
			continue
		}
		switch {
		case st.Hold == engine.HoldOutage && c.Last.SourceError != "":
			now = append(now, fmt.Sprintf("%s: %s", c.Name, c.Last.SourceError))
		case st.Hold == engine.HoldInconclusive && c.Last.Verdict == metrics.Inconclusive:
			now = append(now, fmt.Sprintf("%s inconclusive: %s", c.Name, c.Last.Reason))
		}
	}
	switch {
	case len(now) == 0:
		return st.HoldReason
	case st.Hold == engine.HoldOutage:
		return "metrics source failing: " + strings.Join(now, "; ")
	}
	return strings.Join(now, "; ")
}

// runningWords is a running step in a sentence: setting the weight, stabilizing, or how the
// checks stand.
func (m *Model) runningWords() string {
	s := &m.styles
	st := &m.st
	step := st.CurrentStep()
	switch {
	case st.Target >= 0 && !st.TargetConfirmed:
		return s.accent.Render(fmt.Sprintf("setting canary to %d%%…", st.Target))
	case !st.StrategiesInPlace():
		text, _ := m.strategyProgress()
		return s.accent.Render(text)
	case step.Analyze == 0 && step.Segment != nil:
		return s.accent.Render("segment routed; this step does not analyze")
	case step.Analyze == 0 && step.SetFlag != nil:
		return s.accent.Render("flag set; this step does not analyze")
	case step.Analyze == 0:
		return s.accent.Render("weight set; this step does not analyze")
	case st.AnalysisStartedAt.IsZero():
		return s.accent.Render(fmt.Sprintf("stabilizing at %s before the analysis starts", weightText(max(st.Weight, 0))))
	}
	var fail, unsure, dry []string
	for _, c := range st.Checks {
		switch {
		case c.Last == nil:
		case c.DryRun: // a dry run never holds or fails the step: said apart
			if c.Last.Verdict != metrics.Pass {
				dry = append(dry, fmt.Sprintf("%s %s", c.Name, c.Last.Verdict))
			}
		case c.Last.Verdict == metrics.Fail:
			fail = append(fail, fmt.Sprintf("%s (%d failure%s)", c.Name, c.Failures, plural(c.Failures)))
		case c.Last.Verdict == metrics.Inconclusive:
			unsure = append(unsure, c.Name)
		}
	}
	switch {
	case len(fail) > 0:
		return s.fail.Render(fmt.Sprintf("✘ failing: %s; limit %d failures per check, critical checks none", strings.Join(fail, ", "), st.Spec.Analysis.FailureLimit))
	case len(unsure) > 0:
		return s.inconclusive.Render("? inconclusive so far: " + strings.Join(unsure, ", "))
	case st.Looks == 0:
		return s.accent.Render(fmt.Sprintf("analysing %d%%: first look coming", st.Weight))
	}
	if len(dry) > 0 {
		return s.pass.Render(fmt.Sprintf("✔ analysing %d%%: every check passes (look %d); dry run: %s", st.Weight, st.Looks, strings.Join(dry, ", ")))
	}
	return s.pass.Render(fmt.Sprintf("✔ analysing %d%%: every check passes (look %d)", st.Weight, st.Looks))
}

// presenceText lists who is connected, marking viewers: "3 here: alice, carol, bob (viewer)".
func presenceText(people []engine.Actor) string {
	names := make([]string, len(people))
	for i, p := range people {
		names[i] = p.Name
		if p.Role == engine.RoleViewer {
			names[i] += " (viewer)"
		}
	}
	return fmt.Sprintf("%d here: %s", len(people), strings.Join(names, ", "))
}
