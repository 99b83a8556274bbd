package tui

import (
	"github.com/charmbracelet/lipgloss"

	"github.com/perchhq/perch/themes"
)

// styles are a theme's colours as lipgloss styles for one renderer. They are built per view
// (an SSH session has its own renderer and colour profile), never shared.
type styles struct {
	theme themes.Theme

	text, muted, bold, accent, border lipgloss.Style
	canary, baseline                  lipgloss.Style
	pass, fail, inconclusive, warning lipgloss.Style

	title, titleFocus lipgloss.Style // pane titles
	key, keyOff       lipgloss.Style // status-bar keys that work now, and disabled ones
	badgeRunning      lipgloss.Style
	badgePaused       lipgloss.Style
	badgeHolding      lipgloss.Style
	badgeFail         lipgloss.Style
	badgePass         lipgloss.Style
	gaugeOn, gaugeOff lipgloss.Style
}

func color(c themes.Color) lipgloss.TerminalColor {
	if c == "" {
		return lipgloss.NoColor{}
	}
	return lipgloss.Color(string(c))
}

func newStyles(t themes.Theme, r *lipgloss.Renderer) styles {
	fg := func(c themes.Color) lipgloss.Style { return r.NewStyle().Foreground(color(c)) }
	// A badge is the phase word in reverse video: coloured where there is colour, still
	// distinct in mono.
	badge := func(c themes.Color) lipgloss.Style {
		return r.NewStyle().Bold(true).Reverse(true).Foreground(color(c))
	}
	return styles{
		theme:        t,
		text:         fg(t.Text),
		muted:        fg(t.Muted),
		bold:         fg(t.Text).Bold(true),
		accent:       fg(t.Accent),
		border:       fg(t.Border),
		canary:       fg(t.Canary),
		baseline:     fg(t.Baseline),
		pass:         fg(t.Pass).Bold(true),
		fail:         fg(t.Fail).Bold(true),
		inconclusive: fg(t.Inconclusive).Bold(true),
		warning:      fg(t.Warning),
		title:        fg(t.Text).Bold(true),
		titleFocus:   fg(t.Accent).Bold(true).Underline(true),
		key:          fg(t.Accent).Bold(true),
		keyOff:       fg(t.Muted).Faint(true),
		badgeRunning: badge(t.Accent),
		badgePaused:  badge(t.Warning),
		badgeHolding: badge(t.Inconclusive),
		badgeFail:    badge(t.Fail),
		badgePass:    badge(t.Pass),
		gaugeOn:      fg(t.Canary),
		gaugeOff:     fg(t.Border),
	}
}
