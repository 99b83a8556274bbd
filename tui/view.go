package tui

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/x/ansi"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/internal/printable"
)

// wideWidth is the least width for side-by-side panes; narrower terminals stack them.
const wideWidth = 100

// statusHeight is the lines of the status bar: a message line and the keys.
const statusHeight = 2

// layout is where the panes go for the terminal's size and the focused pane.
type layout struct {
	wide                     bool
	compact                  bool // checks take three lines instead of four
	bodyH                    int
	leftW, rightW            int
	checksH, stepsH, eventsH int
}

func (m *Model) layout() layout {
	l := layout{bodyH: max(m.height-headerHeight-statusHeight, 0)}
	steps := len(m.st.Steps) + 2 // title, steps, promotion
	if m.width >= wideWidth {
		l.wide, l.compact = true, l.bodyH < 20
		l.leftW = max(m.width*11/20, 60)
		l.rightW = m.width - l.leftW - 1
		l.checksH = l.bodyH
		l.stepsH = min(steps, max(l.bodyH/2, 3))
		l.eventsH = l.bodyH - l.stepsH
		return l
	}
	l.compact, l.leftW = true, m.width
	l.stepsH = 1
	if m.focus == paneSteps {
		l.stepsH = min(steps, max(l.bodyH/2, 1))
	}
	rest := max(l.bodyH-l.stepsH, 0)
	block := checkHeight(true)
	checksNeed, eventsNeed := 1+max(len(m.st.Checks), 1)*block, 1+max(len(m.rows), 1)
	// The focused pane gets what it needs, leaving the other a glimpse; the checks pane shows
	// whole checks only, and what it does not use goes to the event log.
	if m.focus == paneEvents {
		l.eventsH = min(eventsNeed, max(rest-min(checksNeed, 1+block), 0))
		l.checksH = rest - l.eventsH
	} else {
		l.checksH = min(checksNeed, max(rest-min(eventsNeed, 4), 0))
		l.eventsH = rest - l.checksH
	}
	if fits := 1 + max((l.checksH-1)/block, 0)*block; l.checksH > fits {
		l.eventsH += l.checksH - fits
		l.checksH = fits
	}
	return l
}

// pageSize is how far pgdn/pgup move the pane p.
func (m *Model) pageSize(p pane) int {
	l := m.layout()
	switch p {
	case paneChecks:
		return (l.checksH - 1) / checkHeight(l.compact)
	case paneSteps:
		return l.stepsH - 1
	}
	return l.eventsH - 1
}

// View draws the screen. It reuses the last frame when nothing has changed since.
func (m *Model) View() string {
	if !m.dirty && m.view != "" {
		return m.view
	}
	m.view, m.dirty = m.draw(), false
	return m.view
}

func (m *Model) draw() string {
	w, h := m.width, m.height
	if w <= 0 || h <= 0 {
		return ""
	}
	lines := make([]string, 0, h)
	lines = append(lines, m.header(w)...)
	l := m.layout()
	var body []string
	switch {
	case m.help:
		body = m.helpPane(w, l.bodyH)
	case !m.have:
		body = nil
	case l.wide:
		body = m.wideBody(l)
	default:
		body = m.narrowBody(l)
	}
	for len(body) < l.bodyH {
		body = append(body, "")
	}
	if m.dialog != nil {
		body = overlay(body, m.dialog.render(&m.styles, w), w)
	}
	lines = append(lines, body[:l.bodyH]...)
	lines = append(lines, m.statusBar(w)...)
	if len(lines) > h {
		lines = lines[:h]
	}
	for i := range lines {
		lines[i] = cut(lines[i], w)
	}
	return strings.Join(lines, "\n")
}

func (m *Model) wideBody(l layout) []string {
	left := m.checksPane(l.leftW, l.checksH, l.compact)
	right := append(m.stepsPane(l.rightW, l.stepsH), m.eventsPane(l.rightW, l.eventsH)...)
	divider := m.styles.border.Render("│")
	out := make([]string, l.bodyH)
	for i := range out {
		var a, b string
		if i < len(left) {
			a = left[i]
		}
		if i < len(right) {
			b = right[i]
		}
		out[i] = fit(a, l.leftW) + divider + b
	}
	return out
}

func (m *Model) narrowBody(l layout) []string {
	body := m.checksPane(l.leftW, l.checksH, true)
	for len(body) < l.checksH {
		body = append(body, "")
	}
	if l.stepsH == 1 {
		body = append(body, m.stepChips(l.leftW))
	} else {
		body = append(body, m.stepsPane(l.leftW, l.stepsH)...)
	}
	return append(body, m.eventsPane(l.leftW, l.eventsH)...)
}

// overlay centres box over the lines of bg, which is width cells wide.
func overlay(bg, box []string, width int) []string {
	if len(box) == 0 {
		return bg
	}
	boxW := cells(box[0])
	x := max((width-boxW)/2, 0)
	y := max((len(bg)-len(box))/2, 0)
	out := slices.Clone(bg)
	for i, row := range box {
		if y+i >= len(out) {
			break
		}
		under := fit(out[y+i], width)
		left := ansi.Truncate(under, x, "")
		if strings.ContainsRune(left, '\x1b') {
			left += ansi.ResetStyle // a style cut in the middle must not bleed into the box
		}
		out[y+i] = left + row + ansi.TruncateLeft(under, x+boxW, "")
	}
	return out
}

