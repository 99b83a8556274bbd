package judgebench

import (
	"math"

	"github.com/perchhq/perch/metrics"
)

// Oracle is Wald's sequential probability ratio test told the truth: the scenario's effect,
// its onset and the noise model. On the same data and at the same per-check alpha as the judge,
// it tests each harmful check's true effect against the tolerance (the null's boundary), from
// the onset on, and rolls back when the likelihood ratio reaches Family/alpha. No valid test is
// faster on average at that effect (Wald and Wolfowitz 1948), so its delay is the limit a
// judge that does not know the effect can be measured against.
//
// It returns the interval (0-based) at which the first harmful check's ratio crossed, or -1.
func (s Scenario) Oracle(r Rollout, alpha float64) int {
	threshold := math.Log(numChecks / alpha)
	first := -1
	for _, llr := range []func(i int) float64{s.errorsLLR(r), s.latencyLLR(r)} {
		if llr == nil {
			continue
		}
		sum := 0.0
		for i := s.Onset; i < s.Intervals; i++ {
			if sum += llr(i); sum >= threshold {
				if first < 0 || i < first {
					first = i
				}
				break
			}
		}
	}
	return first
}

// errorsLLR is the log likelihood ratio of interval i's errors under the true effect against
// the tolerance, or nil when the errors are within tolerance.
func (s Scenario) errorsLLR(r Rollout) func(i int) float64 {
	c := s.ErrorsCriteria()
	if c.MaxIncrease != nil {
		// Absolute: both versions' errors are random, and the null (canary rate = stable
		// rate + a) leaves the stable rate free. The test told the truth takes the null point
		// nearest to it (the least favourable one: its Kullback-Leibler projection onto the
		// null) and is the Poisson likelihood ratio of the truth against that point.
		a := *c.MaxIncrease
		if s.ErrorRate*(s.ErrorFactor-1) <= a {
			return nil
		}
		return func(i int) float64 {
			e, n, f, m, pb := r.CanaryErrors[i], r.CanaryRequests[i], r.StableErrors[i], r.StableRequests[i], r.StableRate[i]
			pc := math.Min(1, pb*s.ErrorFactor)
			if n == 0 || m == 0 || pc <= pb+a {
				return 0
			}
			q := nearestNull(pc, pb, a, n, m)
			return e*math.Log(pc/(q+a)) + f*math.Log(pb/q) - n*(pc-q-a) - m*(pb-q)
		}
	}
	r0 := 1 + *c.MaxDeviationPercent/100
	if s.ErrorFactor <= r0 {
		return nil
	}
	// Relative: given the interval's errors, the canary's are Binomial(E, π(ratio)), the test
	// the judge runs, told the true ratio.
	return func(i int) float64 {
		rho := r.CanaryRequests[i] / r.StableRequests[i]
		if r.CanaryRequests[i] == 0 || r.StableRequests[i] == 0 {
			return 0
		}
		pi := func(ratio float64) float64 { return ratio * rho / (ratio*rho + 1) }
		p1, p0 := pi(s.ErrorFactor), pi(r0)
		e, f := r.CanaryErrors[i], r.StableErrors[i]
		return e*math.Log(p1/p0) + f*math.Log((1-p1)/(1-p0))
	}
}

// latencyLLR is the log likelihood ratio of interval i's canary-minus-stable log p95 under the
// true shift against the tolerance, with the scenario's noise: sampling and instance noise on
// each side (wide in a tenth of intervals with heavy tails) and outlier minutes (×3). Shared
// load and bursts cancel in the difference. Nil when the latency is within tolerance.
func (s Scenario) latencyLLR(r Rollout) func(i int) float64 {
	c := s.LatencyCriteria()
	d1, d0 := math.Log(s.LatencyFactor), math.Log1p(*c.MaxDeviationPercent/100)
	if d1 <= d0 {
		return nil
	}
	// Each side's noise beyond sampling is a mixture: (weight, shift, variance).
	type part struct{ w, shift, v float64 }
	jitters := []part{{1, 0, instanceJitter * instanceJitter}}
	if s.HeavyTails {
		jitters = []part{{1 - heavyChance, 0, instanceJitter * instanceJitter}, {heavyChance, 0, heavyJitter * heavyJitter}}
	}
	var side []part
	for _, j := range jitters {
		side = append(side, part{j.w * (1 - s.Outliers), 0, j.v})
		if s.Outliers > 0 {
			side = append(side, part{j.w * s.Outliers, math.Log(3), j.v})
		}
	}
	var diff []part // canary's noise minus the stable version's
	for _, a := range side {
		for _, b := range side {
			diff = append(diff, part{a.w * b.w, a.shift - b.shift, a.v + b.v})
		}
	}
	logDensity := func(x, sampling float64) float64 {
		var terms []float64
		for _, p := range diff {
			v := p.v + sampling
			z := x - p.shift
			terms = append(terms, math.Log(p.w)-0.5*math.Log(2*math.Pi*v)-z*z/(2*v))
		}
		return logSumExp(terms)
	}
	return func(i int) float64 {
		x, y := r.CanaryLatency[i], r.StableLatency[i]
		if !(x > 0 && y > 0) || math.IsNaN(r.SamplingVar[i]) {
			return 0
		}
		d := math.Log(x) - math.Log(y)
		return logDensity(d-d1, r.SamplingVar[i]) - logDensity(d-d0, r.SamplingVar[i])
	}
}

// nearestNull is the stable rate q of the null point (q+a, q) nearest to the truth (pc, pb)
// for n canary and m stable requests of Poisson counts: the root of
// n·(1 − pc/(q+a)) + m·(1 − pb/q) = 0, found by bisection (the left side increases in q).
func nearestNull(pc, pb, a, n, m float64) float64 {
	lo, hi := pb*1e-6, pc
	for range 100 {
		q := (lo + hi) / 2
		if n*(1-pc/(q+a))+m*(1-pb/q) < 0 {
			lo = q
		} else {
			hi = q
		}
	}
	return (lo + hi) / 2
}

func logSumExp(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	var sum float64
	for _, x := range v {
		sum += math.Exp(x - m)
	}
	return m + math.Log(sum)
}

// ErrorsCriteria is the errors check's criteria in this scenario.
func (s Scenario) ErrorsCriteria() metrics.Criteria {
	if s.Errors != nil {
		c := *s.Errors
		c.Family = numChecks
		return c
	}
	return metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: &errorTolerance, Family: numChecks}
}

// LatencyCriteria is the latency check's criteria in this scenario.
func (s Scenario) LatencyCriteria() metrics.Criteria {
	if s.Latency != nil {
		c := *s.Latency
		c.Family = numChecks
		return c
	}
	return metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: &latencyTolerance, Family: numChecks}
}
