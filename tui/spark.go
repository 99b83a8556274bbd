package tui

import (
	"math"
	"strings"

	"github.com/perchhq/perch/engine"
)

// sparkRunes are the eight heights of a sparkline column, lowest first.
const sparkRunes = "▁▂▃▄▅▆▇█"

// sparkline draws one side of a check's history (newest last) in width cells, on the scale
// lo..hi shared by both sides so their heights compare. It is drawn by hand rather than with
// ntcharts: ntcharts renders every cell through a lipgloss style, which measured about 25
// times slower (see the package benchmarks), and a frame draws two dozen of these.
//
// One look is one column until there are more looks than cells; then each column is the mean
// of its share of the step. A column with no finite value is blank.
func sparkline(b *strings.Builder, hist []engine.Point, canary bool, width int, lo, hi float64) {
	n := len(hist)
	if n == 0 || width <= 0 {
		return
	}
	cols := min(n, width)
	span := hi - lo
	for c := range cols {
		from, to := c*n/cols, (c+1)*n/cols
		sum, count := 0.0, 0
		for _, p := range hist[from:to] {
			v := p.Baseline
			if canary {
				v = p.Canary
			}
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				sum += v
				count++
			}
		}
		if count == 0 {
			b.WriteByte(' ')
			continue
		}
		level := 3 // flat data sits mid-height
		if span > 0 {
			level = int(math.Round((sum/float64(count) - lo) / span * 7))
			level = max(0, min(level, 7))
		}
		b.WriteString(sparkRunes[level*3 : level*3+3])
	}
}

// sparkRange is the finite range of both sides of a history.
func sparkRange(hist []engine.Point) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range hist {
		for _, v := range [2]float64{p.Canary, p.Baseline} {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	return lo, hi
}
