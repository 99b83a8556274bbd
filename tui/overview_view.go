package tui

import (
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/x/ansi"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
)

// Fixed column widths of the overview's table.
const (
	badgeCells  = 14 // " ROLLING BACK "
	barCells    = 10
	clockCells  = 7  // "1h05m" and room
	peopleCells = 30 // at most: the column is as wide as its longest list
	leaderCells = 24
)

// View draws the overview, or the dashboard opened from it. It reuses the last frame when
// nothing has changed since.
func (o *Overview) View() string {
	if o.child != nil {
		return o.child.View()
	}
	if !o.dirty && o.view != "" {
		return o.view
	}
	o.view, o.dirty = o.draw(), false
	return o.view
}

func (o *Overview) draw() string {
	w, h := o.width, o.height
	if w <= 0 || h <= 0 {
		return ""
	}
	lines := make([]string, 0, h)
	lines = append(lines, o.headerLine(w), o.titles(w))
	bodyH := max(h-2-statusHeight, 0)
	var body []string
	switch {
	case o.help:
		body = o.helpLines(w, bodyH)
	case !o.have:
		body = []string{o.styles.muted.Render("waiting for the first list of rollouts…")}
	case len(o.shown) == 0 && o.filter != "":
		body = []string{o.styles.muted.Render(fmt.Sprintf("no rollout name contains %q (%s clears the filter)", o.filter, o.keys.Back.Help().Key))}
	case len(o.rows) == 0:
		body = []string{o.styles.muted.Render("no rollouts yet")}
	default:
		body = make([]string, 0, bodyH)
		for i := o.scroll; i < len(o.shown) && len(body) < bodyH; i++ {
			body = append(body, o.rowLine(i, w))
		}
	}
	for len(body) < bodyH {
		body = append(body, "")
	}
	if o.dialog != nil {
		body = overlay(body, o.dialog.render(&o.styles, w), w)
	}
	lines = append(lines, body[:bodyH]...)
	lines = append(lines, o.messageLine(w), o.keyHints(w))
	if len(lines) > h {
		lines = lines[:h]
	}
	for i := range lines {
		lines[i] = cut(lines[i], w)
	}
	return strings.Join(lines, "\n")
}

// headerLine counts the rollouts by what they need, and says what narrows the table.
func (o *Overview) headerLine(width int) string {
	s := &o.styles
	var count [groupDone + 1]int
	for i := range o.rows {
		count[o.rows[i].group]++
	}
	left := s.bold.Render("perch fleet") + s.muted.Render(fmt.Sprintf("  %d rollouts", len(o.rows)))
	if n := count[groupOperator]; n > 0 {
		left += s.muted.Render(" · ") + s.warning.Render(fmt.Sprintf("%d waiting for an operator", n))
	}
	for _, g := range []struct {
		group rowGroup
		what  string
	}{{groupRunning, "running"}, {groupWaiting, "waiting"}, {groupDone, "finished"}} {
		if n := count[g.group]; n > 0 {
			left += s.muted.Render(fmt.Sprintf(" · %d %s", n, g.what))
		}
	}
	var right []string
	if here := o.people[""]; len(here) > 0 {
		right = append(right, s.muted.Render(fmt.Sprintf("at the overview: %s", watchers(here))))
	}
	if o.filter != "" {
		right = append(right, s.accent.Render(fmt.Sprintf("filter %q: %d shown", o.filter, len(o.shown))))
	}
	if n := len(o.marked); n > 0 {
		right = append(right, s.accent.Render(fmt.Sprintf("%d marked", n)))
	}
	if o.ended {
		right = append(right, s.warning.Render("the fleet has ended"))
	}
	return spread(left, strings.Join(right, s.muted.Render(" · ")), width)
}

// titles names the table's columns.
func (o *Overview) titles(width int) string {
	cols := []string{"   " + pad("NAME", o.widths.name)}
	if o.widths.canary > 0 {
		cols = append(cols, pad("CANARY", o.widths.canary))
	}
	cols = append(cols, pad("PHASE", badgeCells), pad("STEP", o.widths.steps+barCells+6), pad("CHECKS", o.widths.checks), pad("IN STEP", clockCells))
	if o.opts.Presence != nil {
		cols = append(cols, pad("WATCHING", o.peopleW))
	}
	if o.widths.leader {
		cols = append(cols, pad("LEADER", leaderCells))
	}
	if o.widths.chain > 0 {
		cols = append(cols, pad("WAVE", o.widths.chain))
	}
	cols = append(cols, "NOTE")
	return cut(o.styles.muted.Render(strings.Join(cols, " ")), width)
}

