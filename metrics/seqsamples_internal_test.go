package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

// lai is the two-sided t-mixture Bayes factor in Lai's form, in logs.
func lai(n int, mean, variance, tau2 float64) float64 {
	nu := float64(n - 1)
	g := 1 + float64(n)*tau2
	if variance <= 0 {
		return nu / 2 * math.Log(g)
	}
	t2 := float64(n) * mean * mean / variance
	return -0.5*math.Log(g) + (nu+1)/2*(math.Log1p(t2/nu)-math.Log1p(t2/(nu*g)))
}

// The two one-sided factors are the two halves of the two-sided one: (BF+ + BF−)/2 = BF.
func TestOneSidedFactorsHalveTheTwoSided(t *testing.T) {
	for _, c := range []struct {
		n                 int
		mean, variance, τ float64
	}{{5, 0.3, 1, 1}, {20, 0.1, 0.5, 1}, {60, -0.2, 0.3, 0.5}, {7, 1, 0, 1}, {400, 0.01, 0.04, 2}} {
		harm, safe := oneSidedLogBFs(c.n, c.mean, c.variance*float64(c.n-1), c.τ*c.τ)
		got := logAddExp(harm, safe) - math.Ln2
		if want := lai(c.n, c.mean, c.variance, c.τ*c.τ); math.Abs(got-want) > 1e-9 {
			t.Errorf("%+v: halves give %.9f, Lai's factor %.9f", c, got, want)
		}
		if (c.mean > 0) != (harm > safe) {
			t.Errorf("%+v: harm %.3f, safe %.3f: the side the data lean to must earn more", c, harm, safe)
		}
	}
}

func TestStudentCDF(t *testing.T) {
	// Reference values by numerical integration of the density.
	for _, c := range []struct{ x, nu, want float64 }{
		{2, 5, 0.9490302606}, {-1.5, 3, 0.1152919326}, {0.3, 100, 0.6176000598}, {10, 2, 0.9950737715}, {0, 7, 0.5},
	} {
		if got := studentCDF(c.x, c.nu); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("studentCDF(%g, %g) = %.10f, want %.10f", c.x, c.nu, got, c.want)
		}
	}
}

// Far into the lower tail, where the distribution function underflows a float64, its log
// follows the tail's power law,
// P(T ≤ x) ≈ Γ((ν+1)/2)/(Γ(ν/2)√(νπ)) · ν^((ν−1)/2) · |x|^(−ν).
func TestLogStudentCDF(t *testing.T) {
	for _, c := range []struct{ x, nu float64 }{{-1e4, 5}, {-1e4, 50}, {-1e5, 300}} {
		l1, _ := math.Lgamma((c.nu + 1) / 2)
		l2, _ := math.Lgamma(c.nu / 2)
		want := l1 - l2 - 0.5*math.Log(c.nu*math.Pi) + (c.nu-1)/2*math.Log(c.nu) - c.nu*math.Log(-c.x)
		if got := logStudentCDF(c.x, c.nu); math.Abs(got-want) > 1e-3 {
			t.Errorf("logStudentCDF(%g, %g) = %.6f, want %.6f", c.x, c.nu, got, want)
		}
	}
	// Where the old floor of 1e-300 sat: all d's alike, n = 300, κ√n = −300.
	if got := logStudentCDF(-300, 300); got > -800 {
		t.Errorf("logStudentCDF(-300, 300) = %g, want far below log(1e-300) = -691", got)
	}
}

// The sorted window's robust scale is robustSD of the same values, float for float, as values
// come and go (ties, quantised values and outliers included), so winsorizing is unchanged.
func TestSortedWindowRobustSD(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, width := range []int{1, 2, 5, 16, 256} {
		var w sortedWindow
		var seen []float64
		for i := range 2000 {
			d := math.Round(rng.NormFloat64()*20) / 10 // ties
			switch {
			case i%97 == 0:
				d = 1e6 // an outlier
			case i%13 == 0:
				d = seen[rng.IntN(len(seen))] // a repeat
			}
			seen = append(seen, d)
			w.insert(d)
			if old := len(seen) - 1 - width; old >= 0 {
				w.remove(seen[old])
			}
			in := seen[max(0, len(seen)-width):]
			if got, want := w.robustSD(), robustSD(in); got != want {
				t.Fatalf("width %d, after %d values: sorted window's scale %v, robustSD %v", width, len(seen), got, want)
			}
		}
	}
}
