package tui

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/themes"
)

// Overview is the view of a fleet for one terminal: one row per rollout, those waiting for an
// operator first, from which the dashboard of one rollout opens (enter) and to which it
// returns (esc). Build it with NewOverview; it implements tea.Model.
type Overview struct {
	opts   OverviewOptions
	keys   keyMap
	ctx    context.Context
	clock  func() time.Time
	render *lipgloss.Renderer

	themes   []themes.Theme
	themeIdx int
	styles   styles

	rows   []fleetRow // every rollout, in the order shown
	shown  []int      // the rows that pass the filter, as indexes into rows
	widths fleetWidths
	have   bool // a list has arrived
	ended  bool // the fleet's channel closed
	now    time.Time

	sub    <-chan []fleet.Status
	cancel func()

	width, height int
	cursor        int // in shown
	scroll        int // the first of shown on screen
	marked        map[string]bool
	filter        string
	prompt        *prompt
	bulk          *bulkPlan // the plan the open confirm dialog asks about
	dialog        *dialog
	help          bool
	status        status
	people        map[string][]engine.Actor
	peopleW       int // the WATCHING column's cells

	child     *Model // the dashboard opened from the overview, or nil
	childName string
	childView fleet.Rollout // what the dashboard shows: reopened when the fleet serves another
	childGen  int           // bumped at each opening and closing: messages of an older one are dropped

	choice   Choice
	quitting bool
	view     string
	dirty    bool
}

// rowGroup orders the rows: what waits for an operator first, what has finished last.
type rowGroup int

const (
	groupOperator rowGroup = iota // paused or holding
	groupRunning
	groupWaiting // not started: waiting for the rollouts it depends on
	groupDone    // promoted, rolled back, stopped, cancelled or invalid
)

// maxNameCells bounds a rollout's name on screen; names come from files.
const maxNameCells = 32

// fleetRow is one rollout as the overview draws it, worked out once per list received so
// that drawing only lays out.
type fleetRow struct {
	name     string        // as the fleet knows it: the key for Rollout and the marks
	label    string        // the name, printable and bounded
	st       *engine.State // nil when the rollout never started
	group    rowGroup
	badge    string // the phase in capitals
	badgeFor engine.Phase
	canary   string
	steps    string // "2/5"
	weight   int    // -1: unknown
	verdicts []metrics.Verdict
	waiting  []bool // per check: no verdict yet in this step
	since    time.Time
	chain    string // "after checkout-eu"
	note     string // why it waits, holds, paused or ended
	leader   string
	standby  bool // replicas share the fleet and another one leads this rollout
	done     bool
}

// fleetWidths are the widths of the table's variable columns, from the rows.
type fleetWidths struct {
	name, canary, steps, checks, chain int
	leader                             bool
}

// prompt is the line being typed after / (filter) or : (jump).
type prompt struct {
	kind rune // '/' or ':'
	text []rune
}

// maxPrompt bounds what may be typed at a prompt.
const maxPrompt = 64

// NewOverview builds an overview from opts. It subscribes to the fleet when the program
// starts it.
func NewOverview(opts OverviewOptions) *Overview {
	o := &Overview{opts: opts, keys: newKeyMap(), ctx: opts.Context, clock: opts.Clock, render: opts.Renderer, dirty: true, marked: map[string]bool{}}
	if o.ctx == nil {
		o.ctx = context.Background()
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	if o.render == nil {
		o.render = lipgloss.DefaultRenderer()
	}
	o.themes, o.themeIdx = themeCycle(opts.Theme)
	o.styles = newStyles(o.themes[o.themeIdx], o.render)
	o.now = o.clock()
	return o
}

// Choice is what the operator chose when leaving a local overview (ChoiceNone otherwise).
func (o *Overview) Choice() Choice { return o.choice }

// Init subscribes to the fleet and starts the clock.
func (o *Overview) Init() tea.Cmd {
	o.readPresence()
	f := o.opts.Fleet
	return tea.Batch(func() tea.Msg {
		ch, cancel := f.Subscribe()
		return fleetSubscribedMsg{ch: ch, cancel: cancel}
	}, fleetTick())
}

// Messages of the overview itself (the dashboard's come wrapped in childMsg).
type (
	fleetSubscribedMsg struct {
		ch     <-chan []fleet.Status
		cancel func()
	}
	fleetListMsg struct {
		list []fleet.Status
		ok   bool
	}
	fleetFrameMsg struct{}
	fleetTickMsg  struct{}
	bulkDoneMsg   struct {
		kind   engine.CommandKind
		n      int
		failed []string // "name: why"
	}
)

func fleetTick() tea.Cmd {
	return tea.Every(time.Second, func(time.Time) tea.Msg { return fleetTickMsg{} })
}

// wait reads the newest list; Update arms it again a frame later.
func (o *Overview) wait() tea.Cmd {
	ch, cancel, ctx := o.sub, o.cancel, o.ctx
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		select {
		case list, ok := <-ch:
			return fleetListMsg{list: list, ok: ok}
		case <-ctx.Done():
			if cancel != nil {
				cancel()
			}
			return nil
		}
	}
}