// pad is s (plain text) padded with spaces to n cells.
func pad(s string, n int) string {
	if w := cells(s); w < n {
		return s + strings.Repeat(" ", n-w)
	}
	return s
}

// rowLine draws the i-th row shown.
func (o *Overview) rowLine(i, width int) string {
	s := &o.styles
	r := &o.rows[o.shown[i]]
	var b strings.Builder
	b.Grow(width * 2)
	gap := func() { b.WriteByte(' ') }
	if i == o.cursor {
		b.WriteString(s.accent.Render("▸"))
	} else {
		b.WriteByte(' ')
	}
	if o.marked[r.name] {
		b.WriteString(s.accent.Render("●"))
	} else {
		b.WriteByte(' ')
	}
	if r.group == groupOperator {
		b.WriteString(s.warning.Render("!"))
	} else {
		b.WriteByte(' ')
	}
	name := s.text
	if i == o.cursor {
		name = s.bold
	}
	b.WriteString(name.Render(pad(r.label, o.widths.name)))
	if o.widths.canary > 0 {
		gap()
		b.WriteString(s.accent.Render(pad(r.canary, o.widths.canary)))
	}
	gap()
	b.WriteString(o.badge(r))
	gap()
	if r.st != nil {
		b.WriteString(s.text.Render(fmt.Sprintf("%*s", o.widths.steps, r.steps)) + " ")
		b.WriteString(gauge(s, float64(max(r.weight, 0))/100, barCells))
		b.WriteString(s.bold.Render(fmt.Sprintf(" %4s", weightText(r.weight))))
	} else {
		b.WriteString(strings.Repeat(" ", o.widths.steps+barCells+6))
	}
	gap()
	b.WriteString(o.glyphs(r))
	gap()
	clock := ""
	if r.st != nil && !r.done && !r.since.IsZero() {
		clock = formatDuration(o.now.Sub(r.since))
	}
	b.WriteString(s.muted.Render(pad(clock, clockCells)))
	if o.opts.Presence != nil {
		gap()
		b.WriteString(s.muted.Render(pad(cut(watchers(o.people[r.name]), o.peopleW), o.peopleW)))
	}
	if o.widths.leader {
		gap()
		b.WriteString(s.muted.Render(pad(r.leader, leaderCells)))
	}
	if o.widths.chain > 0 {
		gap()
		b.WriteString(s.muted.Render(pad(r.chain, o.widths.chain)))
	}
	if r.note != "" {
		gap()
		used := cells(b.String())
		note := s.muted
		switch {
		case r.badge == "INVALID", r.badgeFor == engine.PhaseRollingBack, r.badgeFor == engine.PhaseRolledBack:
			note = s.fail
		case r.group == groupOperator:
			note = s.warning
		}
		b.WriteString(note.Render(cut(r.note, width-used)))
	}
	return b.String()
}

// badge is the row's phase in reverse video, padded to the column.
func (o *Overview) badge(r *fleetRow) string {
	s := &o.styles
	style := s.badgeRunning
	switch {
	case r.badge == "INVALID" || r.badge == "CANCELLED":
		style = s.badgeFail
	case r.badge == "STOPPED" || r.badge == "WAITING":
		style = s.badgePaused
	case r.badgeFor == engine.PhasePaused:
		style = s.badgePaused
	case r.badgeFor == engine.PhaseHolding:
		style = s.badgeHolding
	case r.badgeFor == engine.PhaseRollingBack, r.badgeFor == engine.PhaseRolledBack:
		style = s.badgeFail
	case r.badgeFor == engine.PhasePromoting, r.badgeFor == engine.PhasePromoted:
		style = s.badgePass
	}
	text := " " + r.badge + " "
	return style.Render(text) + strings.Repeat(" ", max(badgeCells-len(text), 0))
}

