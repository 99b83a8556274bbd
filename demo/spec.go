package demo

import (
	"fmt"
	"slices"
	"time"

	"github.com/perchhq/perch/engine/schedule"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/segment"
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
	// OverrideTokenEnv names, in the demo's rollout, the variable an override token would be
	// read from.
	OverrideTokenEnv = "PERCH_DEMO_OVERRIDE_TOKEN"
)

// The segments-and-flags scenario's segment, flag and release freeze. The freeze covers the
// end of the 1% step (about 40 s in), whatever the step before it took.
const (
	// Employees are the demo's users 0 to 499 (5% of them), by their user header.
	Employees    = "user-[0-4]?[0-9]?[0-9]"
	DemoFlag     = "new-dashboard"
	freezeFrom   = 30 * time.Second
	freezeLength = 25 * time.Second
)

// Strategies is what a scenario with Strategies needs beyond the proxy: the flagd file the
// flag step rewrites, and when the rollout starts (the freeze is placed from it).
type Strategies struct {
	FlagsFile string
	Start     time.Time
}

// Spec is the demo's rollout over a proxy at proxyAddr in front of the two backends, with
// every duration divided by speed. It goes through Validate like a rollout file.
func Spec(scenario string, speed float64, proxyAddr, stableURL, canaryURL string) (*spec.Rollout, error) {
	return SpecWith(Scenario{Name: scenario}, speed, proxyAddr, stableURL, canaryURL, Strategies{})
}

// SpecWith is Spec for a scenario, which with Strategies begins with a segment step and a flag
// step (the flag in st.FlagsFile) and meets a release freeze placed from st.Start.
func SpecWith(scenario Scenario, speed float64, proxyAddr, stableURL, canaryURL string, st Strategies) (*spec.Rollout, error) {
	scaled := func(d time.Duration) spec.Duration { return spec.Duration(time.Duration(float64(d) / speed)) }
	percent := func(v float64) *float64 { return &v }
	r := &spec.Rollout{
		Name: "demo-" + scenario.Name,
		Traffic: spec.Traffic{Proxy: &spec.ProxyTraffic{
			Listen: proxyAddr,
			Stable: stableURL,
			Canary: canaryURL,
			Sticky: &spec.ProxySticky{Header: UserHeader},
			// The run's own token (Stack.OverrideToken) goes to the proxy directly; the rollout
			// names where one would come from, so its journal holds no secret.
			Override: &spec.ProxyOverride{Header: OverrideHeader, Token: "${" + OverrideTokenEnv + "}"},
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
	if scenario.Strategies {
		twenty := 20
		employees := &segment.Segment{Name: "employees", Match: segment.Match{Header: &segment.HeaderMatch{Name: UserHeader, Regex: Employees}}}
		r.Steps = append(r.Steps,
			spec.Step{Segment: employees, Analyze: scaled(stepAnalysis)},
			spec.Step{SetFlag: &spec.SetFlag{Flag: DemoFlag, Percent: &twenty}})
		r.Flags = &spec.Flags{Flagd: &spec.FlagdFlags{File: st.FlagsFile}}
		from := st.Start.Add(time.Duration(scaled(freezeFrom))).UTC()
		to := from.Add(time.Duration(scaled(freezeLength)))
		r.Schedule = &schedule.Config{Timezone: "UTC", Freeze: []schedule.Freeze{{From: from.Format(time.RFC3339), To: to.Format(time.RFC3339)}}}
	}
	for _, w := range weights() {
		r.Steps = append(r.Steps, spec.Step{SetWeight: &w, Analyze: scaled(stepAnalysis)})
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("demo rollout: %w", err)
	}
	return r, nil
}
