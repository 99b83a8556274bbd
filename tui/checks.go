package tui

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// checkHeight is the lines one check takes: four, or three when space is short.
func checkHeight(compact bool) int {
	if compact {
		return 3
	}
	return 4
}

// checksPane is the title and as many checks as fit in height, from the scroll position.
func (m *Model) checksPane(width, height int, compact bool) []string {
	if height <= 0 {
		return nil
	}
	s := &m.styles
	n := len(m.st.Checks)
	var pass, fail, inconclusive int
	for _, c := range m.st.Checks {
		if c.Last == nil {
			continue
		}
		switch c.Last.Verdict {
		case metrics.Pass:
			pass++
		case metrics.Fail:
			fail++
		case metrics.Inconclusive:
			inconclusive++
		}
	}
	title := fmt.Sprintf("CHECKS %d", n)
	counts := []string{}
	if pass > 0 {
		counts = append(counts, s.pass.Render(fmt.Sprintf("✔ %d", pass)))
	}
	if fail > 0 {
		counts = append(counts, s.fail.Render(fmt.Sprintf("✘ %d", fail)))
	}
	if inconclusive > 0 {
		counts = append(counts, s.inconclusive.Render(fmt.Sprintf("? %d", inconclusive)))
	}
	first := m.scroll[paneChecks]
	shown := max((height-1)/checkHeight(compact), 1)
	note := ""
	if n > shown {
		last := min(first+shown, n)
		note = fmt.Sprintf("%d–%d of %d", first+1, last, n)
		if last == first+1 {
			note = fmt.Sprintf("%d of %d", last, n)
		}
		if last < n {
			note += " ↓"
		}
	}
	if len(counts) > 0 {
		title = m.paneTitle(paneChecks, title) + " " + strings.Join(counts, " ")
	} else {
		title = m.paneTitle(paneChecks, title)
	}
	lines := []string{rule(title, s.muted.Render(note), width, s.border.Render)}
	if n == 0 {
		return append(lines, s.muted.Render("  this rollout has no checks"))
	}
	for i := first; i < n && len(lines) < height; i++ {
		lines = append(lines, m.checkBlock(i, width, compact)...)
	}
	return lines[:min(len(lines), height)]
}

// paneTitle styles a pane's title, marking the focused pane.
func (m *Model) paneTitle(p pane, title string) string {
	if m.focus == p {
		return m.styles.titleFocus.Render("▸ " + title)
	}
	return m.styles.title.Render(title)
}

