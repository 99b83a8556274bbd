package tui

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
)

// detail is what the detail view shows in the body's place: the check, step or event under
// the cursor when enter was pressed. A check or step is shown live from the newest state; an
// event as it was recorded.
type detail struct {
	kind  pane         // paneChecks, paneSteps or paneEvents
	index int          // the check or step (len(Steps): the promotion)
	ev    engine.Event // the event (the newest of a row of looks)
	looks int          // looks the event's row folds, for an analysis
	since time.Time    // the oldest of them
	at    int          // scroll position
}

// openDetail opens the detail view on the focused pane's cursor.
func (m *Model) openDetail() {
	p := m.focus
	if !m.have || m.items(p) == 0 {
		return
	}
	d := &detail{kind: p, index: m.cursor[p]}
	if p == paneEvents {
		row := m.rows[d.index]
		d.ev, d.looks, d.since = row.ev, row.looks, row.since
	}
	m.detail = d
}

// detailKey handles a key in the detail view; it reports whether it did. Scroll keys scroll
// the view (in a replay g and G still jump the recording), and esc or q return.
func (m *Model) detailKey(msg tea.KeyMsg) bool {
	k, d := m.keys, m.detail
	replayJump := m.opts.Mode == ModeReplay && (key.Matches(msg, k.ToStart) || key.Matches(msg, k.ToEnd))
	page := max(m.layout().bodyH-2, 1)
	switch {
	case key.Matches(msg, k.Back), key.Matches(msg, k.Quit):
		m.detail = nil
		return true
	case replayJump:
		return false
	case key.Matches(msg, k.Down):
		d.at++
	case key.Matches(msg, k.Up):
		d.at--
	case key.Matches(msg, k.PageDown):
		d.at += page
	case key.Matches(msg, k.PageUp):
		d.at -= page
	case key.Matches(msg, k.Top):
		d.at = 0
	case key.Matches(msg, k.Bottom):
		d.at = math.MaxInt / 2
	default:
		return false
	}
	m.clampDetail()
	return true
}

// clampDetail keeps the detail view's scroll position inside its content.
func (m *Model) clampDetail() {
	d := m.detail
	if d == nil {
		return
	}
	l := m.layout()
	n := len(m.detailLines(m.width, l.bodyH))
	d.at = max(0, min(d.at, n-(l.bodyH-1)))
}

// detailPane draws the detail view in width×height.
func (m *Model) detailPane(width, height int) []string {
	s := &m.styles
	d := m.detail
	lines := m.detailLines(width, height)
	first := max(0, min(d.at, len(lines)-(height-1)))
	note := fmt.Sprintf("%s back", m.keys.Back.Help().Key)
	if len(lines) > height-1 {
		note = fmt.Sprintf("%d–%d of %d · %s scroll · %s", first+1, min(first+height-1, len(lines)), len(lines),
			pair(m.keys.Down, m.keys.Up, "/"), note)
	}
	out := []string{rule(s.titleFocus.Render("▸ "+m.detailTitle()), s.muted.Render(note), width, s.border.Render)}
	for _, l := range lines[first:min(len(lines), first+height-1)] {
		out = append(out, cut(l, width))
	}
	return out
}

// detailTitle names what the detail view shows.
func (m *Model) detailTitle() string {
	d := m.detail
	switch d.kind {
	case paneChecks:
		if d.index < len(m.st.Checks) {
			return "CHECK " + m.st.Checks[d.index].Name
		}
	case paneSteps:
		if d.index >= len(m.st.Steps) {
			return "PROMOTION"
		}
		return fmt.Sprintf("STEP %d/%d", d.index+1, len(m.st.Steps))
	}
	return "EVENT " + strings.ToUpper(strings.ReplaceAll(string(d.ev.Type), "_", " "))
}

// detailLines is the detail view's content for a body of width×height.
func (m *Model) detailLines(width, height int) []string {
	d := m.detail
	p := &page{m: m, w: width}
	switch d.kind {
	case paneChecks:
		if d.index < len(m.st.Checks) {
			m.checkDetail(p, d.index, height)
		}
	case paneSteps:
		m.stepDetail(p, d.index)
	case paneEvents:
		m.eventDetail(p, &d.ev, d.looks, d.since)
	}
	return p.lines
}

// page collects the detail view's lines: labelled fields whose text wraps under the label's
// column, sections and blank lines.
type page struct {
	m     *Model
	w     int
	lines []string
}

