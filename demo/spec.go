package demo

import (
	"fmt"
	"slices"
	"time"

	"github.com/perchhq/perch/engine/spec"
)

// The demo rollout at speed 1: four steps of 15 s, each after 3 s of stabilization, looked at
// every second, so a whole rollout takes about 75 s. The sequential judge's sample test needs
// five intervals before it decides anything and gains evidence with every interval, so short
// intervals let a step decide within its 15 s.
const (
	stepAnalysis  = 15 * time.Second
	stabilization = 3 * time.Second
	interval      = time.Second
)

// weights are the demo rollout's steps: the canary's percent at each.
func weights() []int { return []int{1, 5, 25, 50} }

// stepOf is the index of the demo step that sends percent to the canary. The scenarios name
// steps by their weight, so a change to weights cannot silently move them to another step.
func stepOf(percent int) int {
	i := slices.Index(weights(), percent)
	if i < 0 {
		panic(fmt.Sprintf("demo: no %d%% step in %v", percent, weights()))
	}
	return i
}

// Headers the demo proxy routes on: users stick by the first, testers pin with the second
// (with the run's token in proxy.TokenHeader).
const (
	UserHeader     = "X-Perch-User"
	OverrideHeader = "X-Perch-Version"
)

// Spec is the demo's rollout over a proxy at proxyAddr in front of the two backends, pinning
// requests that carry overrideToken, with every duration divided by speed. It goes through
// Validate like a rollout file.
func Spec(scenario string, speed float64, proxyAddr, stableURL, canaryURL, overrideToken string) (*spec.Rollout, error) {
	scaled := func(d time.Duration) spec.Duration { return spec.Duration(time.Duration(float64(d) / speed)) }
	percent := func(v float64) *float64 { return &v }
	r := &spec.Rollout{
		Name: "demo-" + scenario,
		Traffic: spec.Traffic{Proxy: &spec.ProxyTraffic{
			Listen:   proxyAddr,
			Stable:   stableURL,
			Canary:   canaryURL,
			Sticky:   &spec.ProxySticky{Header: UserHeader},
			Override: &spec.ProxyOverride{Header: OverrideHeader, Token: overrideToken},
		}},
		Metrics: spec.Metrics{Builtin: &spec.BuiltinMetrics{}},
		Analysis: spec.Analysis{
			Interval:      scaled(interval),
			Stabilization: scaled(stabilization),
			Inconclusive:  spec.InconclusiveHold,
			FailureLimit:  1,
		},
		// Both checks are judged by the default judge, sequential: a step passes once each is
		// shown within its tolerance, rolls back once one is shown beyond it, and holds while
		// the evidence is not in either way.
		Checks: []spec.Check{
			// The canary's error rate at most 5 points above stable's. Critical: harm shown
			// rolls back at once. Showing it within 5 points takes about 90 error-free canary
			// requests (2 points would take 225): 15 s of the 1% step at the default load.
			{Name: "error_rate", Builtin: spec.BuiltinErrorRate, MaxIncrease: percent(0.05), Critical: true},
			// The canary's p99 at most 15% above stable's, interval by interval; harm shown at
			// two looks rolls back.
			{Name: "latency_p99", Builtin: spec.BuiltinLatencyP99, MaxDeviationPercent: percent(15)},
		},
	}
	for _, w := range weights() {
		r.Steps = append(r.Steps, spec.Step{SetWeight: &w, Analyze: scaled(stepAnalysis)})
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("demo rollout: %w", err)
	}
	return r, nil
}
