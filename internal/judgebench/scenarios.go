package judgebench

import (
	"fmt"

	"github.com/perchhq/perch/metrics"
)

// The benchmark's rollout step: 30 minutes of 30-second intervals at a fixed canary weight,
// 1,000 requests per second in all, 1% of requests failing on the baseline.
const (
	intervals       = 60
	intervalSeconds = 30
	totalRPS        = 1000
	baseErrorRate   = 0.01
	outlierChance   = 0.02
)

func step(name string, canaryWeight float64) Scenario {
	return Scenario{
		Name: name, Intervals: intervals, IntervalSeconds: intervalSeconds,
		CanaryRPS: totalRPS * canaryWeight, StableRPS: totalRPS * (1 - canaryWeight),
		ErrorRate: baseErrorRate, ErrorFactor: 1, LatencyFactor: 1, Outliers: outlierChance, Truth: Safe,
	}
}

// Scenarios are the benchmark's cases, A/A first.
func Scenarios() []Scenario {
	var out []Scenario
	aa := step("A/A steady, 1% weight", 0.01)
	out = append(out, aa)
	aa5 := step("A/A steady, 5% weight", 0.05)
	out = append(out, aa5)
	seasonal := step("A/A seasonal + shared bursts, 5%", 0.05)
	seasonal.Seasonal = true
	out = append(out, seasonal)
	slow := step("A/A at 1 rps canary", 0.01)
	slow.CanaryRPS, slow.StableRPS = 1, 99
	out = append(out, slow)
	for _, weight := range []float64{0.01, 0.05} {
		for _, factor := range []float64{1.2, 1.5, 2, 5} {
			s := step(fmt.Sprintf("errors ×%g, %g%% weight", factor, weight*100), weight)
			s.ErrorFactor, s.Truth = factor, Harmful
			out = append(out, s)
		}
	}
	for _, pct := range []float64{5, 10, 20} {
		s := step(fmt.Sprintf("latency +%g%%, 5%% weight", pct), 0.05)
		s.LatencyFactor = 1 + pct/100
		switch {
		case pct > latencyTolerance:
			s.Truth = Harmful
		case pct == latencyTolerance:
			s.Truth = AtTolerance
		}
		out = append(out, s)
	}
	fault := step("errors ×10 from minute 15, 1%", 0.01)
	fault.ErrorFactor, fault.Onset, fault.Truth = 10, intervals/2, Harmful
	out = append(out, fault)
	sub := step("sub-tolerance: errors ×1.05, latency +2%, 5%", 0.05)
	sub.ErrorFactor, sub.LatencyFactor = 1.05, 1.02
	out = append(out, sub)
	return out
}

// The setting of the oracle comparison: an hour of one-minute intervals, 600 requests a minute
// on each side (a canary and a baseline of the same size), 0.5% of requests failing, with
// seasonal traffic, shared bursts and outlier minutes.
const (
	oracleIntervals = 60
	oracleSeconds   = 60
	oracleRPS       = 10
	oracleErrorRate = 0.005
)

func oracleStep(name string) Scenario {
	return Scenario{
		Name: name, Intervals: oracleIntervals, IntervalSeconds: oracleSeconds,
		CanaryRPS: oracleRPS, StableRPS: oracleRPS, ErrorRate: oracleErrorRate,
		ErrorFactor: 1, LatencyFactor: 1, Outliers: outlierChance, Seasonal: true, Truth: Safe,
	}
}

// absolute is an errors check with an absolute tolerance (maxIncrease) of a.
func absolute(a float64) *metrics.Criteria {
	return &metrics.Criteria{Direction: metrics.LowerIsBetter, MaxIncrease: &a}
}

// OracleScenarios are the cases perch is measured on beside the oracle: A/A first, then harm
// from the window's start, harm that starts mid-window, and traffic that is not what the
// weight says.
func OracleScenarios() []Scenario {
	var out []Scenario
	add := func(s Scenario, change func(*Scenario)) {
		if change != nil {
			change(&s)
		}
		out = append(out, s)
	}
	add(oracleStep("A/A"), nil)
	add(oracleStep("A/A errors, maxIncrease 0.1 pp"), func(s *Scenario) { s.Errors = absolute(0.001) })
	add(oracleStep("A/A errors, maxIncrease 0.1 pp at 60 req/min"), func(s *Scenario) {
		s.Errors, s.CanaryRPS, s.StableRPS = absolute(0.001), 1, 1
	})
	add(oracleStep("A/A at 60 req/min"), func(s *Scenario) { s.CanaryRPS, s.StableRPS = 1, 1 })
	add(oracleStep("A/A heavy tails"), func(s *Scenario) { s.HeavyTails = true })
	add(oracleStep("A/A heavy bursts"), func(s *Scenario) { s.BurstChance, s.BurstErrors = 0.2, 20 })
	add(oracleStep("A/A weight 5% → 25% at minute 20"), func(s *Scenario) {
		s.CanaryRPS, s.StableRPS = 1, 19
		s.Shift = &TrafficShift{At: 20, CanaryRPS: 5, StableRPS: 15}
	})
	add(oracleStep("A/A misrouted: weight 5%, canary gets 0.2%"), func(s *Scenario) {
		s.CanaryRPS, s.StableRPS, s.Delivered = 1, 19, 0.04
	})
	harm := func(name string, change func(*Scenario)) {
		add(oracleStep(name), func(s *Scenario) {
			s.Truth = Harmful
			change(s)
		})
	}
	harm("errors ×2, tolerance +10%", func(s *Scenario) { s.ErrorFactor = 2 })
	harm("errors ×1.5, tolerance +10%", func(s *Scenario) { s.ErrorFactor = 1.5 })
	harm("errors ×3 at 60 req/min", func(s *Scenario) { s.ErrorFactor, s.CanaryRPS, s.StableRPS = 3, 1, 1 })
	harm("errors ×10 from minute 30", func(s *Scenario) { s.ErrorFactor, s.Onset = 10, 30 })
	harm("errors ×2 from minute 30", func(s *Scenario) { s.ErrorFactor, s.Onset = 2, 30 })
	harm("errors ×2, maxIncrease 0.1 pp", func(s *Scenario) { s.ErrorFactor, s.Errors = 2, absolute(0.001) })
	harm("errors ×2, heavy bursts", func(s *Scenario) { s.ErrorFactor, s.BurstChance, s.BurstErrors = 2, 0.2, 20 })
	harm("errors ×2, weight 5% → 25% at minute 20", func(s *Scenario) {
		s.ErrorFactor, s.CanaryRPS, s.StableRPS = 2, 1, 19
		s.Shift = &TrafficShift{At: 20, CanaryRPS: 5, StableRPS: 15}
	})
	harm("latency +10%, tolerance +5%", func(s *Scenario) { s.LatencyFactor = 1.1 })
	harm("latency +20%, tolerance +5%", func(s *Scenario) { s.LatencyFactor = 1.2 })
	harm("latency +10%, heavy tails", func(s *Scenario) { s.LatencyFactor, s.HeavyTails = 1.1, true })
	harm("latency +20% from minute 30", func(s *Scenario) { s.LatencyFactor, s.Onset = 1.2, 30 })
	return out
}