// labelW is the width of a field's label column.
const labelW = 12

func (p *page) add(lines ...string) { p.lines = append(p.lines, lines...) }

func (p *page) blank() { p.add("") }

// section starts a part of the page with a titled rule; note goes to its right.
func (p *page) section(title, note string) {
	s := &p.m.styles
	p.add(rule(s.title.Render(title), note, p.w, s.border.Render))
}

// field is text under a label, wrapped to the page, in style.
func (p *page) field(label, text string, style paint) {
	s := &p.m.styles
	head := " " + s.muted.Render(fmt.Sprintf("%-*s", labelW-1, label))
	for i, l := range wrap(text, max(p.w-labelW-1, 10)) {
		if i > 0 {
			head = strings.Repeat(" ", labelW)
		}
		p.add(head + style.Render(l))
	}
}

// text is a paragraph, wrapped to the page and indented by one.
func (p *page) text(text string, style paint) {
	for _, l := range wrap(text, max(p.w-2, 10)) {
		p.add(" " + style.Render(l))
	}
}

// checkDetail is everything about check i: its verdict and the judge's whole reason, a
// sequential judge's evidence against what it needs, what it measures and against what
// tolerance, its judge, when it was decided, its values now, charts of its values and evidence
// over the step, and the judge's figures. The charts take the height the rest leaves.
func (m *Model) checkDetail(p *page, i, height int) {
	dry := &page{m: m, w: p.w}
	m.checkDetailWith(dry, i, 0, 0)
	free := height - 1 - len(dry.lines)
	c := &m.st.Checks[i]
	if c.Last != nil {
		if _, ok := readEvidence(c.Last.Result, m.checkUnit(i)); ok {
			main := max(6, min(free*3/5, 24))
			m.checkDetailWith(p, i, main, max(5, min(free-main, 12)))
			return
		}
	}
	m.checkDetailWith(p, i, max(6, min(free, 30)), 0)
}

// checkDetailWith is checkDetail with charts of rows and evidenceRows lines.
func (m *Model) checkDetailWith(p *page, i, rows, evidenceRows int) {
	s := &m.styles
	c := &m.st.Checks[i]
	u := m.checkUnit(i)
	var sc *spec.Check
	if m.st.Spec != nil && i < len(m.st.Spec.Checks) {
		sc = &m.st.Spec.Checks[i]
	}
	tags := []string{}
	if c.DryRun {
		tags = append(tags, "dry run: never holds, fails or rolls back")
	}
	if c.Critical {
		tags = append(tags, "critical: a failure rolls back at once")
	}
	tags = append(tags, strings.ReplaceAll(string(c.Criteria.Direction), "_", " "))
	if u.Name != "" {
		tags = append(tags, "values in "+unitWords(u))
	}
	head := " " + m.verdictBadge(c) + "  " + s.bold.Render(c.Name) + "  " + s.muted.Render(strings.Join(tags, " · "))
	if c.Failures > 0 {
		head += "  " + s.fail.Render(fmt.Sprintf("%d failure%s this step", c.Failures, plural(c.Failures)))
	}
	p.add(head)
	p.blank()
	r := c.Last
	if r != nil {
		p.field("reason", r.Reason, m.reasonStyle(c))
	}
	if c.Would != "" {
		p.field("dry run", c.Would.Words()+" this step; nothing was done", s.warning)
	}
	e, sequential := evidence{}, false
	if r != nil {
		e, sequential = readEvidence(r.Result, u)
	}
	if sequential {
		m.evidenceGauges(p, c, e)
	}
	if r != nil {
		p.blank()
	}
	if sc != nil {
		m.measureFields(p, sc)
	}
	p.field("tolerance", u.Tolerance(c.Criteria)+toleranceNote(c.Criteria), s.text)
	p.field("judge", m.judgeText(c, sc), s.text)
	switch {
	case r == nil:
		p.field("verdict", m.waitingWords(), s.muted)
		return
	case r.DecidedAt != nil:
		p.field("decided", fmt.Sprintf("at look %d of the step%s", *r.DecidedAt+1, m.lookTime(c, *r.DecidedAt)), s.text)
	default:
		p.field("decided", "not yet: the verdict may change at the next look", s.text)
	}
	p.field("last look", fmt.Sprintf("%s, look %d of the step", m.st.LastLookAt.In(m.loc).Format("15:04:05"), len(c.History)), s.text)
	p.field(m.lastWords(), fmt.Sprintf("canary %s · baseline %s", formatIn(u, float64(r.LastCanary)), formatIn(u, float64(r.LastBaseline))), s.text)
	p.field("window", fmt.Sprintf("canary %s · baseline %s · Δ %s · tolerance %s", formatIn(u, float64(r.Canary)), formatIn(u, float64(r.Baseline)),
		deviationText(c, u), u.Tolerance(c.Criteria)), s.text)
	if r.SourceError != "" {
		p.field("source", r.SourceError, s.warning)
	}
	p.blank()
	legend := s.canary.Render("⣀ canary") + " " + s.baseline.Render("⣀ baseline") + " " + s.warning.Render("⠄ limit") + " " + s.accent.Render("⡇ weight change")
	p.section("over the step", legend)
	p.add(m.checkChart(c, u, p.w-2, rows, " ")...)
	if sequential {
		legend := s.fail.Render("⣀ harm") + " " + s.pass.Render("⣀ safety") + " " + s.muted.Render("⠄ needed to decide")
		p.section("evidence over the step, as a share of what each needs", legend)
		p.add(m.evidenceChart(c, e, p.w-2, evidenceRows, " ")...)
	}
	if len(r.Stats) > 0 || r.PValue != nil || r.Classification != "" {
		p.section("figures", "")
		p.text(figures(r.Result), s.muted)
	}
}