// checkBlock draws check i: verdict and name; canary and baseline side by side with their
// values and sparklines; the deviation against the tolerance and the judge's evidence; and
// the judge's reason.
func (m *Model) checkBlock(i, width int, compact bool) []string {
	s := &m.styles
	c := &m.st.Checks[i]
	rate := false
	if spec := m.st.Spec; spec != nil && i < len(spec.Checks) {
		rate = spec.Checks[i].IsCounts()
	}
	var tags []string
	if c.Critical {
		tags = append(tags, "critical")
	}
	tags = append(tags, c.Judge, strings.ReplaceAll(string(c.Criteria.Direction), "_", " "))
	right := ""
	if c.Failures > 0 {
		right = s.fail.Render(fmt.Sprintf("%d failure%s this step", c.Failures, plural(c.Failures)))
	}
	head := fit(m.verdictBadge(c), 15) + s.bold.Render(c.Name) + "  " + s.muted.Render(strings.Join(tags, " · "))
	lines := []string{spread(head, right, width), m.sides(c, rate, width)}
	switch {
	case c.Last == nil:
		lines = append(lines, "  "+s.muted.Render(m.waitingWords()))
		if !compact {
			lines = append(lines, "")
		}
	case compact && c.Last.Verdict != metrics.Pass:
		lines = append(lines, "  "+m.reason(c))
	default:
		lines = append(lines, "  "+m.evidence(c, rate))
		if !compact {
			lines = append(lines, "  "+m.reason(c))
		}
	}
	for j := range lines {
		lines[j] = cut(lines[j], width)
	}
	return lines
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (m *Model) verdictBadge(c *engine.CheckState) string {
	s := &m.styles
	if c.Last == nil {
		return s.muted.Render("· WAITING")
	}
	switch c.Last.Verdict {
	case metrics.Pass:
		return s.pass.Render("✔ PASS")
	case metrics.Fail:
		return s.fail.Render("✘ FAIL")
	}
	return s.inconclusive.Render("? INCONCLUSIVE")
}

// sides is canary and baseline side by side: the newest value of each and its sparkline over
// the step, on one scale.
func (m *Model) sides(c *engine.CheckState, rate bool, width int) string {
	s := &m.styles
	half := (width - 2) / 2
	lo, hi := sparkRange(c.History)
	canaryVal, baselineVal := "—", "—"
	if c.Last != nil {
		canaryVal = formatValue(float64(c.Last.LastCanary), c.Unit, rate)
		baselineVal = formatValue(float64(c.Last.LastBaseline), c.Unit, rate)
	}
	valW := max(9, utf8.RuneCountInString(canaryVal), utf8.RuneCountInString(baselineVal))
	side := func(label string, canary bool) string {
		style, val := s.baseline, baselineVal
		if canary {
			style, val = s.canary, canaryVal
		}
		head := fmt.Sprintf("  %-8s %*s ", label, valW, val)
		var b strings.Builder
		sparkline(&b, c.History, canary, half-len([]rune(head)), lo, hi)
		return fit(style.Render(head)+style.Render(b.String()), half)
	}
	return side("canary", true) + "  " + side("baseline", false)
}

// evidence is the deviation against the tolerance, how much of the tolerance it uses, and a
// statistical judge's figures.
func (m *Model) evidence(c *engine.CheckState, rate bool) string {
	s := &m.styles
	r, cr := c.Last.Result, c.Criteria
	diff := float64(r.Canary - r.Baseline)
	var dev string
	switch {
	case cr.MaxIncrease != nil && cr.MaxDeviationPercent == nil:
		dev = signed(diff, c.Unit, rate)
	case cr.MaxIncrease != nil:
		dev = fmt.Sprintf("%s (%s)", signed(diff, c.Unit, rate), formatPercent(float64(r.Deviation)))
	default:
		dev = formatPercent(float64(r.Deviation))
	}
	parts := []string{s.text.Render("Δ " + dev), s.muted.Render("tolerance " + toleranceText(cr, c.Unit, rate))}
	if used, ok := toleranceUsed(cr, r); ok {
		switch {
		case used <= 0:
			parts = append(parts, s.pass.Render("no harm"))
		case used < 1:
			parts = append(parts, s.text.Render(fmt.Sprintf("uses %.0f%% of tolerance", used*100)))
		default:
			parts = append(parts, s.fail.Render(fmt.Sprintf("beyond tolerance (%.0f%%)", used*100)))
		}
	}
	if r.PValue != nil && r.PValue.Valid() {
		parts = append(parts, s.text.Render(fmt.Sprintf("p=%.3g", float64(*r.PValue))))
	}
	if r.DecidedAt != nil {
		parts = append(parts, s.text.Render(fmt.Sprintf("decided at look %d", *r.DecidedAt+1)))
	}
	if r.Classification != "" {
		parts = append(parts, s.text.Render("class "+r.Classification))
	}
	return strings.Join(parts, s.muted.Render(" · "))
}

// reason is the judge's own sentence, or why the source gave nothing.
func (m *Model) reason(c *engine.CheckState) string {
	s := &m.styles
	switch {
	case c.Last.SourceError != "":
		return s.warning.Render(c.Last.Reason)
	case c.Last.Verdict == metrics.Pass:
		return s.muted.Render(c.Last.Reason)
	case c.Last.Verdict == metrics.Fail:
		return s.fail.Render(c.Last.Reason)
	}
	return s.inconclusive.Render(c.Last.Reason)
}

func signed(v float64, unit string, rate bool) string {
	if asPercent(unit, rate) {
		return formatRateChange(v)
	}
	if v >= 0 {
		return "+" + formatValue(v, unit, rate)
	}
	return formatValue(v, unit, rate)
}

// toleranceText is how much worse the canary may be: "+15%", "−15%" (higher is better),
// "+0.5%" of a rate, "+15% and +20 ms".
func toleranceText(cr metrics.Criteria, unit string, rate bool) string {
	sign := "+"
	if cr.Direction == metrics.HigherIsBetter {
		sign = "−"
	}
	var parts []string
	if cr.MaxDeviationPercent != nil {
		parts = append(parts, sign+metrics.FormatValue(*cr.MaxDeviationPercent)+"%")
	}
	if cr.MaxIncrease != nil {
		if asPercent(unit, rate) {
			parts = append(parts, sign+strings.TrimPrefix(formatRateChange(*cr.MaxIncrease), "+"))
		} else {
			parts = append(parts, sign+formatValue(*cr.MaxIncrease, unit, rate))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " and ")
}

// toleranceUsed is the canary's harm as a share of the tolerance (1 is at the limit). A check
// fails only when every tolerance it has is exceeded, so the share is the smallest of them.
func toleranceUsed(cr metrics.Criteria, r metrics.Result) (float64, bool) {
	canary, baseline := float64(r.Canary), float64(r.Baseline)
	if !r.Canary.Valid() || !r.Baseline.Valid() {
		return 0, false
	}
	harm := canary - baseline
	if cr.Direction == metrics.HigherIsBetter {
		harm = -harm
	}
	used, ok := math.Inf(1), false
	if t := cr.MaxDeviationPercent; t != nil && *t > 0 && baseline != 0 {
		used, ok = min(used, harm/math.Abs(baseline)*100 / *t), true
	}
	if t := cr.MaxIncrease; t != nil && *t > 0 {
		used, ok = min(used, harm / *t), true
	}
	return used, ok
}

// waitingWords says why a check has no verdict yet this step.
func (m *Model) waitingWords() string {
	st := &m.st
	if !m.have || st.Spec == nil {
		return "no look yet"
	}
	step := st.CurrentStep()
	switch {
	case st.Phase.Done():
		return "no look in this step"
	case step.Pause != nil && st.Weight <= 0:
		return "no look: the canary has no traffic to watch yet"
	case !st.TargetConfirmed:
		return "no look yet: the weight is being set"
	case st.AnalysisStartedAt.IsZero():
		return fmt.Sprintf("no look yet: stabilizing, analysis starts in %s", formatDuration(until(m.now, st.StabilizedAt())))
	}
	return fmt.Sprintf("no look yet: first look in %s", formatDuration(until(m.now, st.NextLookAt())))
}
