// Package judgebench measures perch's judges on synthetic rollouts whose truth is known: how
// often each rolls back a canary that is as good as the baseline, how often and how fast it
// catches one that is worse. The simulation draws what a Prometheus range query would answer
// each interval: request and error counts per version, and a p95 latency per version.
package judgebench

import (
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/perchhq/perch/metrics"
)

// Scenario is a rollout step with a known truth, simulated interval by interval.
type Scenario struct {
	Name  string
	Truth Truth

	Intervals       int     // looks taken, one per interval
	IntervalSeconds float64 // length of an interval
	CanaryRPS       float64 // mean canary requests per second
	StableRPS       float64 // mean baseline (stable) requests per second

	ErrorRate     float64 // baseline's chance that a request fails
	ErrorFactor   float64 // the canary's error rate is this times the baseline's (1: same)
	LatencyFactor float64 // the canary's latency is this times the baseline's (1: same)
	Onset         int     // interval at which the canary's difference begins (0: from the start)

	// Seasonal traffic (±50% over a 20-minute cycle) and shared bursts: in 5% of intervals
	// both versions' errors rise ×5 and latency ×1.5 (a dependency hiccup).
	Seasonal bool
	// BurstChance, when set, is the chance of a shared burst per interval instead of 5%, and
	// BurstErrors the factor on both versions' error rates during one (5 when 0).
	BurstChance, BurstErrors float64
	// Outliers is the chance, per interval and version, of an outlier minute: latency ×3 on
	// that version alone (a noisy neighbour, a GC storm).
	Outliers float64
	// HeavyTails makes each version's instance noise heavy-tailed: in 10% of intervals its
	// spread is five times the usual 3%.
	HeavyTails bool

	// Shift, when set, changes the traffic from interval Shift.At on: the weight moved in the
	// middle of the window.
	Shift *TrafficShift
	// Delivered is the part of the canary's traffic that reaches it (1 when 0): at 0.04, a
	// weight of 5% gives the canary 0.2% of requests and the rest goes to the stable version.
	Delivered float64

	// Errors and Latency are the two checks' criteria (the benchmark's defaults when nil:
	// errors within +10%, p95 latency within +5%).
	Errors, Latency *metrics.Criteria
}

// TrafficShift is new request rates from interval At on.
type TrafficShift struct {
	At                   int
	CanaryRPS, StableRPS float64
}

// Truth is what a judge should make of a scenario.
type Truth string

// The truths: harm beyond tolerance should roll back, a change within it should not, and one
// exactly at the tolerance may go either way.
const (
	Harmful     Truth = "harmful"
	Safe        Truth = "safe"
	AtTolerance Truth = "at tolerance"
)

// Latency model: request latencies are log-normal with median 100 ms and log-sd 0.5; a check
// reads each interval's p95, whose sampling error shrinks with the interval's requests.
const (
	medianLatency = 0.100
	logSD         = 0.5
	p95Z          = 1.6448536269514722
	// The p95 estimate's log-sd is logSD·sqrt(q(1−q))/φ(z)/sqrt(n) for n requests.
	p95ErrorFactor = logSD * 2.114 // sqrt(0.95·0.05)/φ(1.645) = 2.114
	// Each version's instances add their own noise to each interval's p95.
	instanceJitter = 0.03
	burstChance    = 0.05
)

// Rollout is one simulated run: per interval, counts and p95 latency for each version, the
// weight the router was set to, and what the oracle is told of the truth.
type Rollout struct {
	CanaryErrors, CanaryRequests, StableErrors, StableRequests []float64
	CanaryLatency, StableLatency                               []float64
	// Weights is the canary's weight in percent, as set, per interval.
	Weights []float64
	// StableRate is the stable version's true error rate per interval (bursts included), and
	// SamplingVar the variance of each interval's canary-minus-stable log p95 from the
	// requests' sampling alone (instance noise and outliers come on top).
	StableRate, SamplingVar []float64
}

