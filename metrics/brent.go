package metrics

import "math"

// Accuracy of the root finder, as Kayenta's (and R's uniroot in wilcox.test) sets it: an
// absolute tolerance of 1e-4 plus a relative term of twice the machine epsilon.
const (
	brentTolerance     = 1e-4
	brentEpsilon       = 2.220446049250313e-16
	brentMaxIterations = 1000
)

// brentRoot finds a zero of f in [a, b], given fa = f(a) and fb = f(b) of opposite signs, by
// Brent's method (Brent 1973, "Algorithms for Minimization without Derivatives", ch. 4): keep
// a bracket [b, c] around the root with b the best guess; step by inverse quadratic or linear
// interpolation when it lands well inside the bracket and shrinks fast enough, bisect
// otherwise, and never step less than the tolerance. The bounds of a rank-sum confidence
// interval depend on where in the flat steps of the statistic the search stops, so matching
// Kayenta needs this exact sequence of iterates, not just any root.
func brentRoot(f func(float64) float64, a, b, fa, fb float64) float64 {
	if isZero(fa) {
		return a
	}
	if isZero(fb) {
		return b
	}
	c, fc := a, fa
	for range brentMaxIterations + 1 {
		prevStep := b - a
		if math.Abs(fc) < math.Abs(fb) {
			// Make b the best approximation, keeping c on the other side of the root.
			a, b, c = b, c, b
			fa, fb, fc = fb, fc, fb
		}
		tol := 2*brentEpsilon*math.Abs(b) + brentTolerance/2
		step := (c - b) / 2
		if math.Abs(step) <= tol || isZero(fb) {
			return b
		}
		if math.Abs(prevStep) >= tol && math.Abs(fa) > math.Abs(fb) {
			if p, q := interpolate(a, b, c, fa, fb, fc); p < 0.75*(c-b)*q-math.Abs(tol*q)/2 && p < math.Abs(prevStep*q/2) {
				step = p / q
			}
		}
		switch {
		case math.Abs(step) >= tol:
		case step > 0:
			step = tol
		default:
			step = -tol
		}
		a, fa = b, fb
		b += step
		fb = f(b)
		if (fb > 0 && fc > 0) || (fb < 0 && fc < 0) {
			c, fc = a, fa
		}
	}
	return b
}

// interpolate proposes the step p/q from b: the secant through a and b when only two points
// are distinct, inverse quadratic interpolation through a, b and c otherwise. p is returned
// non-negative with the sign carried by q.
func interpolate(a, b, c, fa, fb, fc float64) (p, q float64) {
	cb := c - b
	if a == c {
		t := fb / fa
		p, q = cb*t, 1-t
	} else {
		qa, t1, t2 := fa/fc, fb/fc, fb/fa
		p = t2 * (cb*qa*(qa-t1) - (b-a)*(t1-1))
		q = (qa - 1) * (t1 - 1) * (t2 - 1)
	}
	if p > 0 {
		q = -q
	} else {
		p = -p
	}
	return p, q
}

// isZero is Apache Commons' Precision.equals(x, 0): equal to zero within one ulp.
func isZero(x float64) bool { return math.Abs(x) <= math.SmallestNonzeroFloat64 }
