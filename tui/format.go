package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// formatPercent shows a relative change: "+5.2%", "−12%", "+∞%".
func formatPercent(p float64) string {
	switch {
	case math.IsNaN(p):
		return "—"
	case math.IsInf(p, 1):
		return "+∞%"
	case math.IsInf(p, -1):
		return "−∞%"
	case math.Abs(p) >= 100:
		return fmt.Sprintf("%+.0f%%", p)
	}
	return fmt.Sprintf("%+.1f%%", p)
}

// formatDuration shows a span the way a clock would: "42s", "3m12s", "1h05m".
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// formatSpan shows a configured span without zero units: "15m", "1h30m", "45s".
func formatSpan(d time.Duration) string {
	if d%time.Minute == 0 && d >= time.Minute {
		h, m := int(d/time.Hour), int(d/time.Minute)%60
		switch {
		case h == 0:
			return fmt.Sprintf("%dm", m)
		case m == 0:
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	return formatDuration(d)
}

// until is the time left from now to t, never negative.
func until(now, t time.Time) time.Duration { return max(t.Sub(now), 0) }

// fit cuts s (which may hold escape codes) to width cells, ending in "…" when cut, and pads it
// with spaces to exactly width.
func fit(s string, width int) string {
	if width <= 0 {
		return ""
	}
	w := cells(s)
	if w > width {
		s = ansi.Truncate(s, width, "…")
		w = cells(s)
	}
	if w < width {
		s += strings.Repeat(" ", width-w)
	}
	return s
}

// cut cuts s to at most width cells without padding it.
func cut(s string, width int) string {
	if width <= 0 {
		return ""
	}
	if cells(s) > width {
		return ansi.Truncate(s, width, "…")
	}
	return s
}

// spread puts left and right on one line of width cells, cutting left first when they do not
// both fit.
func spread(left, right string, width int) string {
	lw, rw := cells(left), cells(right)
	if rw >= width {
		return cut(right, width)
	}
	if lw+rw+1 > width {
		return fit(left, width-rw-1) + " " + right
	}
	return left + strings.Repeat(" ", width-lw-rw) + right
}

// rule is a horizontal line of width cells with a title at its left and a note at its right;
// line styles the line itself.
func rule(title, note string, width int, line func(...string) string) string {
	extra := 3 // "─ " before the title and " " after it
	if cells(note) == 0 {
		note = "" // a styled empty note is escape codes only
	} else {
		extra += cells(note) + 3 // " " note " ─"
	}
	fill := width - cells(title) - extra
	if fill < 1 && note != "" { // no room for the note: the title matters more
		return rule(title, "", width, line)
	}
	if fill < 1 {
		return cut(line("─ ")+title, width)
	}
	s := line("─ ") + title + line(" "+strings.Repeat("─", fill))
	if note != "" {
		s += " " + note + line(" ─")
	}
	return s
}
