package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/themes"
)

// pane is a part of the screen that takes focus and scrolls.
type pane int

const (
	paneChecks pane = iota
	paneSteps
	paneEvents
	numPanes
)

func (p pane) String() string {
	return [...]string{"checks", "steps", "events"}[p]
}

// Model is the view of one rollout for one terminal. Build it with New; it implements
// tea.Model.
type Model struct {
	opts   Options
	keys   keyMap
	ctx    context.Context
	clock  func() time.Time
	loc    *time.Location
	render *lipgloss.Renderer

	// What is shown.
	st       engine.State
	have     bool     // a state has arrived
	ended    bool     // the snapshot channel closed: the engine (or the replay) has stopped
	rows     []logRow // the event log as shown
	logFix   logFixes // what of the log had to be made printable
	playback engine.PlaybackStatus
	now      time.Time

	sub    <-chan engine.State
	cancel func()

	width, height int
	themes        []themes.Theme
	themeIdx      int
	styles        styles

	focus    pane
	scroll   [numPanes]int // the first row shown
	cursor   [numPanes]int // the item enter opens: a check, a step, a row of the event log
	detail   *detail       // the detail view in the body's place, or nil
	help     bool
	helpAt   int // help scroll
	dialog   *dialog
	status   status
	choice   Choice
	quitting bool

	people []engine.Actor // who is connected, when served over SSH
	// inFleet says the view was opened from the fleet overview: q and esc go back to it.
	inFleet bool
	view    string // the last frame, reused until something changes
	dirty   bool
	charts  map[chartKey][]string // check charts as last drawn, reused until a look changes them
}

// status is the message line: what a command came to, or what a key did.
type status struct {
	text  string
	kind  statusKind
	until time.Time // cleared at the first clock tick after
}

type statusKind int

const (
	statusInfo statusKind = iota
	statusOK
	statusError
)

// New builds a view from opts. It subscribes to the snapshots when the program starts it.
func New(opts Options) *Model {
	m := &Model{opts: opts, keys: newKeyMap(), ctx: opts.Context, clock: opts.Clock, loc: opts.Location, render: opts.Renderer, dirty: true}
	if m.ctx == nil {
		m.ctx = context.Background()
	}
	if m.clock == nil {
		m.clock = time.Now
	}
	if m.loc == nil {
		m.loc = time.Local
	}
	if m.render == nil {
		m.render = lipgloss.DefaultRenderer()
	}
	m.themes, m.themeIdx = themeCycle(opts.Theme)
	m.styles = newStyles(m.themes[m.themeIdx], m.render)
	m.now = m.clock()
	return m
}

// themeCycle is what t cycles through: the built-in themes, with the chosen one first if it
// is a user theme; and where to start.
func themeCycle(start themes.Theme) ([]themes.Theme, int) {
	all := themes.Builtin()
	if start.Name == "" {
		return all, 0
	}
	for i, t := range all {
		if t == start {
			return all, i
		}
	}
	return append([]themes.Theme{start}, all...), 0
}

// Choice is what the operator chose when leaving a local run's view (ChoiceNone otherwise).
func (m *Model) Choice() Choice { return m.choice }

// Init subscribes to the snapshots and starts the clock.
func (m *Model) Init() tea.Cmd {
	m.readPresence()
	return tea.Batch(subscribe(m.opts.Snapshots), tick())
}

// readPresence takes the list of who is connected, for the header, with printable names (an
// SSH key's comment names its owner).
func (m *Model) readPresence() {
	if m.opts.Presence != nil {
		m.people, _ = mapChanged(m.opts.Presence(), func(a engine.Actor) (engine.Actor, bool) {
			p, changed := printableActor(&a)
			return *p, changed
		})
	}
}

// setNow moves the clocks: to the recording's time in a replay, to the clock's otherwise.
func (m *Model) setNow() {
	m.now = m.clock()
	if m.opts.Mode == ModeReplay && !m.playback.At.IsZero() {
		m.now = m.playback.At
	}
}

// quit leaves the view with choice, ending the subscription.
func (m *Model) quit(choice Choice) tea.Cmd {
	m.choice, m.quitting, m.dialog = choice, true, nil
	m.unsubscribe()
	return tea.Quit
}

// unsubscribe ends the subscription; the engine closes the channel, which ends the pending
// read.
func (m *Model) unsubscribe() {
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
}

// setStatus shows text in the message line for a while (errors longer). The engine's
// refusals quote names and reasons from outside, so the text is made printable.
func (m *Model) setStatus(kind statusKind, text string) {
	hold := 8 * time.Second
	if kind == statusError {
		hold = 20 * time.Second
	}
	m.status = status{text: printable.Line(text), kind: kind, until: m.clock().Add(hold)}
}

// clampScroll keeps every pane's scroll position inside its content, and its cursor on an
// item in view.
func (m *Model) clampScroll() {
	for p := range numPanes {
		m.scroll[p] = max(0, min(m.scroll[p], m.scrollMax(p)))
		per, page := m.perRow(p), max(m.pageSize(p), 1)
		first := m.scroll[p] * per
		m.cursor[p] = max(first, min(m.cursor[p], first+page*per-1, m.items(p)-1))
		m.cursor[p] = max(m.cursor[p], 0)
	}
}

// items is how many things pane p lists: checks, steps and the promotion, or log rows.
func (m *Model) items(p pane) int {
	switch p {
	case paneChecks:
		return len(m.st.Checks)
	case paneSteps:
		return len(m.st.Steps) + 1
	}
	return len(m.rows)
}

// perRow is how many items pane p shows side by side: checks may be in columns.
func (m *Model) perRow(p pane) int {
	if p == paneChecks {
		return m.grid().cols
	}
	return 1
}

// scrollMax is the largest scroll position of a pane: its last check, step or event at the
// bottom.
func (m *Model) scrollMax(p pane) int {
	if p == paneChecks {
		g := m.grid()
		return max(g.rows-g.shown, 0)
	}
	return max(m.items(p)-max(m.pageSize(p), 1), 0)
}