func (o *Overview) unsubscribe() {
	if o.child != nil {
		o.child.unsubscribe()
	}
	if o.cancel != nil {
		o.cancel()
		o.cancel = nil
	}
}

// readPresence takes who watches what, with printable names.
func (o *Overview) readPresence() {
	if o.opts.Presence == nil {
		return
	}
	o.people = map[string][]engine.Actor{}
	o.peopleW = len("WATCHING")
	for name, list := range o.opts.Presence() {
		o.people[name], _ = mapChanged(list, func(a engine.Actor) (engine.Actor, bool) {
			p, changed := printableActor(&a)
			return *p, changed
		})
		if name != "" {
			o.peopleW = max(o.peopleW, min(cells(watchers(o.people[name])), peopleCells))
		}
	}
}

// setStatus shows text in the message line for a while (errors longer), made printable.
func (o *Overview) setStatus(kind statusKind, text string) {
	hold := 8 * time.Second
	if kind == statusError {
		hold = 20 * time.Second
	}
	o.status = status{text: printable.Line(text), kind: kind, until: o.clock().Add(hold)}
}

// take replaces the rows with list's, sorted, keeping the cursor on the rollout it was on.
func (o *Overview) take(list []fleet.Status) {
	var at string
	if r := o.cursorRow(); r != nil {
		at = r.name
	}
	rows := make([]fleetRow, len(list))
	for i := range list {
		rows[i] = newFleetRow(&list[i])
	}
	slices.SortStableFunc(rows, func(a, b fleetRow) int {
		if a.group != b.group {
			return int(a.group) - int(b.group)
		}
		return strings.Compare(a.name, b.name)
	})
	o.rows, o.have = rows, true
	names := make(map[string]bool, len(rows))
	for _, r := range rows {
		names[r.name] = true
	}
	for name := range o.marked {
		if !names[name] {
			delete(o.marked, name) // gone from the fleet
		}
	}
	o.widths = measure(rows)
	o.refilter(at)
}

