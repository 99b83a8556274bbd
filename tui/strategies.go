package tui

import (
	"fmt"
	"strings"

	"github.com/perchhq/perch/engine"
)

// strategyText is what the canary has beside its weight, for the header: the segments routed
// to it and each flag's percent ("segments employees · flag new-dashboard 20%"), or "".
func (m *Model) strategyText() string {
	st := &m.st
	var parts []string
	if len(st.Segments) > 0 {
		parts = append(parts, "segments "+strings.Join(st.Segments, ", "))
	}
	for _, f := range st.Flags {
		if !f.Read {
			continue
		}
		parts = append(parts, fmt.Sprintf("flag %s %s", f.Name, flagPercent(f)))
	}
	return strings.Join(parts, " · ")
}

func flagPercent(f engine.FlagState) string {
	switch {
	case f.Percent < 0 && f.Restored:
		return "restored"
	case f.Percent < 0:
		return "?"
	}
	return fmt.Sprintf("%d%%", f.Percent)
}

// strategyProgress is a current step's segment or flag change while it is not in place yet,
// or "" once it is.
func (m *Model) strategyProgress() (text string, failing bool) {
	st := &m.st
	if !st.SegmentsInPlace() {
		if st.SegmentAttempts > 0 {
			return fmt.Sprintf("routing segments failed %d×", st.SegmentAttempts), true
		}
		return "routing segments…", false
	}
	for i, f := range st.Flags {
		if st.FlagInPlace(i) {
			continue
		}
		if f.Attempts > 0 {
			return fmt.Sprintf("flag %s failed %d×", f.Name, f.Attempts), true
		}
		return fmt.Sprintf("setting flag %s…", f.Name), false
	}
	return "", false
}

// stepLabel is a step in a few characters, for the one-line timeline: "10%", "‖5m",
// "+employees", "new-dashboard=20%".
func stepLabel(i int, st *engine.State) string {
	step := st.Spec.Steps[i]
	switch {
	case step.Pause != nil:
		label := "‖"
		if step.Pause.Duration > 0 {
			label += step.Pause.Duration.String()
		}
		return label
	case step.Segment != nil:
		return "+" + step.Segment.Name
	case step.SetFlag != nil && step.SetFlag.Percent != nil:
		return fmt.Sprintf("%s=%d%%", step.SetFlag.Flag, *step.SetFlag.Percent)
	}
	return fmt.Sprintf("%d%%", step.Weight())
}
