package engine

import (
	"fmt"
	"math"
	"strings"

	"github.com/perchhq/perch/engine/hooks"
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
		b.WriteString("rollout")
		if rollout != nil && rollout.Canary.String() != "" {
			fmt.Fprintf(&b, " of canary %s", rollout.Canary)
		}
		b.WriteString(" started")
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
			parts[i] = c.Check + dryRunMark(rollout, c.Check) + " " + verdictWord(c.Verdict) + lastValues(c, unitOf(rollout, c.Check))
		}
		fmt.Fprintf(&b, "analysis (last interval): %s", strings.Join(parts, "; "))
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
	case EventHookStarted:
		fmt.Fprintf(&b, "%s started", hookName(rollout, ev.Hook.Index))
	case EventHookFinished:
		b.WriteString(describeHook(rollout, ev))
	case EventDryRun:
		fmt.Fprintf(&b, "%s (dry run) %s", ev.Check, ev.Would.Words())
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
	switch head := b.String(); {
	case ev.Reason == "" || failed || strings.HasSuffix(ev.Reason, "by "+actorName(ev.Actor)):
	case strings.HasPrefix(ev.Reason, head): // "engine stopped; traffic left as it was" says it all
		b.Reset()
		b.WriteString(ev.Reason)
	default:
		fmt.Fprintf(&b, ": %s", ev.Reason)
	}
	return printable.Line(b.String())
}

// lastValues are a check's newest interval's values at a look, labelled and in the check's
// unit: " canary 9.21% baseline 0%".
func lastValues(c CheckResult, u metrics.Unit) string {
	canary, baseline := float64(c.LastCanary), float64(c.LastBaseline)
	switch {
	case c.SourceError != "":
		return ", metrics source failed"
	case math.IsNaN(canary) && math.IsNaN(baseline):
		return ", no data"
	}
	return fmt.Sprintf(" canary %s baseline %s", u.Value(canary), u.Value(baseline))
}

// dryRunMark is " (dry run)" for the rollout's dry-run check named name.
func dryRunMark(rollout *spec.Rollout, name string) string {
	if rollout != nil {
		for _, c := range rollout.Checks {
			if c.Name == name && c.DryRun {
				return " (dry run)"
			}
		}
	}
	return ""
}

// unitOf is the unit of the rollout's check named name (plain numbers if there is none).
func unitOf(rollout *spec.Rollout, name string) metrics.Unit {
	if rollout != nil {
		for _, c := range rollout.Checks {
			if c.Name == name {
				return c.ValueUnit()
			}
		}
	}
	return metrics.Unit{}
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

// describeHook is a hook_finished line: "before-step hook hooks[0] (exec smoke.sh) failed in
// 1.2s (exit 3): exit status 3; output: …", or a load test's summary of its step.
func describeHook(rollout *spec.Rollout, ev Event) string {
	r := ev.Hook
	name := hookName(rollout, r.Index)
	if r.Step != ev.Step+1 && r.Step > 0 {
		name += fmt.Sprintf(" of step %d", r.Step)
	}
	if r.Kind == "loadTest" && r.Outcome != hooks.Canceled {
		line := fmt.Sprintf("%s sent %d requests in %s: %d failed, %d skipped", name, r.Requests, r.Duration, r.Failures, r.Skipped)
		if ev.Error != "" {
			line += " (" + ev.Error + ")"
		}
		return line
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", name, hookOutcomeWords(r.Outcome))
	if r.Duration > 0 {
		fmt.Fprintf(&b, " in %s", r.Duration)
	}
	switch {
	case r.Status > 0:
		fmt.Fprintf(&b, " (HTTP %d)", r.Status)
	case r.ExitCode != nil && *r.ExitCode >= 0:
		fmt.Fprintf(&b, " (exit %d)", *r.ExitCode)
	}
	if ev.Error != "" {
		fmt.Fprintf(&b, ": %s", ev.Error)
	}
	if r.Failed() && r.Output != "" {
		fmt.Fprintf(&b, "; output: %s", strings.ReplaceAll(lastLines(r.Output, holdOutputLines, 300), "\n", " | "))
	}
	return b.String()
}

func hookOutcomeWords(o hooks.Outcome) string {
	switch o {
	case hooks.OK:
		return "passed"
	case hooks.TimedOut:
		return "timed out"
	case hooks.Canceled:
		return "cancelled"
	}
	return string(o)
}