// statusBar is the message line and the keys that work now.
func (m *Model) statusBar(width int) []string {
	s := &m.styles
	msg := ""
	switch m.status.kind {
	case statusError:
		msg = s.fail.Render(m.status.text)
	case statusOK:
		msg = s.pass.Render(m.status.text)
	default:
		msg = s.text.Render(m.status.text)
	}
	switch {
	case m.status.text != "":
	case m.ended && m.opts.Mode != ModeReplay:
		msg = s.warning.Render(fmt.Sprintf("the engine has finished; nothing more will change (%s to leave)", m.keys.Quit.Help().Key))
	default:
		msg = s.muted.Render(m.identity())
		if m.opts.Note != "" {
			msg += s.muted.Render(" · ") + s.text.Render(printable.Line(m.opts.Note))
		}
	}
	line := cut(msg, width)
	if fresh := m.freshness(); fresh != "" && m.status.text == "" {
		line = spread(line, s.muted.Render(fresh), width)
	}
	return []string{line, m.keyHints(width)}
}

// identity is who this view acts as.
func (m *Model) identity() string {
	a, _ := printableActor(&m.opts.Actor)
	switch {
	case m.opts.Mode == ModeReplay:
		return "replay: commands are off"
	case a.Name == "":
		return ""
	case a.Role == "":
		return "you are " + a.Name
	}
	return fmt.Sprintf("you are %s (%s)", a.Name, a.Role)
}

// freshness is how long ago the engine last recorded anything, so a stalled engine shows.
func (m *Model) freshness() string {
	if !m.have || m.ended || m.opts.Mode == ModeReplay || m.st.LastEventAt.IsZero() {
		return ""
	}
	return "last event " + formatDuration(m.now.Sub(m.st.LastEventAt)) + " ago"
}

// hint is one key in the status bar; the lowest prio goes first when space is short.
type hint struct {
	text string
	prio int
}

func (m *Model) keyHints(width int) string {
	s, k := &m.styles, m.keys
	on := func(k, what string, prio int) hint { return hint{s.key.Render(k) + " " + s.text.Render(what), prio} }
	// bound shows a binding with its own help text.
	bound := func(b key.Binding, prio int) hint { return on(b.Help().Key, b.Help().Desc, prio) }
	scroll := pair(k.Down, k.Up, "/")
	var hints []hint
	switch {
	case m.dialog != nil:
		for _, b := range m.dialog.keys {
			what, _, _ := strings.Cut(b.Help().Desc, ":")
			hints = append(hints, on(b.Help().Key, what, 9))
		}
		return fitHints(hints, width)
	case m.help:
		hints = append(hints, on(k.Help.Help().Key, "close help", 9), on(scroll, "scroll", 5), bound(k.Theme, 3))
	case m.opts.Mode == ModeReplay:
		hints = append(hints, bound(k.PlayPause, 8), on(pair(k.Faster, k.Slower, "/"), "speed", 7),
			on(pair(k.PrevStep, k.NextStep, "/"), "step", 7), on(pair(k.ToStart, k.ToEnd, "/"), "start/end", 6))
	default:
		var off []string // shown disabled: keys this actor may never use
		for _, c := range m.commands() {
			switch {
			case c.err == nil:
				hints = append(hints, on(c.key.Help().Key, c.label, 8))
			case errors.Is(c.err, engine.ErrForbidden):
				off = append(off, c.key.Help().Key)
			}
		}
		if len(off) > 0 {
			hints = append(hints, hint{s.keyOff.Render(strings.Join(off, " ")) + s.muted.Render(" off: you are a viewer"), 8})
		}
	}
	if !m.help {
		hints = append(hints, bound(k.NextFocus, 2), on(scroll, "scroll", 3), bound(k.Theme, 1), bound(k.Help, 9))
	}
	hints = append(hints, bound(k.Quit, 9))
	return fitHints(hints, width)
}

// fitHints keeps the most important hints that fit in width, in their original order.
func fitHints(hints []hint, width int) string {
	const gap = 2
	keep := make([]bool, len(hints))
	order := make([]int, len(hints))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return hints[b].prio - hints[a].prio })
	used := 0
	for _, i := range order {
		w := cells(hints[i].text)
		if used > 0 {
			w += gap
		}
		if used+w <= width {
			keep[i], used = true, used+w
		}
	}
	var b strings.Builder
	for i, h := range hints {
		if !keep[i] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(strings.Repeat(" ", gap))
		}
		b.WriteString(h.text)
	}
	return b.String()
}

// String describes the model for test failures.
func (m *Model) String() string {
	return fmt.Sprintf("tui.Model{phase %s, step %d, focus %s, help %v, dialog %v}", m.st.Phase, m.st.Step, m.focus, m.help, m.dialog != nil)
}
