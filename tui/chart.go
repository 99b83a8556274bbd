package tui

import (
	"math"
	"strings"
)

// A chart is drawn in braille: each cell holds 2×4 dots, so a chart of w×h cells plots 2w
// points across and 4h levels up. It is drawn by hand, like the sparklines, for speed: a frame
// may hold a dozen charts.

// chartLayer is one line on a chart: a value per point (NaN is a gap), in its paint. Layers
// earlier in a chart's list are drawn over later ones where they share a cell.
type chartLayer struct {
	values []float64
	paint  paint
	dotted bool // every other dot, for a limit rather than data
}

// chartMark is a point where something changed (the canary's weight): a dotted vertical line.
type chartMark struct {
	point int
	paint paint
}

// brailleBits are the dot bits of a braille cell by column and row.
var brailleBits = [2][4]uint8{{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}}

// drawChart plots layers over n points on the scale lo..hi in width×height cells.
func drawChart(width, height, n int, lo, hi float64, layers []chartLayer, marks []chartMark) []string {
	if width <= 0 || height <= 0 {
		return nil
	}
	dotsX, dotsY := 2*width, 4*height
	cells := width * height
	bits := make([]uint8, cells*(len(layers)+1)) // a plane per layer, then the marks
	plane := func(l int) []uint8 { return bits[l*cells : (l+1)*cells] }
	set := func(p []uint8, x, y int) {
		p[(y/4)*width+x/2] |= brailleBits[x%2][y%4]
	}
	level := func(v float64) int {
		if hi <= lo {
			return dotsY / 2
		}
		y := int(math.Round((v - lo) / (hi - lo) * float64(dotsY-1)))
		return dotsY - 1 - max(0, min(y, dotsY-1))
	}
	for l, layer := range layers {
		p := plane(l)
		xs := resample(layer.values, dotsX)
		prev := -1
		for x, v := range xs {
			if math.IsNaN(v) {
				prev = -1
				continue
			}
			y := level(v)
			if layer.dotted {
				if x%2 == 0 {
					set(p, x, y)
				}
				continue
			}
			from, to := y, y
			if prev >= 0 { // join to the last point: a steep line stays connected
				from, to = min(prev, y), max(prev, y)
			}
			for yy := from; yy <= to; yy++ {
				set(p, x, yy)
			}
			prev = y
		}
	}
	markPlane := plane(len(layers))
	markPaint := make([]paint, width)
	for _, mk := range marks {
		x := pointX(mk.point, n, dotsX)
		if x < 0 {
			continue
		}
		for y := 0; y < dotsY; y += 2 {
			set(markPlane, x, y)
		}
		markPaint[x/2] = mk.paint
	}
	lines := make([]string, height)
	var b strings.Builder
	for row := range height {
		b.Reset()
		var open paint // the paint of the run being written
		var run strings.Builder
		flush := func() {
			if run.Len() > 0 {
				b.WriteString(open.Render(run.String()))
				run.Reset()
			}
		}
		for col := range width {
			i := row*width + col
			var all uint8
			top := paint{}
			found := false
			for l := range layers {
				if v := plane(l)[i]; v != 0 {
					all |= v
					if !found {
						top, found = layers[l].paint, true
					}
				}
			}
			if v := markPlane[i]; v != 0 {
				all |= v
				if !found {
					top, found = markPaint[col], true
				}
			}
			if top != open {
				flush()
				open = top
			}
			if all == 0 {
				run.WriteByte(' ')
				continue
			}
			run.WriteRune(rune(0x2800 + int(all)))
		}
		flush()
		lines[row] = b.String()
	}
	return lines
}

// resample spreads values over dots positions: the mean of each position's share when there
// are more values than positions, else each value at its position with straight lines
// between neighbours. A position with no finite value is NaN.
func resample(values []float64, dots int) []float64 {
	out := make([]float64, dots)
	n := len(values)
	for x := range out {
		out[x] = math.NaN()
	}
	switch {
	case n == 0 || dots == 0:
		return out
	case n == 1:
		out[0] = values[0]
		return out
	case n >= dots:
		for x := range out {
			sum, count := 0.0, 0
			for _, v := range values[x*n/dots : (x+1)*n/dots] {
				if finite(v) {
					sum += v
					count++
				}
			}
			if count > 0 {
				out[x] = sum / float64(count)
			}
		}
		return out
	}
	for x := range out {
		pos := float64(x) * float64(n-1) / float64(dots-1)
		i := int(pos)
		frac := pos - float64(i)
		a := values[i]
		switch {
		case frac == 0 || i+1 >= n:
			out[x] = a
		case finite(a) && finite(values[i+1]):
			out[x] = a + (values[i+1]-a)*frac
		}
		if !finite(out[x]) {
			out[x] = math.NaN()
		}
	}
	return out
}

// pointX is the dot column where point i of n is drawn (-1 if none).
func pointX(i, n, dots int) int {
	switch {
	case i < 0 || i >= n || dots == 0:
		return -1
	case n == 1:
		return 0
	case n >= dots:
		return i * dots / n
	}
	return int(math.Round(float64(i) * float64(dots-1) / float64(n-1)))
}

// chartRange is the finite range of the values of every layer, widened a little so that a
// line at the edge stays visible and a flat series sits mid-height.
func chartRange(layers []chartLayer) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, l := range layers {
		for _, v := range l.values {
			if finite(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if lo > hi {
		return 0, 0, false
	}
	pad := (hi - lo) * 0.05
	if pad == 0 {
		pad = math.Max(math.Abs(hi)*0.05, 1e-9)
	}
	if lo >= 0 && lo-pad < 0 {
		return 0, hi + pad, true // values that cannot go below zero keep zero as the floor
	}
	return lo - pad, hi + pad, true
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
