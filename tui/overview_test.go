package tui

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/engine/spec"
)

// fakeFleet is a fleet of fixed statuses whose rollouts record the commands sent to them.
type fakeFleet struct {
	list  []fleet.Status
	mu    sync.Mutex
	sent  []sentCommand
	views map[string]*fakeRollout // each rollout's view, as a fleet serves one until it changes
}

type sentCommand struct {
	name string
	cmd  engine.Command
}

func (f *fakeFleet) Subscribe() (<-chan []fleet.Status, func()) {
	ch := make(chan []fleet.Status, 1)
	ch <- f.list
	return ch, func() {}
}

func (f *fakeFleet) Rollout(name string) (fleet.Rollout, bool) {
	for _, s := range f.list {
		if s.Name == name && s.State.Spec != nil {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.views == nil {
				f.views = map[string]*fakeRollout{}
			}
			if f.views[name] == nil {
				f.views[name] = &fakeRollout{f: f, name: name, st: s.State}
			}
			return f.views[name], true
		}
	}
	return nil, false
}

func (f *fakeFleet) commands() []sentCommand {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.sent)
	slices.SortFunc(out, func(a, b sentCommand) int { return strings.Compare(a.name, b.name) })
	return out
}

type fakeRollout struct {
	f    *fakeFleet
	name string
	st   engine.State
}

func (r *fakeRollout) Subscribe() (<-chan engine.State, func()) {
	ch := make(chan engine.State, 1)
	ch <- r.st
	return ch, func() {}
}

func (r *fakeRollout) Do(_ context.Context, cmd engine.Command) error {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	r.f.sent = append(r.f.sent, sentCommand{name: r.name, cmd: cmd})
	return nil
}

// overviewHarness drives an Overview by calling Update directly. The commands a key returns
// are run once; what a dashboard opened starts (its reads and its clock) is not run.
type overviewHarness struct {
	t     *testing.T
	o     *Overview
	fleet *fakeFleet
	quit  bool
}

func newOverviewHarness(t *testing.T, list []fleet.Status, now time.Time, edit func(*OverviewOptions)) *overviewHarness {
	t.Helper()
	h := &overviewHarness{t: t, fleet: &fakeFleet{list: list}}
	opts := OverviewOptions{
		Fleet:    h.fleet,
		Actor:    engine.Actor{Name: "alice", Role: engine.RoleOperator, Source: "tui"},
		Mode:     ModeRemote,
		Renderer: asciiRenderer(),
		Clock:    func() time.Time { return now },
		Location: time.UTC,
	}
	if edit != nil {
		edit(&opts)
	}
	h.o = NewOverview(opts)
	h.o.Update(tea.WindowSizeMsg{Width: 200, Height: 40})
	h.o.Update(fleetListMsg{list: list, ok: true})
	return h
}

func (h *overviewHarness) press(keys ...string) {
	h.t.Helper()
	for _, k := range keys {
		_, cmd := h.o.Update(keyMsg(k))
		if cmd == nil {
			continue
		}
		switch msg := cmd().(type) {
		case tea.QuitMsg:
			h.quit = true
		case nil, tea.BatchMsg, childMsg: // a dashboard's start: not run here
		default:
			h.o.Update(msg)
		}
	}
}

// typeText types s one key at a time.
func (h *overviewHarness) typeText(s string) {
	h.t.Helper()
	for _, r := range s {
		h.press(string(r))
	}
}

func (h *overviewHarness) screen() string { return ansi.Strip(h.o.View()) }

// order is the names of the rows shown, top to bottom.
func (h *overviewHarness) order() []string {
	var out []string
	for _, i := range h.o.shown {
		out = append(out, h.o.rows[i].name)
	}
	return out
}