// Simulate draws run number run of the scenario; the same scenario name and run give the same
// rollout.
func (s Scenario) Simulate(run int) Rollout {
	h := fnv.New64a()
	h.Write([]byte(s.Name))
	rng := rand.New(rand.NewPCG(h.Sum64(), uint64(run)))
	n := s.Intervals
	r := Rollout{
		CanaryErrors: make([]float64, n), CanaryRequests: make([]float64, n),
		StableErrors: make([]float64, n), StableRequests: make([]float64, n),
		CanaryLatency: make([]float64, n), StableLatency: make([]float64, n),
		Weights: make([]float64, n), StableRate: make([]float64, n), SamplingVar: make([]float64, n),
	}
	phase := rng.Float64() * 2 * math.Pi
	bursts, burstErrors := burstChance, 5.0
	if s.BurstChance > 0 {
		bursts = s.BurstChance
	}
	if s.BurstErrors > 0 {
		burstErrors = s.BurstErrors
	}
	for i := range n {
		load, errBoost, latBoost := 1.0, 1.0, 0.0
		if s.Seasonal {
			load = 1 + 0.5*math.Sin(phase+2*math.Pi*float64(i)*s.IntervalSeconds/1200)
			if rng.Float64() < bursts {
				errBoost, latBoost = burstErrors, math.Log(1.5)
			}
		}
		errFactor, latFactor := 1.0, 1.0
		if i >= s.Onset {
			errFactor, latFactor = s.ErrorFactor, s.LatencyFactor
		}
		canaryRPS, stableRPS := s.CanaryRPS, s.StableRPS
		if s.Shift != nil && i >= s.Shift.At {
			canaryRPS, stableRPS = s.Shift.CanaryRPS, s.Shift.StableRPS
		}
		r.Weights[i] = 100 * canaryRPS / (canaryRPS + stableRPS)
		if s.Delivered > 0 {
			// Misrouted: the canary gets a part of its share, the stable version the rest.
			canaryRPS, stableRPS = canaryRPS*s.Delivered, stableRPS+canaryRPS*(1-s.Delivered)
		}
		nc := poisson(rng, canaryRPS*s.IntervalSeconds*load)
		nb := poisson(rng, stableRPS*s.IntervalSeconds*load)
		pb := math.Min(1, s.ErrorRate*errBoost)
		pc := math.Min(1, pb*errFactor)
		r.CanaryRequests[i], r.StableRequests[i] = nc, nb
		r.CanaryErrors[i], r.StableErrors[i] = binomial(rng, nc, pc), binomial(rng, nb, pb)
		r.StableRate[i] = pb
		shared := math.Log(medianLatency) + logSD*p95Z + latBoost
		r.CanaryLatency[i] = s.p95(rng, nc, shared+math.Log(latFactor))
		r.StableLatency[i] = s.p95(rng, nb, shared)
		r.SamplingVar[i] = p95Variance(nc) + p95Variance(nb)
	}
	return r
}

// p95Variance is the variance of one interval's log p95 from n requests' sampling alone.
func p95Variance(n float64) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return p95ErrorFactor * p95ErrorFactor / n
}

// heavyJitter is the instance noise's spread in the intervals where HeavyTails widens it, and
// heavyChance how often it does.
const (
	heavyJitter = 5 * instanceJitter
	heavyChance = 0.1
)

// p95 is one interval's measured p95 for n requests around the true log p95: NaN with no
// requests, as histogram_quantile answers.
func (s Scenario) p95(rng *rand.Rand, n, logTrue float64) float64 {
	if n == 0 {
		return math.NaN()
	}
	jitter := instanceJitter
	if s.HeavyTails && rng.Float64() < heavyChance {
		jitter = heavyJitter
	}
	v := logTrue + rng.NormFloat64()*p95ErrorFactor/math.Sqrt(n) + rng.NormFloat64()*jitter
	if rng.Float64() < s.Outliers {
		v += math.Log(3)
	}
	return math.Exp(v)
}

// poisson draws a Poisson count: by multiplication of uniforms for small means, by the normal
// approximation (rounded, at least 0) for large ones, where the difference does not matter here.
func poisson(rng *rand.Rand, mean float64) float64 {
	if mean <= 0 {
		return 0
	}
	if mean > 200 {
		return math.Max(0, math.Round(mean+math.Sqrt(mean)*rng.NormFloat64()))
	}
	limit, k, p := math.Exp(-mean), 0.0, rng.Float64()
	for p > limit {
		k++
		p *= rng.Float64()
	}
	return k
}

// binomial draws Binomial(n, p) exactly by skipping geometric gaps between successes.
func binomial(rng *rand.Rand, n, p float64) float64 {
	switch {
	case p <= 0 || n <= 0:
		return 0
	case p >= 1:
		return n
	case p > 0.5:
		return n - binomial(rng, n, 1-p)
	}
	logQ := math.Log1p(-p)
	var k, pos float64
	for {
		pos += math.Floor(math.Log(1-rng.Float64())/logQ) + 1
		if pos > n {
			return k
		}
		k++
	}
}
