package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

type dialogKind int

const (
	dialogConfirm dialogKind = iota // roll back, promote, retry
	dialogQuit                      // leaving a local run's view
)

// dialog asks before something that moves traffic, or before leaving a local run. A confirm
// dialog's text is written from the newest state, again whenever one arrives while it is
// open, so what the operator confirms is what the rollout is now; the command still carries
// the step it was opened on.
type dialog struct {
	kind  dialogKind
	cmd   engine.CommandKind
	step  int // the step the command is issued against
	title string
	body  []string      // sentences; wrapped to the box
	warn  []string      // shown in the fail colour
	keys  []key.Binding // the answers, named by their help key and text
}

func (m *Model) weightWords() string {
	if m.st.Weight < 0 {
		return "its weight is not known yet"
	}
	return fmt.Sprintf("it has %d%% now", m.st.Weight)
}

// confirmDialog asks before kind, issued against step, describing the rollout as it is now.
func (m *Model) confirmDialog(kind engine.CommandKind, step int) *dialog {
	st := &m.st
	// Yes is named for what it does: "y roll back".
	answers := []key.Binding{describe(m.keys.Yes, commandWords(kind)), m.keys.No}
	d := &dialog{kind: dialogConfirm, cmd: kind, step: step, keys: answers}
	n := len(st.Steps)
	switch kind {
	case engine.CommandRollback:
		d.title = "Roll back " + st.Spec.Name + "?"
		d.body = []string{
			fmt.Sprintf("Send 0%% to canary (%s).", m.weightWords()),
			fmt.Sprintf("Step %d of %d ends as failed and the rollout ends rolled back.", st.Step+1, n),
		}
	case engine.CommandPromote:
		d.title = "Promote " + st.Spec.Name + "?"
		d.body = []string{fmt.Sprintf("Send 100%% to canary now (%s).", m.weightWords())}
		switch next := st.Step + 2; {
		case next < n:
			d.body = append(d.body, fmt.Sprintf("Steps %d–%d are skipped and the rollout ends promoted.", next, n))
		case next == n:
			d.body = append(d.body, fmt.Sprintf("Step %d is skipped and the rollout ends promoted.", n))
		default:
			d.body = append(d.body, "The rollout ends promoted.")
		}
		d.warn = notPassing(st.Checks)
	case engine.CommandRetry:
		d.title = "Retry " + st.Spec.Name + "?"
		first := st.Spec.Steps[0]
		what := "start with " + first.String()
		if w := first.Weight(); w >= 0 {
			what = fmt.Sprintf("send %d%% to canary (%s)", w, m.weightWords())
		}
		d.body = []string{fmt.Sprintf("Start the rollout again from step 1: %s.", what)}
	}
	switch err := m.refusal(kind); {
	case err != nil:
		d.warn = append(d.warn, fmt.Sprintf("Not possible now: %v.", err))
	case step != st.Step && !kind.NeverStale():
		d.warn = append(d.warn, fmt.Sprintf("The rollout moved from step %d to step %d since this opened: the engine will refuse this %s; cancel and decide again.", step+1, st.Step+1, commandWords(kind)))
	}
	return d
}

// notPassing warns of checks that do not pass now, before traffic goes to the canary.
func notPassing(checks []engine.CheckState) []string {
	var bad []string
	waiting := 0
	for _, c := range checks {
		switch {
		case c.Last == nil:
			waiting++
		case c.Last.Verdict != metrics.Pass && c.DryRun:
			bad = append(bad, fmt.Sprintf("%s (%s, dry run)", c.Name, c.Last.Verdict))
		case c.Last.Verdict != metrics.Pass:
			bad = append(bad, fmt.Sprintf("%s (%s)", c.Name, c.Last.Verdict))
		}
	}
	var warn []string
	if len(bad) > 0 {
		warn = append(warn, "Not passing now: "+strings.Join(bad, ", ")+".")
	}
	if waiting > 0 {
		warn = append(warn, fmt.Sprintf("%d of %d checks have no verdict yet in this step.", waiting, len(checks)))
	}
	return warn
}

func (m *Model) quitDialog() *dialog {
	st := &m.st
	where := "The rollout has not started yet."
	if m.have {
		where = fmt.Sprintf("The rollout is %s at step %d of %d, with %s to canary.", st.Phase.Words(), st.Step+1, len(st.Steps), weightText(st.Weight))
	}
	stop := m.keys.Stop
	if m.opts.NoResume {
		stop = describe(stop, "stop the engine: traffic stays as it is; this run cannot be continued later")
	}
	return &dialog{
		kind:  dialogQuit,
		title: "Leave the view?",
		body:  []string{where, "Neither choice changes traffic."},
		keys:  []key.Binding{m.keys.Detach, stop, m.keys.Stay},
	}
}

func weightText(w int) string {
	if w < 0 {
		return "an unknown weight"
	}
	return fmt.Sprintf("%d%%", w)
}

// render draws the dialog as a box at most width cells wide.
func (d *dialog) render(s *styles, width int) []string {
	inner := min(max(width-4, 20), 64)
	var rows []string
	for _, b := range d.body {
		rows = append(rows, wrapStyled(b, inner, s.text)...)
	}
	for _, w := range d.warn {
		rows = append(rows, wrapStyled("⚠ "+w, inner, s.fail)...)
	}
	rows = append(rows, "")
	keyW := 3
	for _, k := range d.keys {
		keyW = max(keyW, cells(k.Help().Key))
	}
	for _, k := range d.keys {
		label := s.key.Render(fmt.Sprintf("%-*s", keyW, k.Help().Key)) + " "
		for i, l := range wrap(k.Help().Desc, inner-keyW-1) {
			if i > 0 {
				label = strings.Repeat(" ", keyW+1)
			}
			rows = append(rows, label+s.text.Render(l))
		}
	}
	border := s.accent.Render
	top := border("╭─ ") + s.bold.Render(cut(d.title, inner-2)) + " "
	top += border(strings.Repeat("─", max(inner+3-cells(top), 0)) + "╮")
	out := []string{top}
	for _, r := range rows {
		out = append(out, border("│ ")+fit(r, inner)+border(" │"))
	}
	return append(out, border("╰"+strings.Repeat("─", inner+2)+"╯"))
}
