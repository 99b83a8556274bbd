package metrics

import "math"

// outlook is what a test's data so far say about the time to a decision: how fast its harm
// and safety evidence should grow from here if the canary goes on as it has (nats per interval,
// at the current traffic), and the smallest harm the evidence so far would show — had the
// canary had it all along, the expected evidence would reach the harm threshold by now.
type outlook struct {
	harmRate, safeRate float64
	// detectable is that harm as the check's tolerance measures it: a relative change in
	// percent (relative) or an increase in the metric's unit; NaN when none would show yet.
	detectable float64
	relative   bool
}

// forecaster is a test that can give its outlook; need is the evidence (nats) harm needs in all.
type forecaster interface {
	outlook(need float64) outlook
}

// mixtureCost is roughly what not knowing the effect costs a mixture at the evidence where it
// decides (Laplace: ½·log(nI/2π) plus the prior's density term, 1 to 1.5 nats), for outlooks.
const mixtureCost = 1.5

// recentIntervals is how many of the newest intervals stand for "the current traffic".
const recentIntervals = 10

// countSums keeps what a count test's outlook needs: pooled counts over the used intervals and
// the newest intervals' requests and events.
type countSums struct {
	ec, nc, eb, nb float64
	recent         [][4]float64
}

func (s *countSums) add(ec, nc, eb, nb float64) {
	s.ec, s.nc, s.eb, s.nb = s.ec+ec, s.nc+nc, s.eb+eb, s.nb+nb
	s.recent = append(s.recent, [4]float64{ec, nc, eb, nb})
	if len(s.recent) > recentIntervals {
		s.recent = s.recent[1:]
	}
}

// perInterval is the newest intervals' mean canary and baseline requests and events.
func (s *countSums) perInterval() (ec, nc, eb, nb float64) {
	for _, r := range s.recent {
		ec, nc, eb, nb = ec+r[0], nc+r[1], eb+r[2], nb+r[3]
	}
	n := float64(max(len(s.recent), 1))
	return ec / n, nc / n, eb / n, nb / n
}

// binomialKL is KL(Bernoulli(p) ‖ Bernoulli(q)).
func binomialKL(p, q float64) float64 {
	kl := 0.0
	if p > 0 {
		kl += p * math.Log(p/q)
	}
	if p < 1 {
		kl += (1 - p) * math.Log((1-p)/(1-q))
	}
	return kl
}

// ratioOutlook is the ratio test's outlook: given the interval's events E, the evidence grows by
// E·KL(π(r̂) ‖ π(r0)) per interval at the estimated ratio r̂; the smallest detectable ratio is
// the one whose expected evidence over the events so far reaches need.
func ratioOutlook(s *countSums, r0, sign, need float64) outlook {
	o := outlook{detectable: math.NaN(), relative: true}
	if s.nc == 0 || s.nb == 0 || s.ec+s.eb == 0 {
		return o
	}
	share := func(r, rho float64) float64 { return r * rho / (r*rho + 1) }
	ec, nc, eb, nb := s.perInterval()
	if s.eb > 0 && nb > 0 {
		rHat := (s.ec / s.nc) / (s.eb / s.nb)
		rate := (ec + eb) * binomialKL(share(rHat, nc/nb), share(r0, nc/nb))
		if sign*(rHat-r0) > 0 {
			o.harmRate = rate
		} else {
			o.safeRate = rate
		}
	}
	rho := s.nc / s.nb
	evidence := func(g float64) float64 {
		return (s.ec + s.eb) * binomialKL(share(r0*math.Exp(sign*g), rho), share(r0, rho))
	}
	if g, ok := smallestReaching(evidence, need, 10); ok {
		o.detectable = (r0*math.Exp(sign*g) - 1) * 100
	}
	return o
}

// absoluteOutlook is the absolute test's outlook: the growth of its best bet at the estimated
// rates, per interval at the current traffic; the smallest detectable increase is the one whose
// best bet over the requests so far reaches need.
func absoluteOutlook(s *countSums, a, need float64) outlook {
	o := outlook{detectable: math.NaN()}
	if s.nc == 0 || s.nb == 0 {
		return o
	}
	pb := s.eb / s.nb
	_, nc, _, nb := s.perInterval()
	if nc > 0 && nb > 0 {
		pc := s.ec / s.nc
		harm, safe := bestBets(nc, nb, pc, pb, a)
		if pc > pb+a {
			o.harmRate = harm
		} else {
			o.safeRate = safe
		}
	}
	evidence := func(d float64) float64 {
		harm, _ := bestBets(s.nc, s.nb, math.Min(1, pb+a+d), pb, a)
		return harm
	}
	if d, ok := smallestReaching(evidence, need, 1-pb-a); ok {
		o.detectable = a + d
	}
	return o
}

// bestBets is the expected log e-value of the absolute test's best harm bet (λ > 0) and best
// safety bet (λ < 0) for nc and nb requests failing at pc and pb, over a fine grid of bets.
func bestBets(nc, nb, pc, pb, a float64) (harm, safe float64) {
	rho := nc / nb
	growth := func(lambda float64) float64 {
		grow := math.Expm1(lambda)
		if rho*grow >= 1 {
			return math.Inf(-1)
		}
		return lambda*nc*pc + math.Log1p(-rho*grow)*nb*pb - nc*math.Log1p(a*grow)
	}
	top := math.Log1p(0.5 / rho)
	for k := 1; k <= 64; k++ {
		harm = math.Max(harm, growth(top*float64(k)/64))
		safe = math.Max(safe, growth(-5*float64(k)/64))
	}
	return harm, safe
}

// tOutlook is the t-test's outlook on the winsorized d's: evidence grows by about
// mean²/(2·variance) per interval (the z statistic's growth), and the smallest detectable harm
// beyond tolerance is sd·√(2·need/n), shown by show.
func tOutlook(r run, need float64, show func(d float64) float64, relative bool) outlook {
	o := outlook{detectable: math.NaN(), relative: relative}
	if r.n < winsorMin {
		return o
	}
	variance := r.m2 / float64(r.n-1)
	if variance <= 0 {
		return o
	}
	rate := r.mean * r.mean / (2 * variance)
	if r.mean > 0 {
		o.harmRate = rate
	} else {
		o.safeRate = rate
	}
	o.detectable = show(math.Sqrt(variance * 2 * need / float64(r.n)))
	return o
}

// smallestReaching is the smallest x in (0, hi] with f(x) ≥ need for f increasing, by bisection.
func smallestReaching(f func(float64) float64, need, hi float64) (float64, bool) {
	if hi <= 0 || !(f(hi) >= need) {
		return 0, false
	}
	lo := 0.0
	for range 60 {
		mid := (lo + hi) / 2
		if f(mid) >= need {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, true
}