// measureFields say what a check measures: its queries, or the proxy's measure.
func (m *Model) measureFields(p *page, sc *spec.Check) {
	s := &m.styles
	line := printable.Line
	switch {
	case sc.Builtin != "":
		p.field("measures", line(sc.Builtin)+" of each version, from the proxy's own observations", s.text)
	case sc.Events != nil && sc.Total != nil:
		p.field("events", "canary "+line(sc.Events.Canary.String()), s.text)
		p.field("", "baseline "+line(sc.Events.Baseline.String()), s.text)
		p.field("out of", "canary "+line(sc.Total.Canary.String()), s.text)
		p.field("", "baseline "+line(sc.Total.Baseline.String()), s.text)
	case sc.Histogram != nil:
		p.field("histogram", "canary "+line(sc.Histogram.Canary.String()), s.text)
		p.field("", "baseline "+line(sc.Histogram.Baseline.String()), s.text)
	default:
		p.field("canary", line(sc.Canary.String()), s.text)
		p.field("baseline", line(sc.Baseline.String()), s.text)
	}
}

// judgeText names a check's judge and its options.
func (m *Model) judgeText(c *engine.CheckState, sc *spec.Check) string {
	text := c.Judge
	if sc == nil || len(sc.JudgeOptions) == 0 {
		return text + " (default options)"
	}
	var opts []string
	for _, k := range slices.Sorted(maps.Keys(sc.JudgeOptions)) {
		opts = append(opts, fmt.Sprintf("%s %v", k, sc.JudgeOptions[k]))
	}
	return printable.Line(text + ": " + strings.Join(opts, ", "))
}

// lookTime is " (15:04:05)", the time of look i of the step, when the history has it.
func (m *Model) lookTime(c *engine.CheckState, i int) string {
	if i < 0 || i >= len(c.History) || len(c.History) == engine.MaxHistory {
		return ""
	}
	return " (" + c.History[i].Time.In(m.loc).Format("15:04:05") + ")"
}

// evidenceGauges are a sequential judge's harm and safety evidence against what each needs,
// as gauges and in words, and what is still missing.
func (m *Model) evidenceGauges(p *page, c *engine.CheckState, e evidence) {
	s := &m.styles
	barW := min(24, max(p.w/8, 8))
	gauge := func(label string, on paint, frac float64, words string) {
		head := " " + s.muted.Render(fmt.Sprintf("%-*s", labelW-1, label)) + gaugeIn(s, on, frac, barW) + " "
		for i, l := range wrap(words, max(p.w-labelW-barW-2, 10)) {
			if i > 0 {
				head = strings.Repeat(" ", labelW+barW+1)
			}
			p.add(head + s.text.Render(l))
		}
	}
	gauge("harm", s.fail, progress(e.harm, e.harmNeed), e.harmWords()+" to roll back")
	if e.hasSafe {
		gauge("safety", s.pass, progress(e.safe, e.safeNeed), e.safeWords()+" to pass")
	}
	if m.st.Spec != nil && c.Last.Verdict == metrics.Inconclusive {
		if w := e.outlookWords(time.Duration(m.st.Spec.Analysis.Interval)); w != "" {
			p.field("missing", w, s.text)
		}
	}
	if e.detectable != "" {
		p.field("could show", "harm of "+e.detectable+" or more, with the data so far", s.text)
	}
}

