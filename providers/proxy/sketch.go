package proxy

import (
	"math"
	"math/bits"
	"time"

	"github.com/perchhq/perch/metrics"
)

// The latency sketch is a fixed log-linear histogram (the HDR histogram's layout): durations
// are counted in units of 1.024 µs; below 16 units each unit has its own bin, above it every
// power of two is split into 16 equal bins. A bin is therefore at most 1/16 of its lower bound
// wide, so a quantile read back is within 6.25% of the truth at worst and, interpolated inside
// its bin, usually well under 1% (see TestSketchAccuracy and the README). The fixed layout
// makes merging two sketches an addition of arrays, which is what the ring does per query step.
const (
	unitShift   = 10 // 1 unit = 1024 ns
	subBits     = 4  // 16 bins per power of two
	subBins     = 1 << subBits
	maxOctave   = 28 // 2^28 units ≈ 275 s; anything longer lands in the last bin
	sketchBins  = subBins + (maxOctave-subBits)*subBins
	lastBinUnit = 1<<maxOctave - 1
)

// sketch counts durations in sketchBins bins (1.5 KiB).
type sketch [sketchBins]uint32

// binOf is the bin a duration falls in.
func binOf(d time.Duration) int {
	if d < 0 {
		d = 0
	}
	u := uint64(d) >> unitShift
	if u < subBins {
		return int(u)
	}
	if u > lastBinUnit {
		u = lastBinUnit
	}
	octave := bits.Len64(u) - 1 // ≥ subBits
	sub := (u >> (octave - subBits)) & (subBins - 1)
	return subBins + (octave-subBits)*subBins + int(sub)
}

// binBounds is the range [lo, hi) of durations, in seconds, counted in bin i.
func binBounds(i int) (lo, hi float64) {
	const unit = float64(1 << unitShift)
	if i < subBins {
		return float64(i) * unit / 1e9, float64(i+1) * unit / 1e9
	}
	octave := (i-subBins)/subBins + subBits
	sub := (i - subBins) % subBins
	width := uint64(1) << (octave - subBits)
	loUnits := (uint64(subBins) + uint64(sub)) * width
	return float64(loUnits) * unit / 1e9, float64(loUnits+width) * unit / 1e9
}

func (s *sketch) add(d time.Duration) { s[binOf(d)]++ }

// The latency_histogram measure's bounds are the sketch's bin edges at 2^k and 1.5·2^k units
// from 2^histogramLow (1.05 ms) to 2^histogramHigh (68.7 s): 33 bounds, 1.33 to 1.5 apart.
// Every bin lies wholly between two of them, so the counts are exact. A histogram check tests
// every bound (its mixture pays the log of their number, and a pass needs every bound of the
// body shown within tolerance), so a bound per bin, 16 to an octave, would decide much more
// slowly for little more power; a bound per octave (Prometheus' default buckets are 2 to 2.5
// apart) leaves a narrow distribution's tail between two bounds, outside the body, where a
// regression of the tail alone (p99 +40%, the median unchanged) is seen later than a pass.
const (
	histogramLow  = 10
	histogramHigh = 26
)

// histogramEdges are the bins the latency_histogram bounds start, in ascending order.
func histogramEdges() []int {
	var edges []int
	for k := histogramLow; k <= histogramHigh; k++ {
		at := time.Duration(uint64(1) << (k + unitShift))
		edges = append(edges, binOf(at))
		if k < histogramHigh {
			edges = append(edges, binOf(at+at/2))
		}
	}
	return edges
}

// HistogramBounds are the bounds, in seconds, of the builtin latency_histogram measure: 33
// finite ones and +Inf.
func HistogramBounds() metrics.Bounds {
	edges := histogramEdges()
	b := make(metrics.Bounds, 0, len(edges)+1)
	for _, e := range edges {
		lo, _ := binBounds(e)
		b = append(b, lo)
	}
	return append(b, math.Inf(1))
}

// cumulative is the n durations counted in s faster than each of HistogramBounds.
func (s *sketch) cumulative(n uint64) []float64 {
	edges := histogramEdges()
	out := make([]float64, 0, len(edges)+1)
	var below uint64
	i := 0
	for _, edge := range edges {
		for ; i < edge; i++ {
			below += uint64(s[i])
		}
		out = append(out, float64(below))
	}
	return append(out, float64(n))
}

func (s *sketch) merge(o *sketch) {
	for i, n := range o {
		s[i] += n
	}
}

// quantile is the q-quantile (0..1) of the n durations counted in s, in seconds, interpolated
// linearly inside the bin it falls in (as Prometheus' histogram_quantile does); NaN when n is 0.
func (s *sketch) quantile(q float64, n uint64) float64 {
	if n == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	var below float64
	for i, c := range s {
		if c == 0 {
			continue
		}
		if below+float64(c) >= rank {
			lo, hi := binBounds(i)
			return lo + (hi-lo)*(rank-below)/float64(c)
		}
		below += float64(c)
	}
	_, hi := binBounds(sketchBins - 1)
	return hi
}