// fleetStatuses is a fleet with a rollout in every situation the overview sorts by.
func fleetStatuses(t *testing.T) ([]fleet.Status, time.Time) {
	running, now := stateRunning(t)
	paused, _ := statePaused(t)
	holding, _ := stateHolding(t)
	promoted, _ := statePromoted(t)
	rolledBack, _ := stateRolledBack(t)
	withCanary := *running.Spec
	withCanary.Canary = &spec.Canary{Version: "v2.4.1", Image: "ghcr.io/acme/checkout:v2.4.1"}
	running.Spec = &withCanary
	return []fleet.Status{
		{Name: "checkout-us", State: running},
		{Name: "checkout-eu", State: paused, DependsOn: []string{"checkout-us"}},
		{Name: "search-api", State: promoted},
		{Name: "checkout-ap", Waiting: []string{"checkout-eu"}, DependsOn: []string{"checkout-eu"}},
		{Name: "payments", State: holding},
		{Name: "ledger", Invalid: "ledger.yaml: steps[2].setWeight: 150 is more than 100"},
		{Name: "billing", Cancelled: "checkout-us rolled back"},
		{Name: "cart", State: rolledBack},
		{Name: "inventory", State: running},
	}, now
}

// TestOverviewSortsWhatWaitsForAnOperatorFirst: paused and holding rollouts come first and are
// marked, then the running, then those waiting for others, then the finished; each row shows
// its phase, step, weight, checks and wave.
func TestOverviewSortsWhatWaitsForAnOperatorFirst(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, nil)
	want := []string{"checkout-eu", "payments", "checkout-us", "inventory", "checkout-ap", "billing", "cart", "ledger", "search-api"}
	if got := h.order(); !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	screen := h.screen()
	rows := strings.Split(screen, "\n")
	t.Logf("\n%s", screen)
	checks := []struct {
		row  int
		want []string
	}{
		{2, []string{"▸ !checkout-eu", "PAUSED", "4/6", "25%", "after checkout-us", "paused by alice: checking the payment dashboards"}},
		{3, []string{"  !payments", "HOLDING", "holding (inconclusive)"}},
		{4, []string{"   checkout-us", "v2.4.1", "RUNNING", "4/6"}},
		{6, []string{"checkout-ap", "WAITING", "after checkout-eu", "waits for checkout-eu to promote"}},
		{7, []string{"billing", "CANCELLED", "checkout-us rolled back"}},
		{8, []string{"cart", "ROLLED BACK", "error_rate failed"}},
		{9, []string{"ledger", "INVALID", "150 is more than 100"}},
		{10, []string{"search-api", "PROMOTED"}},
	}
	for _, c := range checks {
		for _, w := range c.want {
			if !strings.Contains(rows[c.row], w) {
				t.Errorf("row %d lacks %q: %q", c.row, w, rows[c.row])
			}
		}
	}
	if strings.Contains(rows[4], "!") {
		t.Errorf("a running rollout is marked as waiting for an operator: %q", rows[4])
	}
	if !strings.Contains(rows[0], "9 rollouts · 2 waiting for an operator · 2 running · 1 waiting · 4 finished") {
		t.Errorf("header does not count the rollouts: %q", rows[0])
	}
	if !strings.Contains(rows[2], "✔") {
		t.Errorf("no check verdict glyphs on a row with looks: %q", rows[2])
	}
}

// TestOverviewFilter: / narrows the rows to names containing what is typed, enter keeps the
// filter, esc clears it.
func TestOverviewFilter(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, nil)
	h.press("/")
	h.typeText("CHECK")
	if got, want := h.order(), []string{"checkout-eu", "checkout-us", "checkout-ap"}; !slices.Equal(got, want) {
		t.Fatalf("filtered %v, want %v", got, want)
	}
	h.press("enter")
	if h.o.prompt != nil || h.o.filter != "CHECK" {
		t.Fatalf("enter did not keep the filter: %v", h.o)
	}
	if s := h.screen(); !strings.Contains(s, `filter "CHECK": 3 shown`) || strings.Contains(s, "payments") {
		t.Errorf("screen does not show the filter:\n%s", s)
	}
	h.press("/", "x", "y", "z")
	if s := h.screen(); !strings.Contains(s, `no rollout name contains "CHECKxyz"`) {
		t.Errorf("an empty result is not explained:\n%s", s)
	}
	h.press("esc")
	if len(h.order()) != len(list) || h.o.filter != "" {
		t.Errorf("esc did not clear the filter: %v", h.o)
	}
	// A filter kept with enter is cleared by esc at the table.
	h.press("/", "p", "a", "y", "enter")
	if got := h.order(); !slices.Equal(got, []string{"payments"}) {
		t.Fatalf("filtered %v", got)
	}
	h.press("esc")
	if len(h.order()) != len(list) {
		t.Errorf("esc at the table did not clear the filter: %v", h.o)
	}
}