// gaugeIn is a bar of width cells filled to frac in on.
func gaugeIn(s *styles, on paint, frac float64, width int) string {
	n := int(math.Round(max(0, min(frac, 1)) * float64(width)))
	return on.Render(strings.Repeat("█", n)) + s.gaugeOff.Render(strings.Repeat("░", width-n))
}

// toleranceNote says how two tolerances combine.
func toleranceNote(c metrics.Criteria) string {
	if c.MaxDeviationPercent != nil && c.MaxIncrease != nil {
		return " (the canary fails only beyond both)"
	}
	return ""
}

// unitWords names a unit for people.
func unitWords(u metrics.Unit) string {
	switch {
	case u.Name == "%":
		return "% (changes in pp)"
	case u.Name == "s":
		return "ms (s from 1 s)"
	}
	return u.Name
}

// figures lists a result's statistics by name.
func figures(r metrics.Result) string {
	var parts []string
	if r.PValue != nil {
		parts = append(parts, "pValue "+metrics.FormatValue(float64(*r.PValue)))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Stats)) {
		parts = append(parts, k+" "+metrics.FormatValue(float64(r.Stats[k])))
	}
	if r.Classification != "" {
		parts = append(parts, "classification "+r.Classification)
	}
	return strings.Join(parts, " · ")
}

// stepDetail is step i (or, past the last, the promotion): what it does, where it stands and
// why, and its events this attempt, whole.
func (m *Model) stepDetail(p *page, i int) {
	s := &m.styles
	st := &m.st
	if st.Spec == nil {
		return
	}
	if i >= len(st.Steps) {
		_, detail := m.promotionRow()
		p.add(" " + detail)
		p.blank()
		m.eventList(p, func(ev *engine.Event) bool {
			return ev.Type == engine.EventPromoteStarted || ev.Type == engine.EventPromoted
		})
		return
	}
	step := st.Spec.Steps[i]
	sym, state := m.stepState(i, p.w-labelW-4)
	p.add(" " + sym + " " + s.bold.Render(printable.Line(step.String())) + "  " + state)
	p.blank()
	what := "waits for an operator to resume"
	switch {
	case step.Pause != nil && step.Pause.Duration > 0:
		what = "waits " + formatSpan(time.Duration(step.Pause.Duration)) + " (an operator may resume it sooner)"
	case step.Pause != nil:
	case step.SetWeight != nil:
		what = fmt.Sprintf("sends %d%% to canary", *step.SetWeight)
	case step.Segment != nil:
		what = "sends the segment " + printable.Line(step.Segment.Name) + " wholly to the canary"
	case step.SetFlag != nil && step.SetFlag.Percent != nil:
		what = fmt.Sprintf("sets the flag %s to %d%%", printable.Line(step.SetFlag.Flag), *step.SetFlag.Percent)
	}
	switch {
	case step.Pause != nil:
	case step.Analyze > 0:
		what += ", then analyses for " + formatSpan(time.Duration(step.Analyze))
	default:
		what += " and goes on"
	}
	p.field("does", what, s.text)
	ss := st.Steps[i]
	p.field("status", string(ss.Status), s.text)
	if ss.By != nil {
		p.field("by", ss.By.Name, s.accent)
	}
	if ss.Reason != "" {
		p.field("why", ss.Reason, s.text)
	}
	if i == st.Step && !st.Phase.Done() {
		p.field("now", strings.Join(m.clocks(), " · "), s.text)
	}
	p.blank()
	m.eventList(p, func(ev *engine.Event) bool { return ev.Step == i })
}

