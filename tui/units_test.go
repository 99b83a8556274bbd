package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// TestNoRawFractions: where a check's unit is seconds or a rate in %, none of its values is
// written as the bare number the judge computed (0.2341 for 234.1 ms, 0.002929 for 0.29%) —
// not in the panes, the reasons, the event log, the header or the detail views, at any size,
// whatever the judge.
func TestNoRawFractions(t *testing.T) {
	builds := map[string]func(testing.TB) (engine.State, time.Time){
		"running": stateRunning, "holding": stateHolding, "rolled back": stateRolledBack, "promoted": statePromoted,
		"sequential": stateSequential,
	}
	for name, build := range builds {
		t.Run(name, func(t *testing.T) {
			st, now := build(t)
			raw := rawFractions(st)
			if len(raw) == 0 {
				t.Fatal("no values to look for")
			}
			h := newHarness(t, st, now, nil)
			look := func(what string) {
				t.Helper()
				screen := h.screen()
				for _, r := range raw {
					if i := indexNumber(screen, r); i >= 0 {
						t.Errorf("%s: the raw value %s is on screen: …%s…", what, r, screen[max(i-60, 0):min(i+30, len(screen))])
					}
				}
			}
			for _, size := range [][2]int{{80, 24}, {120, 40}, {200, 60}} {
				h.m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
				look(fmt.Sprintf("%dx%d", size[0], size[1]))
				for i := range st.Checks {
					h.m.focus, h.m.cursor[paneChecks] = paneChecks, i
					h.press("enter")
					for range 4 {
						look(fmt.Sprintf("%dx%d, detail of %s", size[0], size[1], st.Checks[i].Name))
						h.press("pgdown")
					}
					h.press("esc")
				}
			}
			for _, ev := range st.Log {
				line := ev.Describe(st.Spec)
				for _, r := range raw {
					if indexNumber(line, r) >= 0 {
						t.Errorf("the event line %q holds the raw value %s", line, r)
					}
				}
			}
		})
	}
}

// indexNumber is where the number num is written in s as a whole number (not as part of a
// longer one), or -1.
func indexNumber(s, num string) int {
	for from := 0; ; {
		i := strings.Index(s[from:], num)
		if i < 0 {
			return -1
		}
		i += from
		before, after := byte(' '), byte(' ')
		if i > 0 {
			before = s[i-1]
		}
		if end := i + len(num); end < len(s) {
			after = s[end]
		}
		if !isNumberByte(before) && !isNumberByte(after) {
			return i
		}
		from = i + 1
	}
}

func isNumberByte(c byte) bool { return c >= '0' && c <= '9' || c == '.' }

// rawFractions are the values of st's checks in seconds or rates, written as plain numbers
// the way they would be without their unit, where that differs from the unit's way.
func rawFractions(st engine.State) []string {
	seen := map[string]bool{}
	var out []string
	add := func(v float64, u metrics.Unit) {
		s := metrics.FormatValue(v)
		if !finite(v) || v == 0 || seen[s] || !strings.HasPrefix(s, "0.") || strings.HasPrefix(u.Value(v), s) {
			return
		}
		seen[s] = true
		out = append(out, s)
	}
	for i, c := range st.Checks {
		u := valueUnit(c.Criteria.Unit, c.Unit, st.Spec.Checks[i].IsCounts())
		if u.Name != "s" && !u.Percent() {
			continue
		}
		if c.Criteria.MaxIncrease != nil {
			add(*c.Criteria.MaxIncrease, u)
		}
		for _, ev := range st.Log {
			for _, r := range ev.Checks {
				if r.Check != c.Name {
					continue
				}
				for _, v := range []metrics.Number{r.LastCanary, r.LastBaseline, r.Canary, r.Baseline, r.Canary - r.Baseline} {
					add(float64(v), u)
				}
			}
		}
	}
	return out
}

// TestZeroSeriesTakeTheLimitsScale: a check whose canary and baseline are both at zero (no
// errors yet) is drawn against its limit, not on an axis whose top is a rounding error
// (1e-07%).
func TestZeroSeriesTakeTheLimitsScale(t *testing.T) {
	st, now := stateRunning(t)
	h := newHarness(t, st, now, nil)
	tolerance := 0.05
	c := engine.CheckState{
		Criteria: metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: &tolerance},
		Last:     &engine.CheckResult{Result: metrics.Result{Baseline: 0}},
	}
	for i := range 10 {
		c.History = append(c.History, engine.Point{Time: now.Add(time.Duration(i) * time.Second), Canary: 0, Baseline: 0, Weight: 5})
	}
	chart := strings.Join(h.m.drawCheckChart(&c, metrics.Unit{Name: "%", Rate: true}, 60, 8, ""), "\n")
	if strings.Contains(chart, "e-0") || !strings.Contains(chart, "5.25%") {
		t.Errorf("a chart of zeros with a 5pp limit should reach 5.25%%:\n%s", chart)
	}
}
