package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// axisRows is the least height of a chart that gets a time axis below it.
const axisRows = 6

// framedChart is a chart with what is drawn around it: the scale's top and bottom labelled
// on the left and, with rows to spare, an axis below with the first and last look's times,
// the marks' labels and a note.
type framedChart struct {
	layers    []chartLayer
	marks     []chartMark
	hist      []engine.Point // the looks plotted, for the times
	lo, hi    float64
	label     func(float64) string // writes the scale's values
	markLabel func(point int) string
	note      string // said on the axis, between the times
}

// checkChart draws check c over its step in width×rows, each line prefixed by indent: canary
// and baseline per look in their colours, the value the canary may reach against the window's
// baseline (dotted, in the warning colour), the looks where the canary's weight changed
// (dotted, accent), the scale's top and bottom on the left and, with room, the times below.
// A limit far off the values would squash them: it is named on the axis instead.
func (m *Model) checkChart(c *engine.CheckState, u metrics.Unit, width, rows int, indent string) []string {
	if rows <= 0 || width <= 0 {
		return nil
	}
	key := chartKey{name: c.Name, n: len(c.History), width: width, rows: rows, indent: indent, theme: m.themeIdx}
	if key.n > 0 {
		key.first, key.last = c.History[0].Time, c.History[key.n-1].Time
	}
	if c.Last != nil {
		key.baseline = float64(c.Last.Baseline)
	}
	if lines, ok := m.charts[key]; ok {
		return lines
	}
	lines := m.drawCheckChart(c, u, width, rows, indent)
	if len(m.charts) > 4*max(len(m.st.Checks), 4) { // charts of sizes or looks gone by
		clear(m.charts)
	}
	if m.charts == nil {
		m.charts = map[chartKey][]string{}
	}
	m.charts[key] = lines
	return lines
}

// chartKey is what a check's chart is drawn from, beyond what never changes for a check: a
// frame redraws every second and on every state, and the chart changes only with a look.
type chartKey struct {
	name        string
	n           int // looks in the history
	first, last time.Time
	baseline    float64 // the window's, where the limit is drawn
	width, rows int
	indent      string
	theme       int
}

// drawCheckChart draws checkChart's chart.
func (m *Model) drawCheckChart(c *engine.CheckState, u metrics.Unit, width, rows int, indent string) []string {
	s := &m.styles
	hist := c.History
	n := len(hist)
	canary, baseline := make([]float64, n), make([]float64, n)
	for i, p := range hist {
		canary[i], baseline[i] = p.Canary, p.Baseline
	}
	f := framedChart{hist: hist, label: func(v float64) string { return formatIn(u, v) },
		markLabel: func(i int) string { return fmt.Sprintf("→%d%%", hist[i].Weight) }}
	f.layers = []chartLayer{{values: canary, paint: s.canary}, {values: baseline, paint: s.baseline}}
	lo, hi, ok := chartRange(f.layers)
	if !ok {
		return []string{indent + s.muted.Render("no values yet in this step")}
	}
	if c.Last != nil {
		if limit := limitOf(c.Criteria, float64(c.Last.Baseline)); finite(limit) {
			// Series all at zero (no errors yet) have no scale of their own: the limit gives
			// them one, rather than an axis to 1e-7%.
			span := hi - lo
			switch {
			case !allZero(canary, baseline) && limit > hi+span:
				f.note = "limit " + formatIn(u, limit) + " above"
			case !allZero(canary, baseline) && limit < lo-span:
				f.note = "limit " + formatIn(u, limit) + " below"
			default:
				f.layers = append(f.layers, chartLayer{values: []float64{limit, limit}, paint: s.warning, dotted: true})
				lo, hi, _ = chartRange(f.layers)
			}
		}
	}
	f.lo, f.hi = lo, hi
	for i := 1; i < n; i++ {
		if hist[i].Weight != hist[i-1].Weight {
			f.marks = append(f.marks, chartMark{point: i, paint: s.accent})
		}
	}
	return m.frame(&f, width, rows, indent)
}

