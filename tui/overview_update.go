package tui

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/internal/printable"
)

// Update handles one message: keys, lists of statuses, the dashboard's messages, ticks.
func (o *Overview) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if o.quitting {
		return o, nil
	}
	switch msg := msg.(type) {
	case childMsg:
		return o, o.childMsg(msg)
	case tea.WindowSizeMsg:
		o.width, o.height = msg.Width, msg.Height
		o.clamp()
		if o.child != nil {
			o.child.Update(msg)
		}
	case tea.KeyMsg:
		o.dirty = true
		if o.child != nil {
			return o, o.childKey(msg)
		}
		return o, o.handleKey(msg)
	case fleetSubscribedMsg:
		o.sub, o.cancel = msg.ch, msg.cancel
		return o, o.wait()
	case fleetListMsg:
		o.dirty = true
		if !msg.ok {
			o.ended, o.sub = true, nil
			if o.dialog != nil && o.dialog.kind == dialogQuit {
				return o, o.quit(ChoiceNone)
			}
			o.dialog, o.bulk = nil, nil // nothing left to command
			return o, nil
		}
		o.take(msg.list)
		next := tea.Tick(frameInterval, func(time.Time) tea.Msg { return fleetFrameMsg{} })
		return o, tea.Batch(next, o.reopenChild())
	case fleetFrameMsg:
		return o, o.wait()
	case fleetTickMsg:
		o.now = o.clock()
		o.readPresence()
		if o.status.text != "" && !o.now.Before(o.status.until) {
			o.status = status{}
		}
		o.dirty = true
		return o, fleetTick()
	case bulkDoneMsg:
		o.bulkDone(msg)
	default:
		return o, nil
	}
	o.dirty = true
	return o, nil
}

// childMsg hands the dashboard its own messages; those of a dashboard since closed are
// dropped, which also ends their re-arming (its clock, its reads).
func (o *Overview) childMsg(msg childMsg) tea.Cmd {
	if o.child == nil || msg.gen != o.childGen {
		return nil
	}
	if _, ok := msg.msg.(tea.QuitMsg); ok {
		o.closeChild()
		return nil
	}
	_, cmd := o.child.Update(msg.msg)
	o.dirty = true
	return wrapChild(o.childGen, cmd)
}

// childKey gives a key to the open dashboard. Its dialogs, help and detail view take esc and
// q first; at its top level esc and q return to the overview, and ctrl+c leaves as from the
// overview.
func (o *Overview) childKey(msg tea.KeyMsg) tea.Cmd {
	c, k := o.child, o.keys
	top := c.dialog == nil && !c.help && c.detail == nil
	switch {
	case top && (key.Matches(msg, k.Back) || key.Matches(msg, k.Quit)):
		o.closeChild()
		return nil
	case key.Matches(msg, k.Interrupt) && c.dialog == nil:
		o.closeChild()
		return o.quitKey()
	}
	_, cmd := c.Update(msg)
	return wrapChild(o.childGen, cmd)
}

// open shows the dashboard of the rollout named name, built as a view of that rollout alone.
func (o *Overview) open(name string) tea.Cmd {
	r, ok := o.opts.Fleet.Rollout(name)
	if !ok {
		why := "it is not running"
		if row := o.row(name); row != nil && row.note != "" {
			why = row.note
		}
		o.setStatus(statusError, fmt.Sprintf("%s has no dashboard: %s", name, why))
		return nil
	}
	var presence func() []engine.Actor
	if p := o.opts.Presence; p != nil {
		presence = func() []engine.Actor { return p()[name] }
	}
	note := o.opts.Note
	if row := o.row(name); row != nil && row.standby {
		// Its commands are relayed: say so, as a standby's own sessions do.
		note = strings.TrimPrefix(note+" · standby replica: commands go to the leader "+row.leader, " · ")
	}
	c := New(Options{Snapshots: r, Commander: r, Actor: o.opts.Actor, Mode: ModeRemote,
		Theme: o.themes[o.themeIdx], Renderer: o.render, Context: o.ctx, NoResume: o.opts.NoResume,
		Note: note, Presence: presence, Clock: o.opts.Clock, Location: o.opts.Location})
	c.inFleet = true
	c.keys.Quit.SetHelp(c.keys.Quit.Help().Key, "overview")
	c.Update(tea.WindowSizeMsg{Width: o.width, Height: o.height})
	o.childGen++
	o.child, o.childName, o.childView = c, name, r
	o.status = status{}
	return wrapChild(o.childGen, c.Init())
}

