package engine

import (
	"fmt"
	"strings"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
)

// Describe is the event in one line for people: the headless printer, a replay, the TUI's
// event log and `perch status` show it. rollout supplies step descriptions and may be nil. Text
// from outside perch (reasons, errors, actor and check names) is made printable: the line
// holds no control character and no line break.
func (ev Event) Describe(rollout *spec.Rollout) string {
	var b strings.Builder
	step := func() string {
		if rollout == nil || ev.Step < 0 || ev.Step >= len(rollout.Steps) {
			return fmt.Sprintf("step %d", ev.Step+1)
		}
		return fmt.Sprintf("step %d/%d (%s)", ev.Step+1, len(rollout.Steps), rollout.Steps[ev.Step])
	}
	//exhaustive:enforce
	switch ev.Type {
	case EventRolloutStarted:
		fmt.Fprintf(&b, "rollout started")
		if ev.Attempt > 1 {
			fmt.Fprintf(&b, " (attempt %d)", ev.Attempt)
		}
	case EventStepStarted:
		fmt.Fprintf(&b, "%s started", step())
	case EventWeightSet:
		fmt.Fprintf(&b, "canary weight is %d%%", *ev.Weight)
	case EventWeightFailed:
		b.WriteString(ev.Reason)
		fmt.Fprintf(&b, ": %s", ev.Error)
	case EventAnalysisStarted:
		if rollout != nil && ev.Step >= 0 && ev.Step < len(rollout.Steps) && rollout.Steps[ev.Step].Pause != nil {
			fmt.Fprintf(&b, "%s: watching the weight it holds", step())
		} else {
			fmt.Fprintf(&b, "%s: stabilized, analysis started", step())
		}
	case EventAnalysis:
		parts := make([]string, len(ev.Checks))
		for i, c := range ev.Checks {
			parts[i] = fmt.Sprintf("%s %s %s/%s", c.Check, verdictWord(c.Verdict),
				metrics.FormatValue(float64(c.LastCanary)), metrics.FormatValue(float64(c.LastBaseline)))
		}
		fmt.Fprintf(&b, "analysis: %s", strings.Join(parts, ", "))
	case EventStepPassed:
		fmt.Fprintf(&b, "%s passed", step())
	case EventPaused:
		b.WriteString("paused")
	case EventResumed:
		b.WriteString("resumed")
	case EventHeld:
		fmt.Fprintf(&b, "holding (%s)", ev.Hold)
	case EventRollbackStarted:
		b.WriteString("ROLLING BACK")
	case EventRolledBack:
		b.WriteString("rolled back: canary weight is 0%")
	case EventPromoteStarted:
		b.WriteString("promoting")
	case EventPromoted:
		b.WriteString("promoted: canary weight is 100%")
	case EventCommandRefused:
		fmt.Fprintf(&b, "refused %s", ev.Command)
	case EventReconciled:
		b.WriteString("resumed from journal")
		if ev.Error != "" {
			fmt.Fprintf(&b, " (provider unreadable: %s)", ev.Error)
		}
	case EventStopped:
		b.WriteString("engine stopped")
	case EventNote:
		b.WriteString("note")
	case EventSegmentsSet:
		if len(ev.Segments) == 0 {
			b.WriteString("no segments routed to canary")
		} else {
			fmt.Fprintf(&b, "segments routed to canary: %s", strings.Join(ev.Segments, ", "))
		}
	case EventFlagRead:
		fmt.Fprintf(&b, "flag %s read before changing it: %s", ev.Flag, pct(*ev.Percent))
	case EventFlagSet:
		fmt.Fprintf(&b, "flag %s at %s", ev.Flag, pct(*ev.Percent))
	case EventFlagRestored:
		fmt.Fprintf(&b, "flag %s restored as it was (%s)", ev.Flag, pct(*ev.Percent))
	case EventSegmentsFailed, EventFlagFailed:
		b.WriteString(ev.Reason)
		fmt.Fprintf(&b, ": %s", ev.Error)
	case EventWindowOverride:
		b.WriteString("advanced outside the release window")
	default:
		b.WriteString(string(ev.Type))
	}
	if ev.Actor != nil {
		fmt.Fprintf(&b, " by %s", ev.Actor.Name)
		if ev.Actor.Source != "" {
			fmt.Fprintf(&b, " (%s)", ev.Actor.Source)
		}
	}
	failed := ev.Type == EventWeightFailed || ev.Type == EventSegmentsFailed || ev.Type == EventFlagFailed
	if ev.Reason != "" && !failed && !strings.HasSuffix(ev.Reason, "by "+actorName(ev.Actor)) {
		fmt.Fprintf(&b, ": %s", ev.Reason)
	}
	return printable.Line(b.String())
}

func actorName(a *Actor) string {
	if a == nil {
		return "\x00"
	}
	return a.Name
}

func verdictWord(v metrics.Verdict) string {
	if v == "" {
		return "-"
	}
	return string(v)
}