// TestOverviewBulkPause: space marks rows; p asks once, naming every rollout it pauses and
// every marked one it does not; y sends one pause to each, carrying the step on screen.
func TestOverviewBulkPause(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, nil)
	// Rows: checkout-eu (paused), payments, checkout-us, inventory, checkout-ap, …
	h.press("down", "down", " ", " ", " ") // checkout-us, inventory, checkout-ap
	if len(h.o.marked) != 3 || !strings.Contains(h.screen(), "3 marked") {
		t.Fatalf("marks %v", h.o.marked)
	}
	h.press("p")
	screen := h.screen()
	t.Logf("\n%s", screen)
	for _, want := range []string{"Pause 2 rollouts?", "Pause: checkout-us, inventory.", "Not affected: checkout-ap (waiting).", "y   pause 2", "n   cancel"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the dialog lacks %q", want)
		}
	}
	if len(h.fleet.commands()) != 0 {
		t.Fatal("sent before confirming")
	}
	h.press("n")
	if len(h.fleet.commands()) != 0 || h.o.dialog != nil {
		t.Fatal("n did not cancel")
	}
	h.press("p", "y")
	got := h.fleet.commands()
	if len(got) != 2 || got[0].name != "checkout-us" || got[1].name != "inventory" {
		t.Fatalf("sent %+v", got)
	}
	for _, c := range got {
		if c.cmd.Kind != engine.CommandPause || c.cmd.Actor.Name != "alice" || c.cmd.Step != 3 {
			t.Errorf("sent %+v", c)
		}
	}
	if s := h.screen(); !strings.Contains(s, "✔ pause accepted by 2 of 2") || len(h.o.marked) != 0 {
		t.Errorf("no report of the bulk command, or marks kept:\n%s", s)
	}
}

// TestOverviewBulkResumeAndRollback: p on rows none of which runs resumes the paused and
// holding ones; r names each rollout with its weight; without marks the cursor's row is the
// selection.
func TestOverviewBulkResumeAndRollback(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, nil)
	h.press(" ", " ") // checkout-eu (paused), payments (holding)
	h.press("p")
	if s := h.screen(); !strings.Contains(s, "Resume 2 rollouts?") || !strings.Contains(s, "Resume: checkout-eu, payments.") {
		t.Fatalf("p on paused rows does not offer to resume them:\n%s", s)
	}
	h.press("esc")
	h.press("r")
	s := h.screen()
	if !strings.Contains(s, "Roll back 2 rollouts?") || !strings.Contains(s, "Roll back: checkout-eu (25% to canary), payments (25% to") {
		t.Fatalf("the rollback dialog does not name each rollout and weight:\n%s", s)
	}
	h.press("y")
	got := h.fleet.commands()
	if len(got) != 2 || got[0].cmd.Kind != engine.CommandRollback || got[1].cmd.Kind != engine.CommandRollback {
		t.Fatalf("sent %+v", got)
	}
	// No marks: the row under the cursor.
	h.press("G", "r")
	if s := h.screen(); !strings.Contains(s, "nothing to roll back: search-api (promoted)") {
		t.Errorf("a rollback of a promoted rollout is not refused:\n%s", s)
	}
}

