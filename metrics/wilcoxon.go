package metrics

import (
	"errors"
	"math"
	"slices"
)

// errAllTied is the rank-sum statistic's failure when every observation is tied: it has no
// variance, so no interval can be drawn.
var errAllTied = errors.New("cannot compute a confidence interval when all observations are tied")

// shiftInterval is the Wilcoxon rank-sum (Mann-Whitney) confidence interval of the location
// shift x − y and its Hodges-Lehmann estimate, as R's wilcox.test(conf.int = TRUE) computes it
// with the normal approximation, tie correction and continuity correction (Kayenta's
// MannWhitney does the same).
type shiftInterval struct {
	Lower, Upper, Estimate float64
}

// wilcoxonDiff is the standardized rank-sum statistic of x − mu against y, minus quantile:
// the function whose roots in mu are the interval's bounds (quantile ∓z) and the estimate (0).
// It decreases in mu, in steps, since ranks only change where x−mu crosses a value of y.
func wilcoxonDiff(mu, quantile float64, x, y []float64) (float64, error) {
	nx, ny := float64(len(x)), float64(len(y))
	shifted := make([]float64, len(x))
	for i, v := range x {
		shifted[i] = v - mu
	}
	sumX, ties := rankSum(shifted, y)
	dz := sumX - nx*(nx+1)/2 - nx*ny/2
	correction := 0.0
	switch {
	case dz > 0:
		correction = 0.5
	case dz < 0:
		correction = -0.5
	}
	sigma := math.Sqrt((nx * ny / 12) * ((nx + ny + 1) - ties/((nx+ny)*(nx+ny-1))))
	if sigma == 0 {
		return 0, errAllTied
	}
	return (dz-correction)/sigma - quantile, nil
}

// rankSumInterval computes the shift interval at confLevel (0.95 for 95%).
func rankSumInterval(x, y []float64, confLevel float64) (shiftInterval, error) {
	if len(x) == 0 || len(y) == 0 {
		return shiftInterval{}, errors.New("rank-sum interval needs data on both sides")
	}
	muMin := slices.Min(x) - slices.Max(y)
	muMax := slices.Max(x) - slices.Min(y)
	var err error
	f := func(quantile float64) func(float64) float64 {
		return func(mu float64) float64 {
			v, e := wilcoxonDiff(mu, quantile, x, y)
			if e != nil && err == nil {
				err = e
			}
			return v
		}
	}
	root := func(quantile float64) float64 {
		g := f(quantile)
		lo, hi := g(muMin), g(muMax)
		switch {
		case lo <= 0:
			return muMin
		case hi >= 0:
			return muMax
		}
		return brentRoot(g, muMin, muMax, lo, hi)
	}
	z := normalQuantile((1 - confLevel) / 2) // negative
	iv := shiftInterval{Lower: root(-z), Upper: root(z)}
	g := f(0)
	iv.Estimate = brentRoot(g, muMin, muMax, g(muMin), g(muMax))
	if err != nil {
		return shiftInterval{}, err
	}
	return iv, nil
}
