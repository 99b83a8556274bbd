package rolloutmetrics

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

type fixedState struct{ s engine.State }

func (f fixedState) Snapshot() engine.State { return f.s }

// TestSeriesAreTheContract pins every series' name, help, type and labels: dashboards and
// alerts are written against them.
func TestSeriesAreTheContract(t *testing.T) {
	st := engine.State{
		Spec: &spec.Rollout{Name: "web"}, Seq: 17, Attempt: 2, Phase: engine.PhaseHolding,
		Step: 1, Steps: make([]engine.StepState, 3), Weight: 5, Target: 25,
		Checks: []engine.CheckState{
			{Name: "errors", Failures: 1, Last: &engine.CheckResult{Check: "errors", Result: metrics.Result{Verdict: metrics.Fail}}},
			{Name: "p99"}, // no look yet this step: no verdict series
		},
	}
	want := `
# HELP perch_rollout_attempt 1 for the first run of the rollout, +1 per retry after a rollback.
# TYPE perch_rollout_attempt gauge
perch_rollout_attempt{rollout="web"} 2
# HELP perch_rollout_canary_weight_percent Canary weight the traffic provider last confirmed (absent before the first).
# TYPE perch_rollout_canary_weight_percent gauge
perch_rollout_canary_weight_percent{rollout="web"} 5
# HELP perch_rollout_check_failures Failing looks of a check in the current step.
# TYPE perch_rollout_check_failures gauge
perch_rollout_check_failures{check="errors",rollout="web"} 1
perch_rollout_check_failures{check="p99",rollout="web"} 0
# HELP perch_rollout_check_verdict 1 for a check's verdict at the newest look of the current step, 0 for the other verdicts (absent before a look).
# TYPE perch_rollout_check_verdict gauge
perch_rollout_check_verdict{check="errors",rollout="web",verdict="fail"} 1
perch_rollout_check_verdict{check="errors",rollout="web",verdict="inconclusive"} 0
perch_rollout_check_verdict{check="errors",rollout="web",verdict="pass"} 0
# HELP perch_rollout_events_total Events the engine has recorded.
# TYPE perch_rollout_events_total counter
perch_rollout_events_total{rollout="web"} 17
# HELP perch_rollout_phase 1 for the phase the rollout is in, 0 for the others.
# TYPE perch_rollout_phase gauge
perch_rollout_phase{phase="holding",rollout="web"} 1
perch_rollout_phase{phase="paused",rollout="web"} 0
perch_rollout_phase{phase="pending",rollout="web"} 0
perch_rollout_phase{phase="promoted",rollout="web"} 0
perch_rollout_phase{phase="promoting",rollout="web"} 0
perch_rollout_phase{phase="rolled_back",rollout="web"} 0
perch_rollout_phase{phase="rolling_back",rollout="web"} 0
perch_rollout_phase{phase="running",rollout="web"} 0
# HELP perch_rollout_step Current step of the rollout, counting from 1.
# TYPE perch_rollout_step gauge
perch_rollout_step{rollout="web"} 2
# HELP perch_rollout_steps Number of steps in the rollout.
# TYPE perch_rollout_steps gauge
perch_rollout_steps{rollout="web"} 3
# HELP perch_rollout_target_weight_percent Canary weight the current step, rollback or promotion wants.
# TYPE perch_rollout_target_weight_percent gauge
perch_rollout_target_weight_percent{rollout="web"} 25
`
	if got := exposition(t, st); got != strings.TrimPrefix(want, "\n") {
		t.Errorf("/metrics:\n%s\nwant:\n%s", got, want)
	}
}

// exposition is what /metrics shows for st, in the text format.
func exposition(t *testing.T, st engine.State) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(fixedState{st}))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestWeightsAbsentBeforeTheFirst: before the provider has confirmed a weight or a step has
// wanted one, the weight series are absent rather than a misleading 0.
func TestWeightsAbsentBeforeTheFirst(t *testing.T) {
	st := engine.State{Spec: &spec.Rollout{Name: "web"}, Phase: engine.PhasePending, Weight: -1, Target: -1}
	if got := exposition(t, st); strings.Contains(got, "weight_percent{") {
		t.Errorf("weight series before any weight:\n%s", got)
	}
}

// TestSetExportsEachRolloutUnderItsName: a fleet's rollouts share one registry, told apart by
// their rollout label; one that never started has no series.
func TestSetExportsEachRolloutUnderItsName(t *testing.T) {
	states := []engine.State{
		{Spec: &spec.Rollout{Name: "checkout-eu"}, Phase: engine.PhasePromoted, Step: 2, Steps: make([]engine.StepState, 3), Weight: 100, Target: 100},
		{Phase: engine.PhasePending, Weight: -1, Target: -1}, // waiting for checkout-eu: no Spec yet
		{Spec: &spec.Rollout{Name: "checkout-us"}, Phase: engine.PhaseRunning, Steps: make([]engine.StepState, 3), Weight: 5, Target: 5},
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(NewSet(func() []engine.State { return states })); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, f := range families {
		expfmt.MetricFamilyToText(&buf, f)
	}
	body := buf.String()
	for _, want := range []string{
		`perch_rollout_canary_weight_percent{rollout="checkout-eu"} 100`,
		`perch_rollout_canary_weight_percent{rollout="checkout-us"} 5`,
		`perch_rollout_phase{phase="promoted",rollout="checkout-eu"} 1`,
		`perch_rollout_phase{phase="running",rollout="checkout-us"} 1`,
		`perch_rollout_steps{rollout="checkout-us"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %s", want)
		}
	}
	if n := strings.Count(body, "perch_rollout_step{"); n != 2 {
		t.Errorf("%d perch_rollout_step series, want 2 (the waiting rollout has none):\n%s", n, body)
	}
}
