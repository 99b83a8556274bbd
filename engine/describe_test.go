package engine_test

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable/printabletest"
	"github.com/perchhq/perch/metrics"
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

// TestDescribeAnalysisInUnits: a look's line labels its values as the last interval's canary
// and baseline, in each check's unit (a latency in ms, a rate in %), and says when a check had
// no data rather than printing NaN or zeros.
func TestDescribeAnalysisInUnits(t *testing.T) {
	rollout, err := spec.Parse("units.yaml", []byte(`name: units
traffic: {istio: {virtualService: u, stable: {host: u, subset: stable}, canary: {host: u, subset: canary}}}
metrics: {prometheus: {address: http://prometheus:9090}}
checks:
  - {name: p99, canary: 'a', baseline: 'b', direction: lower_is_better, maxDeviationPercent: 15, unit: s}
  - {name: errors, direction: lower_is_better, maxIncrease: 0.005, events: {canary: e, baseline: f}, total: {canary: t, baseline: u}}
  - {name: quiet, direction: lower_is_better, maxIncrease: 0.005, events: {canary: e, baseline: f}, total: {canary: t, baseline: u}}
  - {name: down, canary: 'a', baseline: 'b', direction: lower_is_better, maxDeviationPercent: 15, unit: s}
steps: [{setWeight: 5, analyze: 1m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	nan := metrics.Number(math.NaN())
	ev := engine.Event{Type: engine.EventAnalysis, Checks: []engine.CheckResult{
		{Check: "p99", LastCanary: 0.05513, LastBaseline: 0.0613, Result: metrics.Result{Verdict: metrics.Pass}},
		{Check: "errors", LastCanary: 0.0913, LastBaseline: 0, Result: metrics.Result{Verdict: metrics.Fail}},
		{Check: "quiet", LastCanary: nan, LastBaseline: nan, Result: metrics.Result{Verdict: metrics.Inconclusive}},
		{Check: "down", LastCanary: nan, LastBaseline: nan, SourceError: "connection refused", Result: metrics.Result{Verdict: metrics.Inconclusive}},
	}}
	want := "analysis (last interval): p99 pass canary 55.13 ms baseline 61.3 ms; errors fail canary 9.13% baseline 0%; " +
		"quiet inconclusive, no data; down inconclusive, metrics source failed"
	if got := ev.Describe(rollout); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestDescribeSaysThingsOnce: an event whose reason restates its kind ("engine stopped;
// traffic left as it was") says it once, not "engine stopped: engine stopped; …"; a rollout
// whose file names the canary says which it releases; an outcome reads as words.
func TestDescribeSaysThingsOnce(t *testing.T) {
	rollout := testSpec(t, specOpts{})
	stopped := engine.Event{Type: engine.EventStopped, Reason: "engine stopped; traffic left as it was"}
	if got := stopped.Describe(rollout); got != "engine stopped; traffic left as it was" {
		t.Errorf("stopped: %q", got)
	}
	rollout.Canary = &spec.Canary{Version: "v2.4.0", Image: "ghcr.io/acme/checkout:v2.4.0", Commit: "1a2b3c4"}
	started := engine.Event{Type: engine.EventRolloutStarted, Attempt: 2}
	if got, want := started.Describe(rollout), "rollout of canary v2.4.0 (image ghcr.io/acme/checkout:v2.4.0, commit 1a2b3c4) started (attempt 2)"; got != want {
		t.Errorf("rollout_started: %q, want %q", got, want)
	}
	if got := engine.OutcomeRolledBack.Words(); got != "rolled back" {
		t.Errorf("OutcomeRolledBack.Words() = %q", got)
	}
}
