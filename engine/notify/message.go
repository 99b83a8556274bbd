package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
)

// message is one piece of rollout news, rendered for each destination when it is sent.
type message struct {
	rollout  string
	canary   *spec.Canary // what is being released, if the rollout file says
	event    engine.Event
	headline string   // what happened, in one line
	details  []string // the numbers that explain it, one per line
	phase    engine.Phase
	step     int // 1-based
	steps    int
	weight   int // canary percent last confirmed, -1 before any

	// Set when a worker takes the message: earlier messages this destination missed.
	dropped int // pushed out of a full queue
	failed  int // given up after retries
}

// compose is the message for ev, folded into st already, or false if ev is not news.
func compose(st *engine.State, ev engine.Event) (message, bool) {
	m := message{rollout: st.Spec.Name, canary: st.Spec.Canary, event: ev, phase: st.Phase, step: ev.Step + 1, steps: len(st.Spec.Steps), weight: st.Weight}
	// Every event type is listed, so a new one is a decision: news or not.
	//exhaustive:enforce
	switch ev.Type {
	case engine.EventRolloutStarted:
		m.headline = "rollout started"
		if ev.Attempt > 1 {
			m.headline = fmt.Sprintf("rollout started again (attempt %d)", ev.Attempt)
		}
		m.headline += by(ev.Actor)
		if c := st.Spec.Canary.String(); c != "" {
			m.details = append(m.details, "canary: "+c)
		}
		m.details = append(m.details, "plan: "+plan(st.Spec), "checks: "+checkNames(st.Spec))
	case engine.EventStepStarted:
		if st.Spec.Steps[ev.Step].Pause == nil {
			return m, false
		}
		m.headline = fmt.Sprintf("paused at %s: waiting for an operator to resume", stepName(st, ev.Step))
		if ev.Until != nil {
			m.headline = fmt.Sprintf("pausing at %s until %s", stepName(st, ev.Step), ev.Until.UTC().Format(time.TimeOnly+" UTC"))
		}
	case engine.EventStepPassed:
		m.headline = fmt.Sprintf("%s passed%s", stepName(st, ev.Step), reason(ev.Reason))
		m.details = checkLines(st, false)
	case engine.EventPaused:
		m.headline = fmt.Sprintf("paused at %s%s", stepName(st, ev.Step), by(ev.Actor))
		m.details = append(why(ev.Reason, ev.Actor), checkLines(st, false)...)
	case engine.EventHeld:
		m.headline = fmt.Sprintf("holding at %s with the canary at %s (%s)", stepName(st, ev.Step), percent(st.Weight), ev.Hold)
		m.details = append(why(ev.Reason, nil), checkLines(st, false)...)
	case engine.EventRollbackStarted:
		m.headline = fmt.Sprintf("rolling back at %s from %s%s", stepName(st, ev.Step), percent(st.Weight), by(ev.Actor))
		m.details = why(ev.Reason, ev.Actor)
	case engine.EventRolledBack:
		m.headline = fmt.Sprintf("rolled back: all traffic is on stable; %s failed%s", stepName(st, ev.Step), by(st.EndedBy))
		m.details = append(why(st.EndReason, st.EndedBy), checkLines(st, true)...)
	case engine.EventPromoted:
		m.headline = fmt.Sprintf("promoted: all traffic is on the canary, %s after the rollout started%s", spec.Duration(ev.Time.Sub(st.StartedAt).Round(time.Second)), by(st.EndedBy))
		m.details = append(why(st.EndReason, st.EndedBy), checkLines(st, false)...)
	case engine.EventStopped:
		if st.Phase.Done() {
			return m, false // the outcome was news already; stopping after it changes nothing
		}
		m.headline = fmt.Sprintf("perch stopped at %s with the canary at %s; traffic was left as it is until perch is resumed", stepName(st, ev.Step), percent(st.Weight))
		m.details = why(ev.Reason, nil)
	case engine.EventWindowOverride:
		m.headline = fmt.Sprintf("release window overridden at %s%s", stepName(st, ev.Step), by(ev.Actor))
		m.details = why(ev.Reason, nil)
	case engine.EventHookFinished:
		// A failing gate is news by the hold or rollback it causes; an after-* hook's failure
		// changes nothing, so it is news of its own. A load test's failures are journaled.
		if !ev.Hook.Failed() || ev.Hook.On.Gates() || ev.Hook.Kind == "loadTest" {
			return m, false
		}
		step := ev.Step
		if s := ev.Hook.Step - 1; s >= 0 && s < len(st.Spec.Steps) {
			step = s // an after-step hook may end once the next step has begun
		}
		m.headline = fmt.Sprintf("%s hook failed at %s", ev.Hook.On, stepName(st, step))
		m.details = []string{ev.Describe(st.Spec)}
	case engine.EventHookStarted:
		return m, false
	case engine.EventDryRun:
		m.headline = fmt.Sprintf("%s (dry run) %s at %s%s", ev.Check, ev.Would.Words(), stepName(st, ev.Step), reason(ev.Reason))
		m.details = []string{"nothing was done: a dry-run check never holds, fails or rolls back a rollout"}
	case engine.EventWeightSet, engine.EventWeightFailed, engine.EventAnalysisStarted, engine.EventAnalysis,
		engine.EventResumed, engine.EventPromoteStarted, engine.EventCommandRefused, engine.EventReconciled,
		engine.EventNote, engine.EventSegmentsSet, engine.EventSegmentsFailed, engine.EventFlagRead,
		engine.EventFlagSet, engine.EventFlagRestored, engine.EventFlagFailed:
		return m, false // not news on their own
	default:
		return m, false
	}
	return m, true
}