// allZero says whether every finite value of the series is zero.
func allZero(series ...[]float64) bool {
	for _, vs := range series {
		for _, v := range vs {
			if finite(v) && v != 0 {
				return false
			}
		}
	}
	return true
}

// frame draws f in width×rows, each line prefixed by indent.
func (m *Model) frame(f *framedChart, width, rows int, indent string) []string {
	s := &m.styles
	top, bottom := f.label(f.hi), f.label(f.lo)
	labelW := max(cells(top), cells(bottom))
	chartW := width - labelW - 1
	if chartW < 4 {
		labelW, chartW, top, bottom = 0, width, "", ""
	}
	axis := rows >= axisRows && len(f.hist) > 0
	plotRows := rows
	if axis {
		plotRows--
	}
	plot := drawChart(chartW, plotRows, len(f.hist), f.lo, f.hi, f.layers, f.marks)
	out := make([]string, 0, rows)
	for r, line := range plot {
		l := ""
		switch r {
		case 0:
			l = top
		case plotRows - 1:
			l = bottom
		}
		if labelW > 0 {
			l = s.muted.Render(fmt.Sprintf("%*s", labelW, l)) + s.border.Render("┤")
		}
		out = append(out, indent+l+line)
	}
	if axis {
		out = append(out, indent+strings.Repeat(" ", labelW+min(labelW, 1))+m.timeAxis(f, chartW))
	}
	return out
}

// timeAxis is the line under a chart: the first look's time at the left, the last one's at
// the right, the note in the middle and each mark's label where it is drawn.
func (m *Model) timeAxis(f *framedChart, width int) string {
	s := &m.styles
	hist := f.hist
	buf := []rune(strings.Repeat(" ", width))
	// put writes text at a column if it fits there with a space on either side of it.
	put := func(at int, text string) {
		r := []rune(text)
		if at < 0 || at+len(r) > len(buf) {
			return
		}
		for i := max(at-1, 0); i < min(at+len(r)+1, len(buf)); i++ {
			if buf[i] != ' ' {
				return
			}
		}
		copy(buf[at:], r)
	}
	first, last := hist[0].Time.In(m.loc).Format("15:04:05"), hist[len(hist)-1].Time.In(m.loc).Format("15:04:05")
	put(0, first)
	if len(hist) > 1 {
		put(width-len(last), last)
	}
	if f.markLabel != nil {
		for _, mk := range f.marks {
			put(pointX(mk.point, len(hist), 2*width)/2, f.markLabel(mk.point))
		}
	}
	if f.note != "" {
		put((width-cells(f.note))/2, f.note)
	}
	return s.muted.Render(string(buf))
}

// evidenceChart draws how a sequential judge's evidence grew over the step, each as a share
// of what it needs: harm (fail colour) and safety (pass colour) against the line at 100%
// where the judge decides.
func (m *Model) evidenceChart(c *engine.CheckState, e evidence, width, rows int, indent string) []string {
	s := &m.styles
	hist := c.History
	n := len(hist)
	harm, safe := make([]float64, n), make([]float64, n)
	hi := 1.0 // the threshold stays in view; evidence far past it is cut at three times it
	for i, p := range hist {
		harm[i], safe[i] = math.NaN(), math.NaN()
		if !math.IsNaN(float64(p.PValue)) {
			harm[i] = nats(float64(p.PValue)) / e.harmNeed
		}
		if e.hasSafe && !math.IsNaN(float64(p.PSafe)) {
			safe[i] = nats(float64(p.PSafe)) / e.safeNeed
		}
		for _, v := range [2]float64{harm[i], safe[i]} {
			if finite(v) {
				hi = max(hi, min(v, 3))
			}
		}
	}
	f := framedChart{hist: hist, lo: 0, hi: hi,
		layers: []chartLayer{
			{values: harm, paint: s.fail},
			{values: safe, paint: s.pass},
			{values: []float64{1, 1}, paint: s.muted, dotted: true},
		},
		label: func(v float64) string {
			if v == 0 {
				return "none"
			}
			return fmt.Sprintf("%.0f%%", v*100)
		},
	}
	return m.frame(&f, width, rows, indent)
}
