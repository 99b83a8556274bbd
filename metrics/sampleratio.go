package metrics

import (
	"fmt"
	"math"
)

// Traffic is the traffic behind a check: the split the router was set to, which the
// sequential judge checks the observed requests against (the sample ratio guard), and for a
// sample check the requests each value rests on. The engine knows the weight of every interval;
// a source knows each side's requests.
type Traffic struct {
	// Weights is the percent of the two sides' requests the router is set to send to the
	// canary, per interval: its weight, when the baseline is the stable version taking the
	// rest. A slice shorter than the series holds its last value for the later intervals, so a
	// window at one weight passes one value. NaN, 0 and 100 leave an interval unchecked.
	Weights []float64 `json:"weights"`
	// Canary and Baseline are each side's requests per interval, for a sample check whose
	// source counts them (a count check's totals are used instead): what the guard tests, and
	// what tells a quantile check whether each side had enough requests for its quantile.
	Canary   []float64 `json:"canary,omitempty"`
	Baseline []float64 `json:"baseline,omitempty"`
}

// weightAt is interval i's weight as a fraction, and whether there is one to check.
func (s *Traffic) weightAt(i int) (float64, bool) {
	if s == nil || len(s.Weights) == 0 {
		return 0, false
	}
	w := s.Weights[min(i, len(s.Weights)-1)] / 100
	return w, w > 0 && w < 1
}

// ratioBand is how far, as a factor on the odds, the canary's share of requests may stray from
// its weight before the split counts as broken: a provider's rounding, connection reuse and
// counters scraped a moment apart move it a little; a stale provider, misrouting or a canary
// that receives nothing move it far.
const ratioBand = 1.5

// sampleRatio is the sample ratio guard: an always-valid test of the canary's share of each
// interval's requests against its weight. Given the interval's requests N = nc + nb, the
// canary's are Binomial(N, p); the null is that p's odds are within ratioBand of the weight's,
// and the e-process is an e-detector (detector.go) over alternatives beyond either edge —
// half its weight on too few, half on too many — since a split can break mid-window (a pod
// dies, a provider is changed by hand).
type sampleRatio struct {
	split        *Traffic
	totals       func(i int) (nc, nb float64, ok bool)
	low, high    *changeDetector
	shifts       []float64
	ll, hl       []float64
	nc, n, wsum  float64 // pooled requests and weight, for the reason
	intervals    int
	mismatchAt   int // first interval whose evidence reached the threshold, -1 if none
	logThreshold float64
	pMin         float64
}

func newSampleRatio(split *Traffic, totals func(i int) (nc, nb float64, ok bool), alpha float64) *sampleRatio {
	g := effectGrid()
	return &sampleRatio{
		split: split, totals: totals, shifts: g,
		low: newChangeDetector(uniformLogWeights(len(g))), high: newChangeDetector(uniformLogWeights(len(g))),
		ll: make([]float64, len(g)), hl: make([]float64, len(g)),
		mismatchAt: -1, logThreshold: -math.Log(alpha), pMin: 1,
	}
}

// add takes interval i.
func (t *sampleRatio) add(i int) {
	clear(t.ll)
	clear(t.hl)
	w, checked := t.split.weightAt(i)
	nc, nb, ok := t.totals(i)
	if checked && ok && nc+nb > 0 {
		t.nc, t.n, t.wsum, t.intervals = t.nc+nc, t.n+nc+nb, t.wsum+w, t.intervals+1
		edge := math.Log(w / (1 - w))
		binomialLR := func(l1, l0 float64) float64 {
			// log q = −softplus(−l), log(1−q) = −softplus(l) for log odds l.
			return nc*(softplus(-l0)-softplus(-l1)) + nb*(softplus(l0)-softplus(l1))
		}
		lowEdge, highEdge := edge-math.Log(ratioBand), edge+math.Log(ratioBand)
		for k, g := range t.shifts {
			t.ll[k] = binomialLR(lowEdge-g, lowEdge)
			t.hl[k] = binomialLR(highEdge+g, highEdge)
		}
	}
	t.low.add(i, t.ll)
	t.high.add(i, t.hl)
	logE := logAddExp(t.low.logE(), t.high.logE()) - math.Ln2
	t.pMin = math.Min(t.pMin, pFromLogE(logE))
	if t.mismatchAt < 0 && logE >= t.logThreshold {
		t.mismatchAt = i
	}
}

// share is the canary's pooled share of requests and the mean weight over the checked intervals.
func (t *sampleRatio) share() (share, weight float64) {
	if t.n == 0 {
		return math.NaN(), math.NaN()
	}
	return t.nc / t.n, t.wsum / float64(t.intervals)
}

// reason says what the guard found, in words.
func (t *sampleRatio) reason() string {
	share, weight := t.share()
	return fmt.Sprintf("canary got %s of requests at weight %s (split off since interval %d, always-valid p %s)",
		percentText(share), percentText(weight), t.mismatchAt+1, formatP(t.pMin))
}

// percentText writes a fraction as a percentage with two significant digits.
func percentText(f float64) string {
	return fmt.Sprintf("%.2g%%", f*100)
}

// softplus is log(1 + e^x), computed without overflow.
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}