// TestOverviewViewerHasNoBulkKeys: a viewer's key bar shows the command keys off, and they
// send nothing and open no dialog.
func TestOverviewViewerHasNoBulkKeys(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, func(o *OverviewOptions) {
		o.Actor = engine.Actor{Name: "victor", Role: engine.RoleViewer, Source: "ssh"}
	})
	bar := h.screen()[strings.LastIndex(h.screen(), "\n")+1:]
	if strings.Contains(bar, "pause/resume") || strings.Contains(bar, "roll back") || !strings.Contains(bar, "p r off: you are a viewer") {
		t.Errorf("a viewer's key bar offers commands: %q", bar)
	}
	h.press(" ", "p", "r")
	if h.o.dialog != nil || len(h.fleet.commands()) != 0 {
		t.Fatalf("a viewer opened a dialog or sent %v", h.fleet.commands())
	}
	if s := h.screen(); !strings.Contains(s, "roll back refused: viewers cannot change traffic (victor is a viewer)") {
		t.Errorf("no refusal shown:\n%s", s)
	}
	// The dashboard opened from the overview is a viewer's too.
	h.press("enter")
	h.o.child.Update(snapshotMsg{st: list[1].State, ok: true})
	if s := h.screen(); !strings.Contains(s, "off: you are a viewer") {
		t.Errorf("the dashboard offers a viewer commands:\n%s", s)
	}
}

// TestOverviewOpenAndBack: enter opens the dashboard of the row under the cursor; its dialogs,
// help and detail view take esc first; then esc returns to the overview, as q does.
func TestOverviewOpenAndBack(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, nil)
	h.press("down", "down", "enter") // checkout-us
	if h.o.child == nil || h.o.childName != "checkout-us" {
		t.Fatalf("enter did not open checkout-us: %v", h.o)
	}
	h.o.child.Update(snapshotMsg{st: list[0].State, ok: true})
	if s := h.screen(); !strings.Contains(s, "CHECKS") || !strings.Contains(s, "q overview") {
		t.Fatalf("no dashboard on screen:\n%s", s)
	}
	h.press("enter") // the detail of the first check
	if h.o.child == nil || h.o.child.detail == nil {
		t.Fatal("enter in the dashboard did not open the detail view")
	}
	h.press("esc")
	if h.o.child == nil || h.o.child.detail != nil {
		t.Fatal("esc in the detail view did not close only the detail view")
	}
	h.press("r")
	if h.o.child == nil || h.o.child.dialog == nil {
		t.Fatal("r did not ask")
	}
	h.press("esc")
	if h.o.child == nil || h.o.child.dialog != nil {
		t.Fatal("esc in a dialog did not close only the dialog")
	}
	h.press("?", "esc")
	if h.o.child == nil || h.o.child.help {
		t.Fatal("esc in help did not close only the help")
	}
	h.press("esc")
	if h.o.child != nil {
		t.Fatal("esc did not return to the overview")
	}
	if s := h.screen(); !strings.Contains(s, "perch fleet") || h.o.cursorRow().name != "checkout-us" {
		t.Errorf("not back on the overview at checkout-us:\n%s", s)
	}
	h.press("enter", "q")
	if h.o.child != nil || h.quit {
		t.Fatal("q in the dashboard did not return to the overview")
	}
	// A message of the dashboard just closed changes nothing.
	h.o.Update(childMsg{gen: h.o.childGen - 1, msg: tickMsg{}})
	if h.o.child != nil {
		t.Fatal("a stale message reopened the dashboard")
	}
	// A rollout that never started has no dashboard, and says why.
	h.press("/", "l", "e", "d", "enter", "enter")
	if h.o.child != nil || !strings.Contains(h.screen(), "ledger has no dashboard: ledger.yaml: steps[2].setWeight") {
		t.Errorf("an invalid rollout's enter does not say why:\n%s", h.screen())
	}
	h.press("esc", "q")
	if !h.quit {
		t.Error("q on a remote overview does not disconnect")
	}
}