// eventList lists the events of this attempt that keep says, oldest first, each whole.
func (m *Model) eventList(p *page, keep func(*engine.Event) bool) {
	s := &m.styles
	log := m.st.Log
	for j := len(log) - 1; j >= 0; j-- {
		if log[j].Type == engine.EventRolloutStarted {
			log = log[j:]
			break
		}
	}
	p.section("its events", s.muted.Render("oldest first; looks that came to the same verdicts in one line"))
	var kept []engine.Event
	for j := range log {
		if keep(&log[j]) {
			kept = append(kept, log[j])
		}
	}
	rows := logRows(kept)
	for j := len(rows) - 1; j >= 0; j-- {
		row := &rows[j]
		at := row.ev.Time.In(m.loc).Format("15:04:05") + " "
		text := row.ev.Describe(m.st.Spec)
		if row.looks > 0 {
			text = row.summary
			if row.looks > 1 {
				at = row.since.In(m.loc).Format("15:04:05") + " "
				text += fmt.Sprintf(" (%d looks to %s)", row.looks, row.ev.Time.In(m.loc).Format("15:04:05"))
			}
		}
		for k, l := range wrap(text, max(p.w-len(at)-2, 10)) {
			if k > 0 {
				at = strings.Repeat(" ", len(at))
			}
			p.add(" " + s.muted.Render(at) + s.text.Render(l))
		}
	}
	if len(rows) == 0 {
		p.add(" " + s.muted.Render("none in the event log"))
	}
}

// eventDetail is one event whole: when, what, who, every field it carries and, for a look,
// every check's values and reason.
func (m *Model) eventDetail(p *page, ev *engine.Event, looks int, since time.Time) {
	s := &m.styles
	p.add(" " + s.bold.Render(ev.Time.In(m.loc).Format("2006-01-02 15:04:05.000")) + "  " + s.text.Render(string(ev.Type)) +
		s.muted.Render(fmt.Sprintf("  event %d · step %d", ev.Seq, ev.Step+1)))
	p.blank()
	p.field("what", ev.Describe(m.st.Spec), s.text)
	if looks > 1 {
		p.field("folds", fmt.Sprintf("%d looks since %s that came to the same verdicts; this is the newest", looks, since.In(m.loc).Format("15:04:05")), s.muted)
	}
	if a := ev.Actor; a != nil {
		who := a.Name
		var more []string
		if a.Role != "" {
			more = append(more, string(a.Role))
		}
		if a.Source != "" {
			more = append(more, "via "+a.Source)
		}
		if a.Fingerprint != "" {
			more = append(more, "key "+a.Fingerprint)
		}
		if len(more) > 0 {
			who += " (" + strings.Join(more, ", ") + ")"
		}
		p.field("by", who, s.accent)
	}
	if ev.Command != "" {
		p.field("command", string(ev.Command), s.text)
	}
	if ev.Weight != nil {
		p.field("weight", fmt.Sprintf("%d%%", *ev.Weight), s.text)
	}
	if ev.Hold != "" {
		p.field("hold", string(ev.Hold), s.inconclusive)
	}
	if ev.Reason != "" {
		p.field("reason", ev.Reason, s.text)
	}
	if ev.Error != "" {
		p.field("error", ev.Error, s.warning)
	}
	if ev.Attempt > 0 {
		p.field("attempt", fmt.Sprint(ev.Attempt), s.text)
	}
	if ev.RetryAt != nil {
		p.field("retry at", ev.RetryAt.In(m.loc).Format("15:04:05"), s.text)
	}
	if ev.Until != nil {
		p.field("until", ev.Until.In(m.loc).Format("15:04:05"), s.text)
	}
	for _, r := range ev.Checks {
		p.blank()
		u := m.unitNamed(r.Check)
		p.add(" " + s.bold.Render(r.Check) + "  " + s.text.Render(string(r.Verdict)))
		p.field(m.lastWords(), fmt.Sprintf("canary %s · baseline %s", formatIn(u, float64(r.LastCanary)), formatIn(u, float64(r.LastBaseline))), s.text)
		p.field("window", fmt.Sprintf("canary %s · baseline %s", formatIn(u, float64(r.Canary)), formatIn(u, float64(r.Baseline))), s.text)
		if r.SourceError != "" {
			p.field("source", r.SourceError, s.warning)
		}
		p.field("reason", r.Reason, s.text)
	}
}

// unitNamed is the unit of the check named name.
func (m *Model) unitNamed(name string) metrics.Unit {
	for i := range m.st.Checks {
		if m.st.Checks[i].Name == name {
			return m.checkUnit(i)
		}
	}
	return metrics.Unit{}
}
