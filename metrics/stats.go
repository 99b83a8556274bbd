package metrics

import (
	"math"
	"slices"
	"sort"
)

// mean is the arithmetic mean of v, NaN when v is empty.
func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

// percentileR7 is the p-th percentile (0 < p ≤ 100) of v by the R-7 rule (R's and Excel's
// default, Apache Commons' EstimationType.R_7): linear interpolation between order statistics
// at rank (n-1)·p/100 + 1. NaN when v is empty.
func percentileR7(v []float64, p float64) float64 {
	n := len(v)
	if n == 0 {
		return math.NaN()
	}
	sorted := slices.Clone(v)
	sort.Float64s(sorted)
	if n == 1 {
		return sorted[0]
	}
	pos := float64(n-1)*p/100 + 1
	if p == 100 {
		pos = float64(n)
	}
	switch {
	case pos < 1:
		return sorted[0]
	case pos >= float64(n):
		return sorted[n-1]
	}
	lo := math.Floor(pos)
	lower, upper := sorted[int(lo)-1], sorted[int(lo)]
	return lower + (pos-lo)*(upper-lower)
}

// rankSum ranks the concatenation of x and y (ties get their average rank) and returns the
// sum of the ranks of x and the tie term Σ(t³−t) over groups of t tied values.
func rankSum(x, y []float64) (sumX, ties float64) {
	n := len(x) + len(y)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	at := func(i int) float64 {
		if i < len(x) {
			return x[i]
		}
		return y[i-len(x)]
	}
	sort.Slice(idx, func(a, b int) bool { return at(idx[a]) < at(idx[b]) })
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && at(idx[hi]) == at(idx[lo]) {
			hi++
		}
		// Ranks lo+1 … hi share their average.
		rank := float64(lo+1+hi) / 2
		t := float64(hi - lo)
		ties += t*t*t - t
		for _, i := range idx[lo:hi] {
			if i < len(x) {
				sumX += rank
			}
		}
		lo = hi
	}
	return sumX, ties
}

// normalQuantile is the inverse of the standard normal distribution function.
func normalQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// normalSurvival is P(Z > z) for a standard normal Z.
func normalSurvival(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// minOf is the smallest of v (+Inf when empty).
func minOf(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		m = math.Min(m, x)
	}
	return m
}

// maxOf is the largest of v (-Inf when empty).
func maxOf(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

// median is the middle of v (the mean of the two middle values for an even count).
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// studentCDF is P(T ≤ x) for T with nu degrees of freedom.
func studentCDF(x, nu float64) float64 { return math.Exp(logStudentCDF(x, nu)) }

// logStudentCDF is log P(T ≤ x) for T with nu degrees of freedom, accurate far into the lower
// tail: the one-sided t-mixture multiplies a huge two-sided factor by this probability when the
// d's barely vary, and a probability that underflowed to a floor there would turn overwhelming
// evidence of safety into evidence of harm.
func logStudentCDF(x, nu float64) float64 {
	switch {
	case math.IsNaN(x):
		return math.NaN()
	case math.IsInf(x, -1):
		return math.Inf(-1)
	case math.IsInf(x, 1):
		return 0
	}
	x2 := x * x
	// P(T > |x|) = ½·I_z(ν/2, ½) with z = ν/(ν+x²), its logs taken without forming z.
	logZ, log1mZ := math.Log(nu)-math.Log(nu+x2), math.Log(x2)-math.Log(nu+x2)
	logTail := -math.Ln2 + logRegIncBeta(logZ, log1mZ, nu/2, 0.5)
	if x > 0 {
		return math.Log1p(-math.Exp(logTail))
	}
	return logTail
}

// logRegIncBeta is log I_x(a, b), the regularized incomplete beta function, from log x and
// log(1−x): by its continued fraction (Lentz's method) on the side where it converges fast,
// kept in logs where the result is small.
func logRegIncBeta(logX, log1mX, a, b float64) float64 {
	switch {
	case math.IsInf(logX, -1):
		return math.Inf(-1)
	case math.IsInf(log1mX, -1):
		return 0
	}
	x := math.Exp(logX)
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	logFront := lab - la - lb + a*logX + b*log1mX
	if x > (a+1)/(a+b+2) {
		return math.Log1p(-math.Exp(logFront) * betaFraction(1-x, b, a) / b)
	}
	return logFront + math.Log(betaFraction(x, a, b)/a)
}

// betaFraction is the continued fraction of the incomplete beta function.
func betaFraction(x, a, b float64) float64 {
	const tiny, eps = 1e-300, 1e-14
	c, d := 1.0, 1-(a+b)*x/(a+1)
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= 300; m++ {
		fm := float64(m)
		num := fm * (b - fm) * x / ((a + 2*fm - 1) * (a + 2*fm))
		d, c = 1+num*d, 1+num/c
		if math.Abs(d) < tiny {
			d = tiny
		}
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		num = -(a + fm) * (a + b + fm) * x / ((a + 2*fm) * (a + 2*fm + 1))
		d, c = 1+num*d, 1+num/c
		if math.Abs(d) < tiny {
			d = tiny
		}
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		delta := d * c
		h *= delta
		if math.Abs(delta-1) < eps {
			break
		}
	}
	return h
}