// newFleetRow works out what a row shows from a rollout's status.
func newFleetRow(s *fleet.Status) fleetRow {
	r := fleetRow{name: s.Name, label: clean(s.Name, maxNameCells), weight: -1}
	if len(s.DependsOn) > 0 {
		r.chain = "after " + clean(strings.Join(s.DependsOn, ", "), 48)
	}
	r.leader = clean(s.Leader, leaderCells-len(" (here)"))
	switch s.Role {
	case replica.RoleLeader:
		r.leader += " (here)"
	case replica.RoleStandby:
		r.standby = true
	}
	st := &s.State
	switch {
	case s.Invalid != "":
		why := s.Invalid
		if s.File != "" {
			// The error names its file by path; its name is enough beside the rollout's, and
			// leaves the narrow note column room for what is wrong.
			why = strings.ReplaceAll(why, s.File, filepath.Base(s.File))
		}
		r.group, r.badge, r.note, r.done = groupDone, "INVALID", clean(why, 400), true
		return r
	case s.Cancelled != "":
		r.group, r.badge, r.note, r.done = groupDone, "CANCELLED", clean(s.Cancelled, 400), true
		return r
	case len(s.Waiting) > 0 || st.Spec == nil:
		r.group, r.badge = groupWaiting, "WAITING"
		if len(s.Waiting) > 0 {
			r.note = clean("waits for "+strings.Join(s.Waiting, ", ")+" to promote", 400)
		}
		return r
	}
	r.st = st
	r.badge, r.badgeFor = strings.ToUpper(st.Phase.Words()), st.Phase
	r.canary = clean(st.Spec.Canary.Short(), 24)
	r.steps = fmt.Sprintf("%d/%d", st.Step+1, len(st.Steps))
	r.weight = st.Weight
	r.since = st.StepStartedAt
	for _, c := range st.Checks {
		if c.Last == nil {
			r.verdicts = append(r.verdicts, "")
			continue
		}
		r.verdicts = append(r.verdicts, c.Last.Verdict)
	}
	switch ph := st.Phase; {
	case ph.Done():
		r.group, r.done = groupDone, true
		r.note = clean(st.EndReason, 400)
	case st.Stopped:
		r.group, r.badge, r.done = groupDone, "STOPPED", true
		r.note = clean(st.StopReason, 400)
	case ph == engine.PhasePaused:
		r.group = groupOperator
		r.note = "paused"
		by := ""
		if st.PausedBy != nil {
			by = " by " + st.PausedBy.Name
			r.note += by
		}
		// A reason that only says who paused is not repeated.
		if st.PauseReason != "" && (by == "" || !strings.HasSuffix(st.PauseReason, by)) {
			r.note += ": " + st.PauseReason
		}
		r.note = clean(r.note, 400)
	case ph == engine.PhaseHolding:
		r.group = groupOperator
		r.note = clean(fmt.Sprintf("holding (%s): %s", st.Hold, st.HoldReason), 400)
	default:
		r.group = groupRunning
		if st.RouterError != "" && st.WeightAttempts > 0 {
			r.note = clean("traffic provider: "+st.RouterError, 400)
		}
	}
	return r
}

// clean is text from a file or from outside as one printable line of at most n cells. It
// looks at no more of s than n cells could show, so a huge name costs nothing.
func clean(s string, n int) string {
	if len(s) > 4*n+8 {
		s = s[:4*n+8]
	}
	return cut(printable.Line(s), n)
}

// measure is the widths the columns need for rows.
func measure(rows []fleetRow) fleetWidths {
	w := fleetWidths{name: 4, steps: 4, checks: 6}
	for i := range rows {
		r := &rows[i]
		w.name = max(w.name, cells(r.label))
		w.canary = max(w.canary, cells(r.canary))
		w.steps = max(w.steps, len(r.steps))
		w.checks = max(w.checks, min(len(r.verdicts), maxGlyphs+3))
		w.chain = max(w.chain, cells(r.chain))
		w.leader = w.leader || r.leader != ""
	}
	return w
}

// maxGlyphs is how many check verdicts a row shows before "+n".
const maxGlyphs = 12

// refilter works out the rows shown under the filter, keeping the cursor on the rollout named
// at when it is still shown.
func (o *Overview) refilter(at string) {
	o.shown = o.shown[:0]
	f := strings.ToLower(o.filter)
	for i := range o.rows {
		if f == "" || strings.Contains(strings.ToLower(o.rows[i].name), f) {
			o.shown = append(o.shown, i)
		}
	}
	if at != "" {
		for i, ri := range o.shown {
			if o.rows[ri].name == at {
				o.cursor = i
				break
			}
		}
	}
	o.clamp()
}

// cursorRow is the row under the cursor, or nil when none is shown.
func (o *Overview) cursorRow() *fleetRow {
	if o.cursor < 0 || o.cursor >= len(o.shown) {
		return nil
	}
	return &o.rows[o.shown[o.cursor]]
}

// tableHeight is the rows of the table on screen: the screen but for the header, the column
// titles and the status bar.
func (o *Overview) tableHeight() int { return max(o.height-2-statusHeight, 1) }

// clamp keeps the cursor on a shown row and in view.
func (o *Overview) clamp() {
	o.cursor = max(0, min(o.cursor, len(o.shown)-1))
	h := o.tableHeight()
	o.scroll = max(0, min(o.scroll, o.cursor, max(len(o.shown)-h, 0)))
	if o.cursor >= o.scroll+h {
		o.scroll = o.cursor - h + 1
	}
}

// String describes the overview for test failures.
func (o *Overview) String() string {
	names := make([]string, len(o.shown))
	for i, ri := range o.shown {
		names[i] = o.rows[ri].name
	}
	return fmt.Sprintf("tui.Overview{rows %v, cursor %d, filter %q, open %q}", names, o.cursor, o.filter, o.childName)
}