// TestOverviewJump: : completes a name with tab and opens it with enter; a name that matches
// nothing gets a suggestion.
func TestOverviewJump(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, nil)
	h.press(":")
	h.typeText("chec")
	h.press("tab")
	if got := string(h.o.prompt.text); got != "checkout-" {
		t.Fatalf("tab completed to %q", got)
	}
	if s := h.screen(); !strings.Contains(s, "3 match: checkout-eu, checkout-us, checkout-ap") {
		t.Errorf("the matches are not listed:\n%s", s)
	}
	h.typeText("e")
	h.press("tab", "enter")
	if h.o.childName != "checkout-eu" {
		t.Fatalf("jump opened %q", h.o.childName)
	}
	h.press("esc", ":")
	h.typeText("paymnets")
	h.press("enter")
	if h.o.child != nil || !strings.Contains(h.screen(), `no rollout named "paymnets"; did you mean payments?`) {
		t.Errorf("no suggestion:\n%s", h.screen())
	}
}

// TestOverviewUntrustedText: names, reasons and errors from files are drawn printable and
// within the terminal's width.
func TestOverviewUntrustedText(t *testing.T) {
	running, now := stateRunning(t)
	evil := "\x1b]0;pwned\x07evil\x1b[2J" + strings.Repeat("x", 5000)
	running.HoldReason = evil
	h := newOverviewHarness(t, []fleet.Status{
		{Name: evil, State: running},
		{Name: "ok", Invalid: "bad file: " + evil + "\r\nforged line"},
		{Name: "w", Waiting: []string{evil}, DependsOn: []string{evil}, Leader: evil},
	}, now, nil)
	raw := h.o.View()
	if strings.Contains(raw, "\x1b]") || strings.Contains(raw, "\x07") || strings.Contains(raw, "\x1b[2J") || strings.Contains(raw, "\r") {
		t.Errorf("control sequences from names reached the screen: %q", raw)
	}
	for i, l := range strings.Split(raw, "\n") {
		if w := ansi.StringWidth(l); w > 200 {
			t.Errorf("line %d is %d cells wide at 200 columns", i+1, w)
		}
	}
	if s := h.screen(); !strings.Contains(s, `\x1b]0;pwned\x07evil`) || !strings.Contains(s, "LEADER") {
		t.Errorf("the name is not shown escaped, or no leader column:\n%s", s)
	}
}

// TestOverviewShowsWhoWatches: with presence, each row names who watches that rollout.
func TestOverviewShowsWhoWatches(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, func(o *OverviewOptions) {
		o.Presence = func() map[string][]engine.Actor {
			return map[string][]engine.Actor{
				"payments": {{Name: "bob", Role: engine.RoleOperator}, {Name: "vic\x1b[31m", Role: engine.RoleViewer}},
				"":         {{Name: "carol", Role: engine.RoleOperator}},
			}
		}
	})
	h.o.Update(fleetTickMsg{})
	var row string
	for _, l := range strings.Split(h.screen(), "\n") {
		if strings.Contains(l, "payments") {
			row = l
		}
	}
	if !strings.Contains(row, `bob, vic\x1b[31m (viewer)`) {
		t.Errorf("who watches payments is not on its row: %q", row)
	}
	if s := h.screen(); !strings.Contains(strings.Split(s, "\n")[0], "at the overview: carol") {
		t.Errorf("who is at the overview is not in the header:\n%s", s)
	}
}

// TestOverviewLocalQuitAsks: q on a local overview asks whether to detach or stop every engine.
func TestOverviewLocalQuitAsks(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, func(o *OverviewOptions) { o.Mode = ModeLocal })
	h.press("q")
	if s := h.screen(); !strings.Contains(s, "Leave the view?") || !strings.Contains(s, "stop every engine") {
		t.Fatalf("q does not ask:\n%s", s)
	}
	h.press("s")
	if !h.quit || h.o.Choice() != ChoiceStop {
		t.Errorf("s did not stop: quit %v choice %v", h.quit, h.o.Choice())
	}
}

// bigFleet is n rollouts in every situation, for the render benchmark.
func bigFleet(t testing.TB, n int) ([]fleet.Status, time.Time) {
	running, now := stateRunning(t)
	paused, _ := statePaused(t)
	holding, _ := stateHolding(t)
	promoted, _ := statePromoted(t)
	states := []engine.State{running, running, running, paused, holding, promoted}
	list := make([]fleet.Status, n)
	for i := range list {
		list[i] = fleet.Status{Name: fmt.Sprintf("service-%03d-%s", i, []string{"us", "eu", "ap"}[i%3]), State: states[i%len(states)]}
		if i%3 > 0 {
			list[i].DependsOn = []string{fmt.Sprintf("service-%03d-us", i-i%3)}
		}
	}
	return list, now
}