// glyphs are the checks' verdicts, one coloured symbol each, padded to the column.
func (o *Overview) glyphs(r *fleetRow) string {
	s := &o.styles
	var b strings.Builder
	n := 0
	for i, v := range r.verdicts {
		if i == maxGlyphs && len(r.verdicts) > maxGlyphs+1 {
			more := fmt.Sprintf("+%d", len(r.verdicts)-maxGlyphs)
			b.WriteString(s.muted.Render(more))
			n += len(more)
			break
		}
		switch v {
		case metrics.Pass:
			b.WriteString(s.pass.Render("✔"))
		case metrics.Fail:
			b.WriteString(s.fail.Render("✘"))
		case metrics.Inconclusive:
			b.WriteString(s.inconclusive.Render("?"))
		default:
			b.WriteString(s.muted.Render("·"))
		}
		n++
	}
	return b.String() + strings.Repeat(" ", max(o.widths.checks-n, 0))
}

// watchers names who watches a rollout: "alice, bob (viewer)".
func watchers(people []engine.Actor) string {
	names := make([]string, len(people))
	for i, p := range people {
		names[i] = p.Name
		if p.Role == engine.RoleViewer {
			names[i] += " (viewer)"
		}
	}
	return strings.Join(names, ", ")
}

// messageLine is the prompt being typed, else the last message, else who you are.
func (o *Overview) messageLine(width int) string {
	s := &o.styles
	switch {
	case o.prompt != nil:
		line := s.key.Render(string(o.prompt.kind)) + s.text.Render(string(o.prompt.text)) + s.accent.Render("█")
		if o.status.text != "" { // what tab found
			line += "   " + s.muted.Render(o.status.text)
		}
		return cut(line, width)
	case o.status.text != "":
		switch o.status.kind {
		case statusError:
			return cut(s.fail.Render(o.status.text), width)
		case statusOK:
			return cut(s.pass.Render(o.status.text), width)
		}
		return cut(s.text.Render(o.status.text), width)
	}
	msg := s.muted.Render(o.identity())
	// On a narrow screen the row's wave and note are cut, often wholly: the cursor's row says
	// them here in full.
	if r := o.cursorRow(); r != nil && (r.chain != "" || r.note != "") && o.rowCells(r) > width {
		about := r.label + ": " + strings.Join(nonEmpty(r.chain, r.note), " · ")
		msg = s.text.Render(about) + s.muted.Render(" · ") + msg
	}
	if o.opts.Note != "" {
		msg += s.muted.Render(" · ") + s.text.Render(printable.Line(o.opts.Note))
	}
	return cut(msg, width)
}

// rowCells is how many cells row r needs to show whole.
func (o *Overview) rowCells(r *fleetRow) int {
	w := &o.widths
	n := 3 + w.name + 1 + badgeCells + 1 + w.steps + barCells + 6 + 1 + w.checks + 1 + clockCells
	if w.canary > 0 {
		n += 1 + w.canary
	}
	if o.opts.Presence != nil {
		n += 1 + o.peopleW
	}
	if w.leader {
		n += 1 + leaderCells
	}
	if w.chain > 0 {
		n += 1 + w.chain
	}
	if r.note != "" {
		n += 1 + cells(r.note)
	}
	return n
}

