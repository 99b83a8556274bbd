package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// How much room a check gets. Checks share the pane's height; with room for chartHeight lines
// each a check draws a chart of its step, with less it draws sparklines in four lines (three
// when space is short). When even four do not fit, wide panes lay checks out in columns of at
// least minCheckWidth cells, and otherwise the pane scrolls.
const (
	compactHeight = 3
	normalHeight  = 4
	chartHeight   = 8
	minCheckWidth = 56
	minChartRows  = 3
)

// checkGrid is how the checks pane lays its checks out: cols columns of blocks w cells wide
// and h lines high, in rows, of which shown fit at once.
type checkGrid struct {
	cols, w, h  int
	rows, shown int
}

// gridFor lays n checks out in width×height (the title takes a line). compact forces three
// lines a check, as narrow terminals and short wide ones need.
func gridFor(n, width, height int, compact bool) checkGrid {
	n = max(n, 1)
	avail := max(height-1, 0)
	g := checkGrid{cols: 1, h: compactHeight}
	if !compact {
		for {
			rows := (n + g.cols - 1) / g.cols
			g.h = avail / rows
			if g.h >= chartHeight || width/(g.cols+1) < minCheckWidth || g.cols >= n {
				break
			}
			g.cols++
		}
		g.h = max(g.h, normalHeight)
	}
	g.w = (width - 2*(g.cols-1)) / g.cols
	g.rows = (n + g.cols - 1) / g.cols
	g.shown = max(avail/g.h, 1)
	return g
}