// reopenChild opens the dashboard again when the fleet serves its rollout through another
// view: with replicas, a standby's follower is replaced by its engine when it takes over (and
// the other way round), and the old view shows no more states.
func (o *Overview) reopenChild() tea.Cmd {
	if o.child == nil {
		return nil
	}
	r, ok := o.opts.Fleet.Rollout(o.childName)
	if !ok || sameView(r, o.childView) {
		return nil
	}
	name, focus := o.childName, o.child.focus
	o.closeChild()
	cmd := o.open(name)
	if o.child == nil {
		return cmd
	}
	o.child.focus = focus
	what := "the rollout's view changed; dashboard reopened"
	if row := o.row(name); row != nil && row.leader != "" {
		what = fmt.Sprintf("now led by %s; dashboard reopened", row.leader)
	}
	o.child.setStatus(statusInfo, what)
	return cmd
}

// sameView says whether a and b are the same rollout view; views of types that cannot be
// compared count as different, which only reopens the dashboard.
func sameView(a, b fleet.Rollout) bool {
	if a == nil || b == nil {
		return a == b
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// closeChild returns to the overview, ending the dashboard's subscription; its theme stays.
func (o *Overview) closeChild() {
	c := o.child
	if c == nil {
		return
	}
	c.unsubscribe()
	if c.themeIdx != o.themeIdx {
		o.themeIdx = c.themeIdx
		o.styles = newStyles(o.themes[o.themeIdx], o.render)
	}
	o.child, o.childName, o.childView = nil, "", nil
	o.childGen++
	o.dirty = true
}

// row is the row of the rollout named name, or nil.
func (o *Overview) row(name string) *fleetRow {
	for i := range o.rows {
		if o.rows[i].name == name {
			return &o.rows[i]
		}
	}
	return nil
}

// handleKey routes a key: to the prompt, the dialog, the help, then the table.
func (o *Overview) handleKey(msg tea.KeyMsg) tea.Cmd {
	k := o.keys
	switch {
	case o.prompt != nil:
		return o.promptKey(msg)
	case o.dialog != nil:
		return o.dialogKey(msg)
	case o.help:
		switch {
		case key.Matches(msg, k.Interrupt):
			o.help = false
			return o.quitKey()
		case key.Matches(msg, k.Help), key.Matches(msg, k.Close), key.Matches(msg, k.Quit):
			o.help = false
		}
		return nil
	}
	switch {
	case key.Matches(msg, k.Quit), key.Matches(msg, k.Interrupt):
		return o.quitKey()
	case key.Matches(msg, k.Help):
		o.help = true
	case key.Matches(msg, k.Theme):
		o.themeIdx = (o.themeIdx + 1) % len(o.themes)
		o.styles = newStyles(o.themes[o.themeIdx], o.render)
		o.setStatus(statusInfo, fmt.Sprintf("theme %s (%d of %d)", o.themes[o.themeIdx].Name, o.themeIdx+1, len(o.themes)))
	case key.Matches(msg, k.Filter):
		o.prompt = &prompt{kind: '/', text: []rune(o.filter)}
	case key.Matches(msg, k.Jump):
		o.prompt = &prompt{kind: ':'}
	case key.Matches(msg, k.Open):
		if r := o.cursorRow(); r != nil {
			return o.open(r.name)
		}
	case key.Matches(msg, k.Back):
		// esc undoes what narrows or selects, one thing at a time.
		switch {
		case o.filter != "":
			o.setFilter("")
		case len(o.marked) > 0:
			clear(o.marked)
		default:
			o.status = status{}
		}
	case key.Matches(msg, k.Mark):
		if r := o.cursorRow(); r != nil {
			if o.marked[r.name] {
				delete(o.marked, r.name)
			} else {
				o.marked[r.name] = true
			}
			o.cursor++
			o.clamp()
		}
	case key.Matches(msg, k.Pause):
		return o.bulkKey(engine.CommandPause)
	case key.Matches(msg, k.Rollback):
		return o.bulkKey(engine.CommandRollback)
	default:
		o.moveKey(msg)
	}
	return nil
}

// moveKey moves the cursor.
func (o *Overview) moveKey(msg tea.KeyMsg) {
	k, page := o.keys, o.tableHeight()
	switch {
	case key.Matches(msg, k.Down):
		o.cursor++
	case key.Matches(msg, k.Up):
		o.cursor--
	case key.Matches(msg, k.PageDown):
		o.cursor += page
	case key.Matches(msg, k.PageUp):
		o.cursor -= page
	case key.Matches(msg, k.Top):
		o.cursor = 0
	case key.Matches(msg, k.Bottom):
		o.cursor = len(o.shown) - 1
	}
	o.clamp()
}

func (o *Overview) setFilter(f string) {
	var at string
	if r := o.cursorRow(); r != nil {
		at = r.name
	}
	o.filter = f
	o.refilter(at)
}

// promptKey edits the prompt. The filter applies as it is typed; enter keeps it and esc
// clears it. The jump completes with tab and opens the rollout on enter.
func (o *Overview) promptKey(msg tea.KeyMsg) tea.Cmd {
	p := o.prompt
	switch msg.Type {
	case tea.KeyEsc, tea.KeyCtrlC:
		o.prompt = nil
		if p.kind == '/' {
			o.setFilter("")
		}
		return nil
	case tea.KeyEnter:
		o.prompt = nil
		if p.kind == ':' {
			return o.jump(string(p.text))
		}
		return nil
	case tea.KeyTab:
		if p.kind == ':' {
			o.complete()
		}
		return nil
	case tea.KeyBackspace:
		if len(p.text) > 0 {
			p.text = p.text[:len(p.text)-1]
		}
	case tea.KeyCtrlU:
		p.text = p.text[:0]
	case tea.KeySpace:
		p.text = appendPrintable(p.text, []rune{' '})
	case tea.KeyRunes:
		p.text = appendPrintable(p.text, msg.Runes)
	default:
		return nil
	}
	if p.kind == '/' {
		o.setFilter(string(p.text))
	}
	return nil
}

// appendPrintable adds the printable runes of more to text, up to maxPrompt.
func appendPrintable(text, more []rune) []rune {
	for _, r := range more {
		if len(text) < maxPrompt && unicode.IsPrint(r) {
			text = append(text, r)
		}
	}
	return text
}

// matches are the names that begin with prefix, or failing that contain it, ignoring case.
func (o *Overview) matches(prefix string) []string {
	p := strings.ToLower(prefix)
	var begin, within []string
	for i := range o.rows {
		n := strings.ToLower(o.rows[i].name)
		switch {
		case strings.HasPrefix(n, p):
			begin = append(begin, o.rows[i].name)
		case strings.Contains(n, p):
			within = append(within, o.rows[i].name)
		}
	}
	if len(begin) > 0 {
		return begin
	}
	return within
}

// complete extends the jump prompt to what all matching names share, and lists them when
// more than one matches.
func (o *Overview) complete() {
	p := o.prompt
	m := o.matches(string(p.text))
	switch len(m) {
	case 0:
		o.setStatus(statusError, fmt.Sprintf("no rollout name contains %q%s", string(p.text), o.didYouMean(string(p.text))))
		return
	case 1:
		p.text = []rune(m[0])
		return
	}
	common := m[0]
	for _, n := range m[1:] {
		for !strings.HasPrefix(strings.ToLower(n), strings.ToLower(common)) {
			_, size := utf8.DecodeLastRuneInString(common)
			common = common[:len(common)-size]
		}
	}
	if len([]rune(common)) > len(p.text) {
		p.text = []rune(common)
	}
	shown := m[:min(len(m), 8)]
	more := ""
	if len(m) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(m)-len(shown))
	}
	o.setStatus(statusInfo, fmt.Sprintf("%d match: %s%s", len(m), strings.Join(shown, ", "), more))
}

