package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// logRow is one line of the event log: an event, or a run of consecutive looks that came to
// the same verdicts (a look every 30 s would otherwise push everything else out of view).
type logRow struct {
	ev      engine.Event // the newest event of the row
	summary string       // for looks: what they came to
	looks   int          // looks in the run
	since   time.Time    // the oldest look of the run
}

// logRows is the log newest first, with runs of like looks folded into one row.
func logRows(log []engine.Event) []logRow {
	rows := make([]logRow, 0, len(log))
	for i := len(log) - 1; i >= 0; i-- {
		ev := log[i]
		if ev.Type != engine.EventAnalysis {
			rows = append(rows, logRow{ev: ev})
			continue
		}
		sum := analysisSummary(ev.Checks)
		if n := len(rows); n > 0 && rows[n-1].looks > 0 && rows[n-1].summary == sum {
			rows[n-1].looks++
			rows[n-1].since = ev.Time
			continue
		}
		rows = append(rows, logRow{ev: ev, summary: sum, looks: 1, since: ev.Time})
	}
	return rows
}

// eventsPane is the event log, newest first, from the scroll position.
func (m *Model) eventsPane(width, height int) []string {
	if height <= 0 {
		return nil
	}
	s := &m.styles
	rows := m.rows
	first := m.scroll[paneEvents]
	note := ""
	if len(rows) > height-1 {
		note = fmt.Sprintf("%d–%d of %d", first+1, min(first+height-1, len(rows)), len(rows))
	}
	lines := []string{rule(m.paneTitle(paneEvents, "EVENTS")+s.muted.Render(" newest first"), s.muted.Render(note), width, s.border.Render)}
	for i := first; i < len(rows) && len(lines) < height; i++ {
		lines = append(lines, cut(m.gutter(paneEvents, i)+m.eventLine(&rows[i]), width))
	}
	return lines
}

// eventLine is one event: its time and what happened, coloured by what it means. Operator
// commands name their actor (Describe does).
func (m *Model) eventLine(row *logRow) string {
	s := &m.styles
	ev := &row.ev
	at := s.muted.Render(ev.Time.In(m.loc).Format("15:04:05"))
	text := ev.Describe(m.st.Spec)
	style := s.text
	switch ev.Type {
	case engine.EventAnalysis:
		text, style = row.summary, s.muted
		if row.looks > 1 {
			text += fmt.Sprintf(" (%d looks since %s)", row.looks, row.since.In(m.loc).Format("15:04:05"))
		}
		for _, c := range ev.Checks {
			if c.Verdict == metrics.Fail {
				style = s.fail
			}
		}
	case engine.EventRollbackStarted, engine.EventRolledBack, engine.EventCommandRefused:
		style = s.fail
	case engine.EventPromoted, engine.EventStepPassed:
		style = s.pass
	case engine.EventWeightFailed, engine.EventStopped, engine.EventPaused, engine.EventDryRun:
		style = s.warning
	case engine.EventHeld:
		style = s.inconclusive
	case engine.EventHookStarted:
		style = s.muted
	case engine.EventHookFinished:
		if ev.Hook.Failed() {
			style = s.warning
		}
	}
	if ev.Actor != nil && ev.Type != engine.EventCommandRefused {
		style = s.accent // an operator did this
	}
	return at + " " + style.Render(text)
}

// analysisSummary is one look in a few words: how many checks gave each verdict, naming the
// ones that did not pass. (Describe lists every check, which does not fit a line with many.)
func analysisSummary(checks []engine.CheckResult) string {
	var pass int
	var fail, unsure []string
	for _, c := range checks {
		switch c.Verdict {
		case metrics.Pass:
			pass++
		case metrics.Fail:
			fail = append(fail, c.Check)
		default:
			unsure = append(unsure, c.Check)
		}
	}
	parts := []string{}
	if len(fail) > 0 {
		parts = append(parts, fmt.Sprintf("%d fail (%s)", len(fail), strings.Join(fail, ", ")))
	}
	if len(unsure) > 0 {
		parts = append(parts, fmt.Sprintf("%d inconclusive (%s)", len(unsure), strings.Join(unsure, ", ")))
	}
	if pass > 0 {
		parts = append(parts, fmt.Sprintf("%d pass", pass))
	}
	return "analysis: " + strings.Join(parts, ", ")
}
