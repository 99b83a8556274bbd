package tui

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/perchhq/perch/metrics"
)

// TestWidthAgreesWithAnsi: cells must give what ansi.StringWidth gives, for the view's own
// strings and for anything a check name, reason or actor may hold.
func TestWidthAgreesWithAnsi(t *testing.T) {
	cases := []string{
		"", "plain ascii", "\x1b[1;38;2;95;175;255mp\x1b[0m pause", "\x1b[m", "\x1b[38;5;59m│\x1b[0m",
		"─ ▸ CHECKS 12 ✔ 10 ✘ 1 ? 1 ─── 1–4 of 12 ↓ ─", "▁▂▃▄▅▆▇█░", "Δ +3.3% · tolerance −20% · ‖ ★ ⚠ ↷ → … —",
		"┆ ╭─╮ │ ╰─╯", "日本語", "emoji 🚀 here", "e\u0301", "zero\u200bwidth", "soft\u00adhyphen", "tab\there",
		"\x1b]8;;http://x\x07link\x1b]8;;\x07", "\x1b[", "\x1b[12", "ÀÉÎõü ΑΒΓ", "⌚⏳", "✅ ❌ ✔ ✘", "◽◾▶◀", "⠀⠁⣿⡇⢸ braille",
	}
	symbols := []rune("abc ─│▸✔✘?↓▁█░Δ·−‖★⚠↷→…—–×∞日🚀é\u0301\u200b✅◽⏸⠀⣿⡇")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var b strings.Builder
		for range rng.IntN(20) {
			if rng.IntN(5) == 0 {
				b.WriteString("\x1b[1;38;5;75m")
			}
			b.WriteRune(symbols[rng.IntN(len(symbols))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		if got, want := cells(s), ansi.StringWidth(s); got != want {
			t.Errorf("cells(%q) = %d, ansi.StringWidth = %d", s, got, want)
		}
	}
}

func TestRatesWithPercentUnit(t *testing.T) {
	inc := 0.02
	cr := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: &inc}
	if got := valueUnit("%", "%", true).Value(0.015); got != "1.5%" {
		t.Errorf("a 0.015 error ratio with unit %% shows as %q, want 1.5%%", got)
	}
	if got := valueUnit("%", "%", true).Tolerance(cr); got != "+2pp" {
		t.Errorf("maxIncrease 0.02 on an error ratio shows as %q, want +2pp", got)
	}
}
