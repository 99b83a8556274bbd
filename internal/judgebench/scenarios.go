package judgebench

import "fmt"

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
