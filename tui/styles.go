package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/perchhq/perch/themes"
)

// styles are a theme's colours as paints for one renderer. They are built per view (an SSH
// session has its own renderer and colour profile), never shared.
type styles struct {
	theme themes.Theme

	text, muted, bold, accent, border paint
	canary, baseline                  paint
	pass, fail, inconclusive, warning paint

	title, titleFocus paint // pane titles
	key, keyOff       paint // status-bar keys that work now, and disabled ones
	badgeRunning      paint
	badgePaused       paint
	badgeHolding      paint
	badgeFail         paint
	badgePass         paint
	gaugeOn, gaugeOff paint
}

// paint is a lipgloss style reduced to the escape codes it puts around one line of text. The
// view styles hundreds of short single-line strings a frame; lipgloss measures and lays out
// each one, which cost more than half of a frame (BenchmarkView), while this only joins.
type paint struct{ pre, post string }

// newPaint takes style's codes as the renderer writes them (none in an ASCII profile).
func newPaint(style lipgloss.Style) paint {
	const probe = "\x00"
	out := style.Render(probe)
	i := strings.Index(out, probe)
	if i < 0 {
		return paint{}
	}
	return paint{pre: out[:i], post: out[i+len(probe):]}
}

// Render paints text, which must be one line (no newlines).
func (p paint) Render(text ...string) string {
	s := strings.Join(text, "")
	if s == "" || p.pre == "" {
		return s
	}
	return p.pre + s + p.post
}

func color(c themes.Color) lipgloss.TerminalColor {
	if c == "" {
		return lipgloss.NoColor{}
	}
	return lipgloss.Color(string(c))
}

func newStyles(t themes.Theme, r *lipgloss.Renderer) styles {
	fgStyle := func(c themes.Color) lipgloss.Style { return r.NewStyle().Foreground(color(c)) }
	fg := func(c themes.Color) paint { return newPaint(fgStyle(c)) }
	// A badge is the phase word in reverse video: coloured where there is colour, still
	// distinct in mono.
	badge := func(c themes.Color) paint {
		return newPaint(r.NewStyle().Bold(true).Reverse(true).Foreground(color(c)))
	}
	return styles{
		theme:        t,
		text:         fg(t.Text),
		muted:        fg(t.Muted),
		bold:         newPaint(fgStyle(t.Text).Bold(true)),
		accent:       fg(t.Accent),
		border:       fg(t.Border),
		canary:       fg(t.Canary),
		baseline:     fg(t.Baseline),
		pass:         newPaint(fgStyle(t.Pass).Bold(true)),
		fail:         newPaint(fgStyle(t.Fail).Bold(true)),
		inconclusive: newPaint(fgStyle(t.Inconclusive).Bold(true)),
		warning:      fg(t.Warning),
		title:        newPaint(fgStyle(t.Text).Bold(true)),
		titleFocus:   newPaint(fgStyle(t.Accent).Bold(true).Underline(true)),
		key:          newPaint(fgStyle(t.Accent).Bold(true)),
		keyOff:       newPaint(fgStyle(t.Muted).Faint(true)),
		badgeRunning: badge(t.Accent),
		badgePaused:  badge(t.Warning),
		badgeHolding: badge(t.Inconclusive),
		badgeFail:    badge(t.Fail),
		badgePass:    badge(t.Pass),
		gaugeOn:      fg(t.Canary),
		gaugeOff:     fg(t.Border),
	}
}
