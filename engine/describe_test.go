package engine_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/internal/printable/printabletest"
)

// TestDescribeIsOnePrintableLine: every event type, with hostile text in every field (an
// alert's name and summary, a provider's error, a hand-edited journal), is described in one
// line that shows that text without a control character a terminal would act on.
func TestDescribeIsOnePrintableLine(t *testing.T) {
	rollout := testSpec(t, specOpts{})
	for _, typ := range []engine.EventType{
		engine.EventRolloutStarted, engine.EventStepStarted, engine.EventWeightSet, engine.EventWeightFailed,
		engine.EventAnalysisStarted, engine.EventAnalysis, engine.EventStepPassed, engine.EventPaused,
		engine.EventResumed, engine.EventHeld, engine.EventRollbackStarted, engine.EventRolledBack,
		engine.EventPromoteStarted, engine.EventPromoted, engine.EventCommandRefused, engine.EventReconciled,
		engine.EventStopped, engine.EventNote,
	} {
		ev := engine.Event{Type: typ, Weight: new(int), Checks: make([]engine.CheckResult, 2)}
		printabletest.Fill(&ev, reflect.TypeFor[engine.EventType]())
		got := ev.Describe(rollout)
		if r, ok := printabletest.Find(got, false); ok {
			t.Errorf("%s: %U in %q", typ, r, got)
		}
		if !strings.Contains(got, `Actor.Name\x00\x01`) {
			t.Errorf("%s: the hostile text is not shown: %q", typ, got)
		}
	}
}