// checksPane is the title and the checks that fit, from the scroll position (in rows).
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
	g := gridFor(n, width, height, compact)
	first := m.scroll[paneChecks] * g.cols
	note := ""
	if g.rows > g.shown {
		last := min(first+g.shown*g.cols, n)
		note = fmt.Sprintf("%d–%d of %d", first+1, last, n)
		if last == first+1 {
			note = fmt.Sprintf("%d of %d", last, n)
		}
		if last < n {
			note += " ↓"
		}
	}
	if m.focus == paneChecks && n > 0 {
		note = strings.TrimSpace(note + " " + m.keys.Open.Help().Key + " details")
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
	for i := first; i < n && len(lines) < height; i += g.cols {
		row := make([][]string, 0, g.cols)
		for j := i; j < min(i+g.cols, n); j++ {
			row = append(row, m.checkBlock(j, g.w, g.h))
		}
		for k := range g.h {
			parts := make([]string, len(row))
			for c, block := range row {
				line := ""
				if k < len(block) {
					line = block[k]
				}
				if c < len(row)-1 {
					line = fit(line, g.w)
				}
				parts[c] = line
			}
			lines = append(lines, strings.Join(parts, "  "))
		}
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

// checkUnit is how check i's values are written.
func (m *Model) checkUnit(i int) metrics.Unit {
	c := &m.st.Checks[i]
	rate := false
	if spec := m.st.Spec; spec != nil && i < len(spec.Checks) {
		rate = spec.Checks[i].ValueUnit().Rate // counts, and a histogram's shares of requests
	}
	return valueUnit(c.Criteria.Unit, c.Unit, rate)
}

// valueUnit is the unit values are written in: the judge's (the spec's, normalised), else the
// check's own, and a rate without one as a percentage.
func valueUnit(judged, own string, rate bool) metrics.Unit {
	name := judged
	if name == "" {
		name = own
	}
	if rate && name == "" {
		name = "%"
	}
	return metrics.Unit{Name: name, Rate: rate}
}

// checkBlock draws check i in width×height: with room, a chart of its step between its
// values and its evidence; else its values with sparklines, its evidence and its reason.
func (m *Model) checkBlock(i, width, height int) []string {
	c := &m.st.Checks[i]
	u := m.checkUnit(i)
	var lines []string
	if height >= chartHeight && c.Last != nil {
		lines = m.chartBlock(i, u, width, height)
	} else {
		lines = m.sparkBlock(i, u, width, height)
	}
	for j := range lines {
		lines[j] = cut(lines[j], width)
	}
	return lines
}

// checkHead is the check's first line: the cursor, its verdict and name, its tags, and its
// failures this step.
func (m *Model) checkHead(i, width int) string {
	s := &m.styles
	c := &m.st.Checks[i]
	var tags []string
	if c.Critical {
		tags = append(tags, "critical")
	}
	tags = append(tags, c.Judge, strings.ReplaceAll(string(c.Criteria.Direction), "_", " "))
	right := ""
	if c.Failures > 0 {
		right = s.fail.Render(fmt.Sprintf("%d failure%s this step", c.Failures, plural(c.Failures)))
	}
	dry := ""
	if c.DryRun {
		// Said before the other tags, so a narrow pane cuts those first.
		dry = s.warning.Render("dry run") + s.muted.Render(" · ")
	}
	head := m.gutter(paneChecks, i) + fit(m.verdictBadge(c), 15) + s.bold.Render(c.Name) + "  " + dry + s.muted.Render(strings.Join(tags, " · "))
	return spread(head, right, width)
}

// gutter marks item i of pane p when the cursor is on it and the pane has focus: enter opens it.
func (m *Model) gutter(p pane, i int) string {
	if m.focus == p && m.cursor[p] == i && m.detail == nil {
		return m.styles.accent.Render("▸")
	}
	return " "
}

// sparkBlock is a check in three to seven lines: head; canary and baseline with sparklines;
// the evidence; the judge's reason, wrapped into what is left (three lines: evidence or
// reason, whichever matters).
func (m *Model) sparkBlock(i int, u metrics.Unit, width, height int) []string {
	s := &m.styles
	c := &m.st.Checks[i]
	lines := []string{m.checkHead(i, width), m.sides(c, u, width)}
	switch {
	case c.Last == nil:
		lines = append(lines, "  "+s.muted.Render(m.waitingWords()))
	case height <= compactHeight && c.Last.Verdict != metrics.Pass:
		lines = append(lines, m.reasonLines(c, width-2, 1)...)
	case height <= compactHeight:
		lines = append(lines, "  "+m.evidenceLine(c, u))
	default:
		lines = append(lines, "  "+m.evidenceLine(c, u))
		lines = append(lines, m.reasonLines(c, width-2, height-len(lines))...)
	}
	return lines
}

// reasonLines are the judge's reason wrapped in at most n lines of width, indented; the last
// is cut when the reason needs more (enter shows it whole).
func (m *Model) reasonLines(c *engine.CheckState, width, n int) []string {
	if n <= 0 || c.Last == nil {
		return nil
	}
	text := c.Last.Reason
	if text == "" {
		return nil
	}
	wrapped := wrap(text, width)
	if len(wrapped) > n {
		rest := strings.Join(wrapped[n-1:], " ")
		wrapped = append(wrapped[:n-1], cut(rest, width))
	}
	style := m.reasonStyle(c)
	out := make([]string, len(wrapped))
	for j, l := range wrapped {
		out[j] = "  " + style.Render(l)
	}
	return out
}

// reasonStyle colours a reason by what it says: a source's failure, a pass, a fail, or not
// yet decided.
func (m *Model) reasonStyle(c *engine.CheckState) paint {
	s := &m.styles
	switch {
	case c.Last.SourceError != "":
		return s.warning
	case c.Last.Verdict == metrics.Pass:
		return s.muted
	case c.Last.Verdict == metrics.Fail:
		return s.fail
	}
	return s.inconclusive
}

// chartBlock is a check with room for a chart: head; the newest values, labelled as the last
// interval's, and the window's change against the tolerance; a chart of both sides over the
// step with the tolerance's limit and weight changes; the evidence in words; the reason,
// wrapped.
func (m *Model) chartBlock(i int, u metrics.Unit, width, height int) []string {
	s := &m.styles
	c := &m.st.Checks[i]
	r := c.Last
	lines := []string{m.checkHead(i, width),
		"  " + s.canary.Render("canary "+formatIn(u, float64(r.LastCanary))) + s.muted.Render(" · ") +
			s.baseline.Render("baseline "+formatIn(u, float64(r.LastBaseline))) + s.muted.Render(" ("+m.lastWords()+")")}
	inner := width - 2
	room := height - len(lines)
	evidence := flow(m.evidenceParts(c, u), s.muted.Render(" · "), inner, 2)
	if room-len(evidence)-1 < minChartRows {
		evidence = flow(m.evidenceParts(c, u), s.muted.Render(" · "), inner, 1)
	}
	reasonN := min(len(wrap(r.Reason, inner)), max(room-len(evidence)-minChartRows, 1))
	rows := room - len(evidence) - reasonN
	lines = append(lines, m.checkChart(c, u, inner, rows, "  ")...)
	for _, l := range evidence {
		lines = append(lines, "  "+l)
	}
	return append(lines, m.reasonLines(c, inner, reasonN)...)
}

// lastWords labels the newest values as the last interval's: "last 30s".
func (m *Model) lastWords() string {
	if m.st.Spec == nil {
		return "last interval"
	}
	return "last " + spanWords(time.Duration(m.st.Spec.Analysis.Interval))
}

// spanWords is a configured span, with milliseconds for spans under a second.
func spanWords(d time.Duration) string {
	if d < time.Second {
		return d.String()
	}
	return formatSpan(d)
}

// formatIn writes v in u, "—" when missing.
func formatIn(u metrics.Unit, v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return u.Value(v)
}

// deviationText is the window's change as the tolerance measures it.
func deviationText(c *engine.CheckState, u metrics.Unit) string {
	r, cr := c.Last.Result, c.Criteria
	diff := float64(r.Canary - r.Baseline)
	switch {
	case cr.MaxIncrease != nil && cr.MaxDeviationPercent == nil:
		return formatDiff(u, diff)
	case cr.MaxIncrease != nil:
		return fmt.Sprintf("%s (%s)", formatDiff(u, diff), formatPercent(float64(r.Deviation)))
	}
	return formatPercent(float64(r.Deviation))
}

func formatDiff(u metrics.Unit, d float64) string {
	if math.IsNaN(d) {
		return "—"
	}
	return u.Diff(d)
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
// the step, on one scale; with room, labelled as the last interval's.
func (m *Model) sides(c *engine.CheckState, u metrics.Unit, width int) string {
	s := &m.styles
	label := ""
	if width >= 70 {
		label = s.muted.Render("  " + m.lastWords())
		width -= cells(label)
	}
	half := (width - 2) / 2
	lo, hi := sparkRange(c.History)
	canaryVal, baselineVal := "—", "—"
	if c.Last != nil {
		canaryVal = formatIn(u, float64(c.Last.LastCanary))
		baselineVal = formatIn(u, float64(c.Last.LastBaseline))
	}
	valW := max(9, cells(canaryVal), cells(baselineVal))
	side := func(name string, canary bool) string {
		style, val := s.baseline, baselineVal
		if canary {
			style, val = s.canary, canaryVal
		}
		head := fmt.Sprintf("  %-8s %*s ", name, valW, val)
		var b strings.Builder
		sparkline(&b, c.History, canary, half-cells(head), lo, hi)
		return fit(style.Render(head)+style.Render(b.String()), half)
	}
	return label + side("canary", true) + "  " + side("baseline", false)
}

// evidenceLine is the window's change against the tolerance and where the judge stands, in
// one line.
func (m *Model) evidenceLine(c *engine.CheckState, u metrics.Unit) string {
	return strings.Join(m.evidenceParts(c, u), m.styles.muted.Render(" · "))
}

// evidenceParts are the window's change, the tolerance and where the judge stands (see
// judgeWords), each styled.
func (m *Model) evidenceParts(c *engine.CheckState, u metrics.Unit) []string {
	s := &m.styles
	parts := []string{s.text.Render("window Δ " + deviationText(c, u)), s.muted.Render("tolerance " + u.Tolerance(c.Criteria))}
	if c.Last.SourceError == "" {
		parts = append(parts, m.judgeWords(c, u)...)
	}
	return parts
}

// judgeWords is where the judge stands: a sequential judge's evidence in words, or how much
// of the tolerance the change uses and a statistical judge's figures.
func (m *Model) judgeWords(c *engine.CheckState, u metrics.Unit) []string {
	s := &m.styles
	r := c.Last.Result
	if c.Last.SourceError != "" {
		return []string{s.warning.Render("no data this look: the metrics source failed")}
	}
	if _, ok := readEvidence(r, u); ok {
		return m.evidenceWords(c, u)
	}
	var parts []string
	if used, ok := toleranceUsed(c.Criteria, r); ok {
		switch {
		case used <= 0:
			parts = append(parts, s.pass.Render("no harm"))
		case used < 1:
			parts = append(parts, s.text.Render(fmt.Sprintf("uses %.0f%% of tolerance", used*100)))
		case r.Verdict == metrics.Fail:
			parts = append(parts, s.fail.Render(fmt.Sprintf("beyond tolerance (%.0f%%)", used*100)))
		default:
			parts = append(parts, s.inconclusive.Render(fmt.Sprintf("estimate beyond tolerance (%.0f%%), not decided", used*100)))
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
	return parts
}

// evidenceWords is where a sequential judge stands in words: what decided it, or while it is
// undecided how far its harm and safety evidence are and what is missing.
func (m *Model) evidenceWords(c *engine.CheckState, u metrics.Unit) []string {
	s := &m.styles
	r := c.Last.Result
	e, ok := readEvidence(r, u)
	look := func() string {
		if r.DecidedAt == nil {
			return ""
		}
		return fmt.Sprintf(" at look %d", *r.DecidedAt+1)
	}
	switch {
	case !ok:
		return nil
	case r.Verdict == metrics.Fail:
		return []string{s.fail.Render(fmt.Sprintf("✘ harm shown%s (%s of %s needed)", look(), amount(e.harm), amount(e.harmNeed)))}
	case r.Verdict == metrics.Pass:
		text := "✔ shown within tolerance" + look()
		if e.hasSafe {
			text += fmt.Sprintf(" (%s of %s needed)", amount(e.safe), amount(e.safeNeed))
		}
		return []string{s.pass.Render(text)}
	}
	parts := []string{s.inconclusive.Render(e.harmWords())}
	if w := e.safeWords(); w != "" {
		parts = append(parts, s.text.Render(w))
	}
	if m.st.Spec != nil {
		if w := e.outlookWords(time.Duration(m.st.Spec.Analysis.Interval)); w != "" {
			parts = append(parts, s.text.Render(w))
		}
	}
	return parts
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

// limitOf is the value the canary may reach before it is beyond tolerance, against baseline
// (NaN when there is no tolerance). A check fails only beyond every tolerance it has, so the
// limit is the furthest of them.
func limitOf(cr metrics.Criteria, baseline float64) float64 {
	if !finite(baseline) {
		return math.NaN()
	}
	sign := 1.0
	if cr.Direction == metrics.HigherIsBetter {
		sign = -1
	}
	limit, ok := baseline, false
	if t := cr.MaxDeviationPercent; t != nil {
		limit, ok = baseline+sign*math.Abs(baseline)**t/100, true
	}
	if t := cr.MaxIncrease; t != nil {
		other := baseline + sign**t
		if !ok || sign*(other-limit) > 0 {
			limit = other
		}
		ok = true
	}
	if !ok {
		return math.NaN()
	}
	return limit
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
