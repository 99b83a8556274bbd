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
	// start sets the canary up before the rollout; react changes it as the rollout goes.
	start func(d *driver)
	react func(d *driver, ev engine.Event)
}

// The backends' normal behaviour: a 30 ms median, p99 about 60 ms, no errors.
var normal = Behavior{Median: 30 * time.Millisecond, Spread: 0.3}

// Step indexes of the demo rollout (1%, 5%, 25%, 50%).
const (
	step5Percent  = 1
	step25Percent = 2
)

// Scenarios lists every demo scenario, the default first.
func Scenarios() []Scenario {
	return []Scenario{
		{
			Name:    "healthy",
			Summary: "the canary behaves like stable; every step passes and it is promoted",
			Expect:  engine.OutcomePromoted,
		},
		{
			Name:    "error-spike",
			Summary: "3 s into the 25% step's analysis, 20% of canary requests start failing; the critical error check rolls back",
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
			Summary: "the canary's slow tail is stretched: p99 +40%, median unchanged; the p99 check rolls back once the canary has traffic enough to show it",
			Expect:  engine.OutcomeRolledBack,
			start: func(d *driver) {
				b := normal
				b.TailStretch = 1.8
				d.canary.Set(b)
			},
		},
		{
			Name:    "flaky-metrics",
			Summary: "the metrics source fails for 12 s across the end of the 5% step: the step holds, inconclusive, and continues when data returns",
			Expect:  engine.OutcomePromoted,
			react: func(d *driver, ev engine.Event) {
				if ev.Type == engine.EventAnalysisStarted && ev.Step == step5Percent {
					d.outage(9*time.Second, 12*time.Second)
				}
			},
		},
		{
			Name:    "slow-burn",
			Summary: "the canary leaks: its latency creeps up 0.8% a second; each look sees little, the later steps see enough to roll back",
			Expect:  engine.OutcomeRolledBack,
			start: func(d *driver) {
				began := time.Now()
				d.every(250*time.Millisecond, func() {
					b := normal
					grown := 1 + 0.008*d.demoSince(began).Seconds()
					b.Median = time.Duration(float64(normal.Median) * grown)
					d.canary.Set(b)
				})
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