// BenchmarkOverviewView draws the overview of 200 rollouts at 240×60 afresh each time.
func BenchmarkOverviewView(b *testing.B) {
	list, now := bigFleet(b, 200)
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor)
	o := NewOverview(OverviewOptions{Fleet: &fakeFleet{list: list}, Renderer: r, Clock: func() time.Time { return now },
		Presence: func() map[string][]engine.Actor {
			return map[string][]engine.Actor{"service-000-us": {{Name: "alice"}}}
		}})
	o.Update(tea.WindowSizeMsg{Width: 240, Height: 60})
	o.Update(fleetListMsg{list: list, ok: true})
	o.Update(fleetTickMsg{})
	b.ReportAllocs()
	for b.Loop() {
		o.dirty = true
		_ = o.View()
	}
}

// TestOverviewNarrowAndHelp: at 80×24 every line fits and the name and phase stay on each row;
// ? lists the overview's keys, a viewer's command keys off.
func TestOverviewNarrowAndHelp(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, func(o *OverviewOptions) {
		o.Actor = engine.Actor{Name: "victor", Role: engine.RoleViewer}
	})
	h.o.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	screen := h.screen()
	lines := strings.Split(screen, "\n")
	if len(lines) != 24 {
		t.Errorf("%d lines on a 24-line terminal", len(lines))
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > 80 {
			t.Errorf("line %d is %d cells wide at 80 columns: %q", i+1, w, l)
		}
	}
	if !strings.Contains(lines[2], "checkout-eu") || !strings.Contains(lines[2], "PAUSED") {
		t.Errorf("the first row lost its name or phase at 80 columns: %q", lines[2])
	}
	h.press("?")
	help := h.screen()
	for _, want := range []string{"KEYS — the fleet overview", "filter the rows", "open a rollout by name", "roll back the rollouts selected", "off: viewers cannot change traffic"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	h.press("?")
	if h.o.help {
		t.Error("? did not close the help")
	}
}

// TestOverviewInvalidNamesItsFileShortly: a refused file's error names the file by its base
// name, so what is wrong fits the note column.
func TestOverviewInvalidNamesItsFileShortly(t *testing.T) {
	r := newFleetRow(&fleet.Status{Name: "checkout-bad", File: "/srv/rollouts/bad.yaml",
		Invalid: "/srv/rollouts/bad.yaml:1:1: traffic: missing"})
	if r.note != "bad.yaml:1:1: traffic: missing" {
		t.Errorf("note %q", r.note)
	}
}

// TestOverviewNarrowSaysTheCursorRowInFull: at 80 columns a row's wave and note are cut, so the
// message line says the cursor row's in full; at 200 they fit and it does not repeat them.
func TestOverviewNarrowSaysTheCursorRowInFull(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, nil)
	message := func() string {
		lines := strings.Split(h.screen(), "\n")
		return lines[len(lines)-2]
	}
	if m := message(); strings.Contains(m, "checkout-eu:") {
		t.Errorf("at 200 columns the message line repeats the row: %q", m)
	}
	h.o.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	if m := message(); !strings.HasPrefix(m, "checkout-eu: after checkout-us · paused by alice: checking") || !strings.Contains(h.screen(), "▸ !checkout-eu") {
		t.Errorf("at 80 columns the message line is %q", m)
	}
	h.press("j")
	if m := message(); !strings.HasPrefix(m, "payments: holding (inconclusive)") {
		t.Errorf("after j the message line is %q", m)
	}
}

