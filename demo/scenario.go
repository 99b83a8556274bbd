package demo

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/perchhq/perch/engine"
)

// Scenario is one way a canary can behave in the demo, and how the rollout should end.
type Scenario struct {
	Name    string
	Summary string         // what happens, in one line
	Expect  engine.Outcome // promoted or rolled_back
	// Strategies begins the rollout with a segment step and a feature-flag step (a flagd file
	// the demo writes) and puts a release freeze in its way.
	Strategies bool
	// react changes the canary as the rollout's events arrive.
	react func(d *driver, ev engine.Event)
}

// The backends' normal behaviour: a 30 ms median, p99 about 60 ms, no errors.
var normal = Behavior{Median: 30 * time.Millisecond, Spread: 0.3}

// Scenarios lists every demo scenario, the default first.
//
// The regressions begin at the 25% step: the default judge passes a step only on evidence that
// the canary is within tolerance, so a canary that is worse from the start holds an early step
// (rightly) until there is evidence of harm, and at 1% or 5% of the traffic (6 or 30 canary
// requests a second) that takes minutes, not the demo's 90 s.
func Scenarios() []Scenario {
	step5Percent, step25Percent := stepOf(5), stepOf(25)
	return []Scenario{
		{
			Name:    "healthy",
			Summary: "the canary behaves like stable; each step passes once both checks are shown within tolerance (the 1% step may hold a second or two for that), and it is promoted",
			Expect:  engine.OutcomePromoted,
		},
		{
			Name:    "error-spike",
			Summary: "3 s into the 25% step's analysis, 20% of canary requests start failing; the critical error check rolls back within a few looks",
			Expect:  engine.OutcomeRolledBack,
			react: func(d *driver, ev engine.Event) {
				if ev.Type == engine.EventAnalysisStarted && ev.Step == step25Percent {
					d.after(3*time.Second, func() {
						b := d.canary.Behavior()
						b.ErrorRate = 0.2
						d.canary.Set(b)
					})
				}
			},
		},
		{
			Name:    "latency-regression",
			Summary: "once the canary takes 25% of the traffic its slow tail stretches (p99 +40%, median unchanged); the p99 check rolls back after about 15 looks, holding the step when it needs more than the step's 15",
			Expect:  engine.OutcomeRolledBack,
			react: func(d *driver, ev engine.Event) {
				if ev.Type == engine.EventStepStarted && ev.Step == step25Percent {
					b := normal
					b.TailStretch = 1.8
					d.canary.Set(b)
				}
			},
		},
		{
			Name:    "flaky-metrics",
			Summary: "the metrics source fails for 12 s from 9 s into the 5% step's analysis: the rollout holds (outage, reason shown) and continues by itself when data returns",
			Expect:  engine.OutcomePromoted,
			react: func(d *driver, ev engine.Event) {
				if ev.Type == engine.EventAnalysisStarted && ev.Step == step5Percent {
					d.outage(9*time.Second, 12*time.Second)
				}
			},
		},
		{
			Name: "segments-and-flags",
			Summary: "the employees (users 0-499, 5% of them) reach the canary first, then a feature flag goes to 20% in a flagd file; " +
				"a release freeze holds the 1% step at its end until it is over; promoted with the flag left at 20%",
			Expect:     engine.OutcomePromoted,
			Strategies: true,
		},
		{
			Name:    "slow-burn",
			Summary: "from the 25% step 8% of canary requests fail, 3 points past the error check's tolerance: no single look shows it; the evidence of several looks adds up and rolls back",
			Expect:  engine.OutcomeRolledBack,
			react: func(d *driver, ev engine.Event) {
				if ev.Type == engine.EventStepStarted && ev.Step == step25Percent {
					b := normal
					b.ErrorRate = 0.08
					d.canary.Set(b)
				}
			},
		},
	}
}

// ScenarioNames lists the scenarios' names.
func ScenarioNames() []string {
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	return names
}

// FindScenario returns the named scenario, or an error listing them.
func FindScenario(name string) (Scenario, error) {
	all := Scenarios()
	if i := slices.IndexFunc(all, func(s Scenario) bool { return s.Name == name }); i >= 0 {
		return all[i], nil
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(ScenarioNames(), ", "))
}
