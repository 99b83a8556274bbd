package metrics

import "math"

// Harm may start after the window opens (a leak, a cache that expires, a dependency that
// fails). A test started at the window's first interval must then first climb back over the
// evidence of the quiet intervals before the fault; an e-detector does not. It mixes e-processes
// started at every interval j, with weights w_j that sum to one:
//
//	M_t = Σ_k v_k Σ_{j≤t} w_j Π_{i=j..t} L_i(θ_k)
//
// (v_k the weights of the alternatives θ_k, L_i their likelihood ratios). Each inner product is
// a nonnegative supermartingale under "no harm in any interval" that is 1 before it starts, so
// M_t is one too, and by Ville's inequality P(sup_t M_t ≥ 1/α) ≤ α: the same bound per window
// as a single test, not merely an average run length. It is a Shiryaev–Roberts statistic
// Σ_j Π_{i=j..t} L_i with a proper prior w_j on the change point.
//
// Most harm starts with the new version, at the window's first interval, so that start keeps
// two thirds of the weight (costing log 3/2 ≈ 0.4 nats there); later starts share the rest as
// w_j = ⅓·(s+1)/((j+s)(j+s+1)), which sums to ⅓ over j ≥ 1 and falls off slowly for s
// intervals: a fault at interval 30 costs log(1/w_30) ≈ 5.9 nats of evidence more than a test
// told when it began.
const (
	firstStartWeight = 2.0 / 3
	startSpread      = 20
)

// logStartWeight is log w_j, the weight of the e-process started at interval j.
func logStartWeight(j int) float64 {
	if j == 0 {
		return math.Log(firstStartWeight)
	}
	s := float64(startSpread)
	x := float64(j) + s
	return math.Log(1-firstStartWeight) + math.Log(s+1) - math.Log(x) - math.Log(x+1)
}

// changeDetector is M_t for a fixed mixture of alternatives, in logs: for each alternative k,
// logS[k] = log Σ_{j≤t} w_j Π_{i=j..t} L_i(θ_k), updated as S_t = L_t·(S_{t−1} + w_t).
type changeDetector struct {
	logWeights []float64 // log v_k
	logS       []float64
	started    bool
}

func newChangeDetector(logWeights []float64) *changeDetector {
	d := &changeDetector{logWeights: logWeights, logS: make([]float64, len(logWeights))}
	for k := range d.logS {
		d.logS[k] = math.Inf(-1)
	}
	return d
}

// add takes interval i's log likelihood ratios, one per alternative.
func (d *changeDetector) add(i int, logL []float64) {
	lw := logStartWeight(i)
	for k, l := range logL {
		d.logS[k] = l + logAddExp(d.logS[k], lw)
	}
	d.started = true
}

// logE is log M_t (−Inf before any interval).
func (d *changeDetector) logE() float64 {
	if !d.started {
		return math.Inf(-1)
	}
	return weightedLogSumExp(d.logWeights, d.logS)
}

// mixture is Σ_k v_k Π_i L_i(θ_k) from the window's first interval: the safety test.
type mixture struct {
	logWeights []float64
	sums       []float64
}

func newMixture(logWeights []float64) *mixture {
	return &mixture{logWeights: logWeights, sums: make([]float64, len(logWeights))}
}

func (m *mixture) add(logL []float64) {
	for k, l := range logL {
		m.sums[k] += l
	}
}

func (m *mixture) logE() float64 { return weightedLogSumExp(m.logWeights, m.sums) }

// logAddExp is log(e^a + e^b) without overflow.
func logAddExp(a, b float64) float64 {
	switch {
	case math.IsInf(a, -1):
		return b
	case math.IsInf(b, -1):
		return a
	case a > b:
		return a + math.Log1p(math.Exp(b-a))
	}
	return b + math.Log1p(math.Exp(a-b))
}

// weightedLogSumExp is log Σ_k e^(w_k + x_k) without overflow.
func weightedLogSumExp(w, x []float64) float64 {
	m := math.Inf(-1)
	for k := range x {
		m = math.Max(m, w[k]+x[k])
	}
	if math.IsInf(m, 0) {
		return m
	}
	var sum float64
	for k := range x {
		sum += math.Exp(w[k] + x[k] - m)
	}
	return m + math.Log(sum)
}

// uniformLogWeights is log(1/n) n times.
func uniformLogWeights(n int) []float64 {
	w := make([]float64, n)
	for k := range w {
		w[k] = -math.Log(float64(n))
	}
	return w
}