// TestOverviewWatchingColumnFitsItsNames: the WATCHING column is as wide as its longest list,
// not wider.
func TestOverviewWatchingColumnFitsItsNames(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, func(o *OverviewOptions) {
		o.Presence = func() map[string][]engine.Actor {
			return map[string][]engine.Actor{"checkout-eu": {{Name: "bob"}}, "": {{Name: "alice"}}}
		}
	})
	h.o.Init()
	h.o.Update(fleetTickMsg{})
	if title := strings.Split(h.screen(), "\n")[1]; !strings.Contains(title, "WATCHING WAVE") {
		t.Errorf("titles %q", title)
	}
	if row := strings.Split(h.screen(), "\n")[2]; !strings.Contains(row, " bob      after checkout-us") {
		t.Errorf("row %q", row)
	}
}

// TestOverviewReplicaRoles: with replicas sharing the fleet, the leader column says which
// rollouts this replica leads, and a dashboard opened on a rollout another replica leads says
// in its status bar that its commands go to that leader.
func TestOverviewReplicaRoles(t *testing.T) {
	list, now := fleetStatuses(t)
	for i := range list {
		list[i].Role, list[i].Leader = "leader", "r1"
		if list[i].Name == "checkout-us" {
			list[i].Role, list[i].Leader = "standby", "r2"
		}
	}
	h := newOverviewHarness(t, list, now, nil)
	s := h.screen()
	if !strings.Contains(s, "r1 (here)") || strings.Contains(s, "r2 (here)") {
		t.Errorf("the leader column does not tell this replica's leads (r1) from another's (r2):\n%s", s)
	}
	h.press("down", "down", "enter")
	if h.o.childName != "checkout-us" {
		t.Fatalf("enter opened %q, want checkout-us", h.o.childName)
	}
	h.o.child.Update(snapshotMsg{st: list[0].State, ok: true})
	if s := h.screen(); !strings.Contains(s, "standby replica: commands go to the leader r2") {
		t.Errorf("a standby's dashboard does not say where its commands go:\n%s", s)
	}
	h.press("esc", "up", "enter") // led here: no such note
	if h.o.child == nil || h.o.childName == "checkout-us" {
		t.Fatalf("enter opened %q, want a rollout led here", h.o.childName)
	}
	h.o.child.Update(snapshotMsg{st: list[0].State, ok: true})
	if s := h.screen(); strings.Contains(s, "standby replica") {
		t.Errorf("the leader's own dashboard says standby:\n%s", s)
	}
}

// TestOverviewReopensReplacedView: when the fleet serves an open rollout through another view
// (a standby that took over serves its engine instead of its follower, whose states stop), the
// dashboard is reopened on the new view, keeping its focus, and says why; an unchanged view
// is left as it is.
func TestOverviewReopensReplacedView(t *testing.T) {
	list, now := fleetStatuses(t)
	h := newOverviewHarness(t, list, now, nil)
	h.press("down", "down", "enter")
	if h.o.childName != "checkout-us" {
		t.Fatalf("enter opened %q, want checkout-us", h.o.childName)
	}
	h.press("tab")
	first, focus := h.o.child, h.o.child.focus
	h.o.Update(fleetListMsg{list: list, ok: true})
	if h.o.child != first {
		t.Fatal("the dashboard was reopened though its view did not change")
	}
	h.fleet.mu.Lock()
	delete(h.fleet.views, "checkout-us") // the next Rollout call serves a new view
	h.fleet.mu.Unlock()
	for i := range list {
		if list[i].Name == "checkout-us" {
			list[i].Role, list[i].Leader = "leader", "r2"
		}
	}
	h.o.Update(fleetListMsg{list: list, ok: true})
	if h.o.child == first || h.o.child == nil || h.o.childName != "checkout-us" {
		t.Fatalf("the dashboard was not reopened on the new view: %v", h.o)
	}
	if h.o.child.focus != focus {
		t.Errorf("focus %v after reopening, want %v", h.o.child.focus, focus)
	}
	h.o.child.Update(snapshotMsg{st: list[0].State, ok: true})
	if s := h.screen(); !strings.Contains(s, "now led by r2 (here)") {
		t.Errorf("the reopened dashboard does not say why:\n%s", s)
	}
}
