package demo

import (
	"fmt"
	"time"

	"github.com/perchhq/perch/engine"
)

// The demo rollout at speed 1: four steps of 15 s, each after 3 s of stabilization, looked at
// every 2 s, so each step gets seven or eight looks and a whole rollout takes about 75 s.
const (
	stepAnalysis  = 15 * time.Second
	stabilization = 3 * time.Second
	interval      = 2 * time.Second
)

// Headers the demo proxy routes on: users stick by the first, testers pin with the second.
const (
	UserHeader     = "X-Perch-User"
	OverrideHeader = "X-Perch-Version"
)

// demoJudge judges every check until the sequential judge lands in metrics.New.
const demoJudge = "threshold"

// Spec is the demo's rollout over a proxy at proxyAddr in front of the two backends, with
// every duration divided by speed. It goes through Validate like a rollout file.
func Spec(scenario string, speed float64, proxyAddr, stableURL, canaryURL string) (*engine.Spec, error) {
	scaled := func(d time.Duration) engine.Duration { return engine.Duration(time.Duration(float64(d) / speed)) }
	percent := func(v float64) *float64 { return &v }
	spec := &engine.Spec{
		Name: "demo-" + scenario,
		Traffic: engine.Traffic{Proxy: &engine.ProxyTraffic{
			Listen:   proxyAddr,
			Stable:   stableURL,
			Canary:   canaryURL,
			Sticky:   &engine.ProxySticky{Header: UserHeader},
			Override: &engine.ProxyOverride{Header: OverrideHeader},
		}},
		Metrics: engine.Metrics{Builtin: &engine.BuiltinMetrics{}},
		Analysis: engine.Analysis{
			Interval:      scaled(interval),
			Stabilization: scaled(stabilization),
			Judge:         demoJudge,
			Inconclusive:  engine.InconclusiveHold,
			FailureLimit:  1,
		},
		Checks: []engine.Check{
			// Any rise of the error rate beyond 2 points rolls back at once.
			{Name: "error_rate", Builtin: engine.BuiltinErrorRate, MaxIncrease: percent(0.02), Critical: true},
			// A p99 25% above stable's twice in a step rolls back.
			{Name: "latency_p99", Builtin: engine.BuiltinLatencyP99, MaxDeviationPercent: percent(25)},
		},
	}
	for _, w := range []int{1, 5, 25, 50} {
		spec.Steps = append(spec.Steps, engine.Step{SetWeight: &w, Analyze: scaled(stepAnalysis)})
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("demo rollout: %w", err)
	}
	return spec, nil
}