// nonEmpty is the strings of list that are not empty.
func nonEmpty(list ...string) []string {
	out := list[:0:0]
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (o *Overview) identity() string {
	a, _ := printableActor(&o.opts.Actor)
	switch {
	case a.Name == "":
		return ""
	case a.Role == "":
		return "you are " + a.Name
	}
	return fmt.Sprintf("you are %s (%s)", a.Name, a.Role)
}

// keyHints are the keys that work now.
func (o *Overview) keyHints(width int) string {
	s, k := &o.styles, o.keys
	on := func(k, what string, prio int) hint { return hint{s.key.Render(k) + " " + s.text.Render(what), prio} }
	bound := func(b key.Binding, prio int) hint { return on(b.Help().Key, b.Help().Desc, prio) }
	var hints []hint
	switch {
	case o.prompt != nil && o.prompt.kind == '/':
		hints = append(hints, on("enter", "keep filter", 9), on(k.Back.Help().Key, "clear", 9))
		return fitHints(hints, width)
	case o.prompt != nil:
		hints = append(hints, on("tab", "complete", 9), on("enter", "open", 9), on(k.Back.Help().Key, "cancel", 9))
		return fitHints(hints, width)
	case o.dialog != nil:
		for _, b := range o.dialog.keys {
			what, _, _ := strings.Cut(b.Help().Desc, ":")
			hints = append(hints, on(b.Help().Key, what, 9))
		}
		return fitHints(hints, width)
	case o.help:
		return fitHints([]hint{on(k.Help.Help().Key, "close help", 9)}, width)
	}
	hints = append(hints, on(k.Open.Help().Key, "open", 9), bound(k.Filter, 8), bound(k.Jump, 7), bound(k.Mark, 7))
	switch err := o.refusal(); {
	case err == nil:
		hints = append(hints, on(k.Pause.Help().Key, "pause/resume", 8), on(k.Rollback.Help().Key, "roll back", 8))
	case errors.Is(err, engine.ErrForbidden):
		hints = append(hints, hint{s.keyOff.Render(k.Pause.Help().Key+" "+k.Rollback.Help().Key) + s.muted.Render(" off: you are a viewer"), 8})
	}
	if o.filter != "" || len(o.marked) > 0 {
		hints = append(hints, on(k.Back.Help().Key, "clear", 6))
	}
	hints = append(hints, on(pair(k.Down, k.Up, "/"), "move", 3), bound(k.Theme, 1), bound(k.Help, 9), bound(k.Quit, 9))
	return fitHints(hints, width)
}

// helpLines list the overview's keys.
func (o *Overview) helpLines(width, height int) []string {
	s, k := &o.styles, o.keys
	entries := []helpEntry{
		{key: strings.Join(pairs(k.Down, k.Up), " "), does: fmt.Sprintf("move; %s by a page; %s to the top/bottom", pair(k.PageDown, k.PageUp, "/"), strings.Join(pairs(k.Top, k.Bottom), " or "))},
		{key: k.Open.Help().Key, does: fmt.Sprintf("open the rollout's dashboard; %s or %s there comes back here", k.Back.Help().Key, k.Quit.Help().Key)},
		{key: k.Filter.Help().Key, does: "filter the rows by a part of the name; enter keeps the filter, esc clears it"},
		{key: k.Jump.Help().Key, does: "open a rollout by name; tab completes the name"},
		{key: k.Mark.Help().Key, does: "mark or unmark the row: p and r act on every marked row, or on the row under the cursor when none is"},
		{key: k.Pause.Help().Key, does: "pause the running rollouts selected (resume them when none runs); asks first, naming each one"},
		{key: k.Rollback.Help().Key, does: "roll back the rollouts selected: 0% to each canary; asks first, naming each one"},
		{key: k.Back.Help().Key, does: "clear the filter, then the marks"},
		{key: k.Theme.Help().Key, does: "next colour theme"},
		{key: k.Quit.Help().Key, does: o.quitWords()},
	}
	if err := o.refusal(); err != nil {
		for i := range entries {
			if entries[i].key == k.Pause.Help().Key || entries[i].key == k.Rollback.Help().Key {
				entries[i].off = "off: " + err.Error()
			}
		}
	}
	lines := []string{rule(s.titleFocus.Render("KEYS — the fleet overview"), s.muted.Render(k.Help.Help().Key+" closes"), width, s.border.Render)}
	for _, e := range entries {
		key, style := s.key.Render(fmt.Sprintf("  %-8s", e.key)), s.text
		does := e.does
		if e.off != "" {
			key, style, does = s.keyOff.Render(fmt.Sprintf("  %-8s", e.key)), s.muted, does+" — "+e.off
		}
		for i, l := range strings.Split(ansi.Wordwrap(does, max(width-11, 10), " "), "\n") {
			if i > 0 {
				key = strings.Repeat(" ", 10)
			}
			lines = append(lines, cut(key+" "+style.Render(l), width))
		}
	}
	return lines[:min(len(lines), height)]
}

func (o *Overview) quitWords() string {
	if o.opts.Mode == ModeRemote {
		return "disconnect; every rollout carries on"
	}
	return "leave the view: asks whether to keep every engine running headless or stop them; never changes traffic"
}