// jump opens the rollout named name: that name exactly, or the one name it picks out.
func (o *Overview) jump(name string) tea.Cmd {
	if name == "" {
		return nil
	}
	target := ""
	if o.row(name) != nil {
		target = name
	} else if m := o.matches(name); len(m) == 1 {
		target = m[0]
	} else if len(m) > 1 {
		o.setStatus(statusError, fmt.Sprintf("%q names %d rollouts: %s (tab completes)", name, len(m), strings.Join(m[:min(len(m), 8)], ", ")))
		return nil
	}
	if target == "" {
		o.setStatus(statusError, fmt.Sprintf("no rollout named %q%s", name, o.didYouMean(name)))
		return nil
	}
	if o.filter != "" && !strings.Contains(strings.ToLower(target), strings.ToLower(o.filter)) {
		o.setFilter("")
	}
	o.refilter(target)
	return o.open(target)
}

// didYouMean names the rollout nearest to name, when one is near.
func (o *Overview) didYouMean(name string) string {
	best, bestD := "", len(name)/2+2
	for i := range o.rows {
		if d := distance(strings.ToLower(name), strings.ToLower(o.rows[i].name)); d < bestD {
			best, bestD = o.rows[i].name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %s?", best)
}

// distance is the Levenshtein distance between a and b, in runes.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			sub := 1
			if ra[i-1] == rb[j-1] {
				sub = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// quitKey leaves the overview: a local one with engines still running asks first whether to
// keep them running headless or stop them.
func (o *Overview) quitKey() tea.Cmd {
	if o.opts.Mode == ModeLocal && !o.ended {
		o.dialog = o.quitDialog()
		return nil
	}
	return o.quit(ChoiceNone)
}

func (o *Overview) quit(choice Choice) tea.Cmd {
	o.choice, o.quitting, o.dialog = choice, true, nil
	o.unsubscribe()
	return tea.Quit
}

func (o *Overview) quitDialog() *dialog {
	running := 0
	for i := range o.rows {
		if o.rows[i].st != nil && !o.rows[i].done {
			running++
		}
	}
	stop := describe(o.keys.Stop, "stop every engine: traffic stays as it is; continue later with --resume")
	if o.opts.NoResume {
		stop = describe(o.keys.Stop, "stop every engine: traffic stays as it is; this run cannot be continued later")
	}
	return &dialog{
		kind:  dialogQuit,
		title: "Leave the view?",
		body:  []string{fmt.Sprintf("%d of %d rollouts are running.", running, len(o.rows)), "Neither choice changes traffic."},
		keys:  []key.Binding{describe(o.keys.Detach, "detach: keep every rollout running without the view"), stop, o.keys.Stay},
	}
}

func (o *Overview) dialogKey(msg tea.KeyMsg) tea.Cmd {
	d, k := o.dialog, o.keys
	if d.kind == dialogQuit {
		switch {
		case key.Matches(msg, k.Detach):
			return o.quit(ChoiceDetach)
		case key.Matches(msg, k.Stop), key.Matches(msg, k.Interrupt):
			return o.quit(ChoiceStop)
		case key.Matches(msg, k.Stay), key.Matches(msg, k.Quit):
			o.dialog = nil
		}
		return nil
	}
	plan := o.bulk
	switch {
	case key.Matches(msg, k.Yes):
		o.dialog, o.bulk = nil, nil
		return o.sendBulk(plan)
	case key.Matches(msg, k.No), key.Matches(msg, k.Quit), key.Matches(msg, k.Interrupt):
		o.dialog, o.bulk = nil, nil
		o.setStatus(statusInfo, fmt.Sprintf("%s cancelled; nothing was sent", commandWords(plan.kind)))
	}
	return nil
}

// bulkPlan is one command for several rollouts, as the confirm dialog names them.
type bulkPlan struct {
	kind    engine.CommandKind
	targets []bulkTarget
	skipped []string // marked rollouts the command does not apply to now, with why
}

type bulkTarget struct {
	name  string
	step  int // the step on screen: the command is issued against it
	label string
}

// refusal is why this overview may not send commands at all, or nil.
func (o *Overview) refusal() error {
	switch {
	case o.opts.Actor.Role == engine.RoleViewer:
		return fmt.Errorf("%w (%s is a viewer)", engine.ErrForbidden, printable.Line(o.opts.Actor.Name))
	case o.ended:
		return engine.ErrNotRunning
	}
	return nil
}

// selection is the marked rows, or the row under the cursor when none is marked.
func (o *Overview) selection() []*fleetRow {
	var out []*fleetRow
	for i := range o.rows {
		if o.marked[o.rows[i].name] {
			out = append(out, &o.rows[i])
		}
	}
	if len(out) == 0 {
		if r := o.cursorRow(); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// planBulk is what kind would do to the selection: pause acts on the running rollouts, and
// when none runs resumes the paused and holding ones, as p does in a dashboard.
func (o *Overview) planBulk(kind engine.CommandKind) *bulkPlan {
	sel := o.selection()
	try := func(kind engine.CommandKind) *bulkPlan {
		p := &bulkPlan{kind: kind}
		for _, r := range sel {
			// A holding rollout is resumed, not paused, as p does in its dashboard.
			if r.st == nil || r.st.Stopped || r.st.Allowed(kind) != nil || kind == engine.CommandPause && r.st.Phase == engine.PhaseHolding {
				p.skipped = append(p.skipped, fmt.Sprintf("%s (%s)", r.label, strings.ToLower(r.badge)))
				continue
			}
			label := r.label
			if kind == engine.CommandRollback {
				label += fmt.Sprintf(" (%s to canary)", weightText(r.st.Weight))
			}
			p.targets = append(p.targets, bulkTarget{name: r.name, step: r.st.Step, label: label})
		}
		return p
	}
	p := try(kind)
	if len(p.targets) == 0 && kind == engine.CommandPause {
		if resume := try(engine.CommandResume); len(resume.targets) > 0 {
			return resume
		}
	}
	return p
}

// bulkKey opens the confirm dialog for kind on the selection, or says why not.
func (o *Overview) bulkKey(kind engine.CommandKind) tea.Cmd {
	if err := o.refusal(); err != nil {
		o.setStatus(statusError, fmt.Sprintf("✘ %s refused: %v", commandWords(kind), err))
		return nil
	}
	p := o.planBulk(kind)
	if len(p.targets) == 0 {
		if len(p.skipped) == 0 {
			o.setStatus(statusError, "no rollout is selected")
		} else {
			o.setStatus(statusError, fmt.Sprintf("nothing to %s: %s", commandWords(kind), strings.Join(p.skipped, ", ")))
		}
		return nil
	}
	o.bulk, o.dialog = p, o.bulkDialog(p)
	return nil
}

// bulkDialog asks before p, naming every rollout it acts on and every one it skips.
func (o *Overview) bulkDialog(p *bulkPlan) *dialog {
	names := make([]string, len(p.targets))
	for i, t := range p.targets {
		names[i] = t.label
	}
	n := len(p.targets)
	noun := "rollouts"
	if n == 1 {
		noun = "rollout"
	}
	verb := commandWords(p.kind)
	d := &dialog{
		kind:  dialogConfirm,
		cmd:   p.kind,
		title: fmt.Sprintf("%s %d %s?", upperFirst(verb), n, noun),
		keys:  []key.Binding{describe(o.keys.Yes, fmt.Sprintf("%s %d", verb, n)), o.keys.No},
		body:  []string{upperFirst(verb) + ": " + strings.Join(names, ", ") + "."},
	}
	switch p.kind {
	case engine.CommandRollback:
		d.body = append(d.body, "Each sends 0% to its canary; its current step ends as failed and the rollout ends rolled back.")
	case engine.CommandPause:
		d.body = append(d.body, "Each stays at its weight and stops advancing; checks still run and a failure still rolls back.")
	case engine.CommandResume:
		d.body = append(d.body, "Each carries on from its current step.")
	}
	if len(p.skipped) > 0 {
		d.warn = append(d.warn, "Not affected: "+strings.Join(p.skipped, ", ")+".")
	}
	return d
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// sendBulk sends p's command to each of its rollouts at once and reports how it went.
func (o *Overview) sendBulk(p *bulkPlan) tea.Cmd {
	o.setStatus(statusInfo, fmt.Sprintf("… sending %s to %d", commandWords(p.kind), len(p.targets)))
	ctx, f, actor := o.ctx, o.opts.Fleet, o.opts.Actor
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, commandTimeout)
		defer cancel()
		var mu sync.Mutex
		var wg sync.WaitGroup
		done := bulkDoneMsg{kind: p.kind, n: len(p.targets)}
		for _, t := range p.targets {
			wg.Go(func() {
				err := errors.New("it is not running")
				if r, ok := f.Rollout(t.name); ok {
					err = r.Do(ctx, engine.Command{Kind: p.kind, Actor: actor, Step: t.step})
				}
				if errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("no answer from the engine in %s", commandTimeout)
				}
				if err != nil {
					mu.Lock()
					done.failed = append(done.failed, fmt.Sprintf("%s: %v", t.name, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return done
	}
}

func (o *Overview) bulkDone(msg bulkDoneMsg) {
	ok := msg.n - len(msg.failed)
	if len(msg.failed) == 0 {
		o.setStatus(statusOK, fmt.Sprintf("✔ %s accepted by %d of %d", commandWords(msg.kind), ok, msg.n))
		clear(o.marked)
		return
	}
	o.setStatus(statusError, fmt.Sprintf("✘ %s accepted by %d of %d; refused: %s", commandWords(msg.kind), ok, msg.n, strings.Join(msg.failed, "; ")))
}
