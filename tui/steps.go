package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/perchhq/perch/engine"
)

// stepsPane is the timeline: every step with its weight, analysis time and state, then the
// promotion, scrolled to keep the current step in view when there is no room for all.
func (m *Model) stepsPane(width, height int) []string {
	if height <= 0 {
		return nil
	}
	s := &m.styles
	rows := m.stepRows(width)
	first := m.scroll[paneSteps]
	shown := height - 1
	note := ""
	if len(rows) > shown {
		first = min(first, len(rows)-shown)
		note = fmt.Sprintf("%d–%d of %d", first+1, first+shown, len(rows))
	}
	lines := []string{rule(m.paneTitle(paneSteps, "STEPS"), s.muted.Render(note), width, s.border.Render)}
	for _, r := range rows[min(first, len(rows)):] {
		if len(lines) == height {
			break
		}
		lines = append(lines, r)
	}
	return lines
}

// stepRows is one line per step and one for the promotion.
func (m *Model) stepRows(width int) []string {
	s := &m.styles
	st := &m.st
	if st.Spec == nil {
		return nil
	}
	descW := 0
	for _, step := range st.Spec.Steps {
		descW = max(descW, len(step.String()))
	}
	rows := make([]string, 0, len(st.Steps)+1)
	for i, step := range st.Spec.Steps {
		sym, detail := m.stepState(i, width-descW-8)
		rows = append(rows, cut(fmt.Sprintf("%s %2d  %s  %s", sym, i+1, s.text.Render(fmt.Sprintf("%-*s", descW, step.String())), detail), width))
	}
	sym, detail := s.muted.Render("·"), s.muted.Render("then promote")
	switch st.Phase {
	case engine.PhasePromoting:
		sym, detail = s.accent.Render("▶"), s.accent.Render("promoting: sending 100% to canary…")
	case engine.PhasePromoted:
		sym, detail = s.pass.Render("✔"), s.pass.Render("promoted")
	case engine.PhaseRolledBack, engine.PhaseRollingBack:
		detail = s.muted.Render("not reached")
	}
	rows = append(rows, cut(fmt.Sprintf("%s  ★  %s  %s", sym, s.text.Render(fmt.Sprintf("%-*s", descW, "100%")), detail), width))
	return rows
}

// stepState is a step's symbol and what is said of it: done with its verdict, current with its
// progress, or pending.
func (m *Model) stepState(i, width int) (string, string) {
	s := &m.styles
	step := m.st.Steps[i]
	switch step.Status {
	case engine.StepPassed:
		if step.By != nil {
			return s.pass.Render("✔"), s.accent.Render(orDefault(step.Reason, "advanced by "+step.By.Name))
		}
		return s.pass.Render("✔"), s.muted.Render(step.Reason)
	case engine.StepFailed:
		return s.fail.Render("✘"), s.fail.Render(step.Reason)
	case engine.StepSkipped:
		return s.muted.Render("↷"), s.muted.Render("skipped")
	case engine.StepCurrent:
		return m.currentStep(width)
	}
	if m.st.Spec.Steps[i].Pause != nil {
		return s.muted.Render("‖"), s.muted.Render("pause")
	}
	return s.muted.Render("·"), ""
}

// currentStep is the current step's symbol and progress.
func (m *Model) currentStep(width int) (string, string) {
	s := &m.styles
	st := &m.st
	step := st.CurrentStep()
	sym := s.accent.Render("▶")
	switch st.Phase {
	case engine.PhasePaused:
		sym = s.warning.Render("‖")
	case engine.PhaseHolding:
		sym = s.inconclusive.Render("?")
	case engine.PhaseRollingBack:
		return s.fail.Render("✘"), s.fail.Render("rolling back…")
	}
	switch {
	case step.Pause != nil && st.PauseStep && !st.PauseUntil.IsZero():
		return sym, s.warning.Render("resumes in " + formatDuration(until(m.now, st.PauseUntil)))
	case step.Pause != nil:
		return sym, s.warning.Render(fmt.Sprintf("waits for an operator (%s resumes)", m.keys.Pause.Help().Key))
	case st.Target >= 0 && !st.TargetConfirmed:
		if st.WeightAttempts > 0 {
			return sym, s.warning.Render(fmt.Sprintf("setting %d%% failed %d×", st.Target, st.WeightAttempts))
		}
		return sym, s.accent.Render(fmt.Sprintf("setting %d%%…", st.Target))
	case !st.StrategiesInPlace():
		text, failing := m.strategyProgress()
		if failing {
			return sym, s.warning.Render(text)
		}
		return sym, s.accent.Render(text)
	case st.AnalysisStartedAt.IsZero() && step.Analyze > 0:
		return sym, s.accent.Render("stabilizing " + formatDuration(until(m.now, st.StabilizedAt())))
	case step.Analyze > 0 && !m.now.Before(st.AnalysisEndsAt()):
		switch st.Phase {
		case engine.PhaseHolding:
			return sym, s.inconclusive.Render("analysis over; holding")
		case engine.PhasePaused:
			return sym, s.warning.Render("analysis over; paused")
		}
		return sym, s.accent.Render("analysis over; looking on while a check fails")
	case step.Analyze > 0:
		total := time.Duration(step.Analyze)
		done := min(m.now.Sub(st.AnalysisStartedAt), total)
		text := fmt.Sprintf(" %s of %s", formatDuration(done), formatSpan(total))
		barW := min(max(width-cells(text), 0), 20)
		return sym, gauge(s, float64(done)/float64(total), barW) + s.text.Render(text)
	}
	return sym, s.accent.Render("in progress")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// gauge is a bar of width cells filled to frac (0..1).
func gauge(s *styles, frac float64, width int) string {
	if width <= 0 {
		return ""
	}
	on := int(max(0, min(frac, 1)) * float64(width))
	return s.gaugeOn.Render(strings.Repeat("█", on)) + s.gaugeOff.Render(strings.Repeat("░", width-on))
}

// stepChips is the timeline in one line for narrow terminals: a symbol and weight per step.
func (m *Model) stepChips(width int) string {
	s := &m.styles
	st := &m.st
	if st.Spec == nil {
		return ""
	}
	chips := make([]string, 0, len(st.Steps)+1)
	for i := range st.Spec.Steps {
		label := stepLabel(i, st)
		var sym string
		switch st.Steps[i].Status {
		case engine.StepPassed:
			sym = s.pass.Render("✔")
		case engine.StepFailed:
			sym = s.fail.Render("✘")
		case engine.StepSkipped:
			sym = s.muted.Render("↷")
		case engine.StepCurrent:
			sym, _ = m.currentStep(0)
			label = s.bold.Render(label)
		default:
			sym = s.muted.Render("·")
		}
		chips = append(chips, sym+label)
	}
	end := s.muted.Render("·") + "100%"
	if st.Phase == engine.PhasePromoted {
		end = s.pass.Render("✔") + "100%"
	}
	chips = append(chips, end)
	// Drop passed steps from the left until the current one fits.
	title := m.paneTitle(paneSteps, "STEPS") + " "
	line := title + strings.Join(chips, " ")
	for start := 1; cells(line) > width && start <= st.Step; start++ {
		line = title + "… " + strings.Join(chips[start:], " ")
	}
	return cut(line, width)
}