// label names the rollout at the head of a message, with the canary's version when the file
// gives one: "checkout-api v2.4.0". Text from the file is made printable.
func (m message) label() string {
	if v := m.canary.Short(); v != "" {
		return printable.Line(m.rollout + " " + v)
	}
	return m.rollout
}

// text is the message as plain lines: the rollout and headline, then one line per detail.
// Text from outside (an alert's summary, a provider's error) is made printable, so it cannot
// forge a line of its own or reach a terminal the message is shown on as control characters.
func (m message) text(bullet string) []string {
	lines := append([]string{m.headline}, m.details...)
	for i := range lines {
		lines[i] = printable.Line(lines[i])
		if i > 0 {
			lines[i] = bullet + lines[i]
		}
	}
	if notice := m.lostNotice(); notice != "" {
		lines = append(lines, bullet+notice)
	}
	return lines
}

func (m message) lostNotice() string {
	var parts []string
	if m.dropped > 0 {
		parts = append(parts, fmt.Sprintf("%d dropped because the queue was full", m.dropped))
	}
	if m.failed > 0 {
		parts = append(parts, fmt.Sprintf("%d not delivered after retries", m.failed))
	}
	if len(parts) == 0 {
		return ""
	}
	return "earlier notifications missed here: " + strings.Join(parts, ", ")
}

// checkLines are the checks' newest verdicts and the numbers behind them: every check that
// was looked at, or with onlyFailing the failing ones (all of them if none failed, so a
// rollback by an alert still shows where the checks stood).
func checkLines(st *engine.State, onlyFailing bool) []string {
	var all, failing []string
	for _, c := range st.Checks {
		if c.Last == nil {
			continue
		}
		line := checkLine(c)
		all = append(all, line)
		if c.Last.Verdict == metrics.Fail && !c.DryRun { // a dry run failing made nothing happen
			failing = append(failing, line)
		}
	}
	if onlyFailing && len(failing) > 0 {
		return failing
	}
	return all
}

func checkLine(c engine.CheckState) string {
	name := c.Name
	if c.Critical {
		name += " (critical)"
	}
	if c.DryRun {
		name += " (dry run)"
	}
	r := c.Last
	if r.SourceError != "" {
		return fmt.Sprintf("%s: no data: %s", name, r.SourceError)
	}
	// The judge's reason writes its values in the check's unit.
	line := fmt.Sprintf("%s: %s: %s", name, r.Verdict, r.Reason)
	if c.Failures > 0 {
		line += fmt.Sprintf("; failed %d look(s) this step", c.Failures)
	}
	return line
}

func stepName(st *engine.State, i int) string {
	if i < 0 || i >= len(st.Spec.Steps) {
		return fmt.Sprintf("step %d", i+1)
	}
	return fmt.Sprintf("step %d/%d (%s)", i+1, len(st.Spec.Steps), st.Spec.Steps[i])
}

func plan(spec *spec.Rollout) string {
	var parts []string
	for _, s := range spec.Steps {
		parts = append(parts, s.String())
	}
	return strings.Join(append(parts, "promote"), " → ")
}

func checkNames(spec *spec.Rollout) string {
	if len(spec.Checks) == 0 {
		return "none"
	}
	var names []string
	for _, c := range spec.Checks {
		n := c.Name
		if c.Critical {
			n += " (critical)"
		}
		if c.DryRun {
			n += " (dry run)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

func by(a *engine.Actor) string {
	if a == nil {
		return ""
	}
	return " by " + a.Name
}

// why is the reason as a detail line, unless it only says who did it ("paused by alice"),
// which the headline says already.
func why(reason string, actor *engine.Actor) []string {
	if reason == "" || actor != nil && strings.HasSuffix(reason, " by "+actor.Name) {
		return nil
	}
	return []string{"why: " + reason}
}

func reason(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

func percent(w int) string {
	if w < 0 {
		return "an unknown weight"
	}
	return fmt.Sprintf("%d%%", w)
}
