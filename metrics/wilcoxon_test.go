package metrics

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// kayentaInterval is one case of Kayenta's MannWhitneySuite (kayenta-mannwhitney), kept as data
// in testdata/kayenta/mannwhitney.json with the expected figures Kayenta asserts (most of them
// computed by R's wilcox.test).
type kayentaInterval struct {
	Name      string      `json:"name"`
	Kind      string      `json:"kind"`
	X         []float64   `json:"x"`
	Y         []float64   `json:"y"`
	ConfLevel float64     `json:"confLevel"`
	Checks    [][]float64 `json:"checks"` // wilcoxonDiff: [want, mu, quantile]
	P, Want   float64

	Lower, LowerTol       float64
	Upper, UpperTol       float64
	Estimate, EstimateTol float64

	RMumin, RMumax, RZqLower, RZqUpper     float64
	RFlower1, RFupper1, RFlower2, RFupper2 float64
	RCil, RCiu, REst                       float64
}

func loadKayenta[T any](t *testing.T, name string) []T {
	t.Helper()
	b, err := os.ReadFile("testdata/kayenta/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var cases []T
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cases
}

func near(t *testing.T, what string, want, got, tol float64) {
	t.Helper()
	if math.Abs(want-got) > tol || math.IsNaN(got) {
		t.Errorf("%s = %.17g, want %.17g (±%g)", what, got, want, tol)
	}
}

func TestKayentaMannWhitneySuite(t *testing.T) {
	const e = 1e-6
	cases := loadKayenta[kayentaInterval](t, "mannwhitney.json")
	if len(cases) != 7 {
		t.Fatalf("want Kayenta's 7 cases, got %d", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			switch c.Kind {
			case "wilcoxonDiff":
				for _, chk := range c.Checks {
					got, err := wilcoxonDiff(chk[1], chk[2], c.X, c.Y)
					if err != nil {
						t.Fatal(err)
					}
					near(t, "wilcoxonDiff", chk[0], got, e)
				}
			case "zquant":
				near(t, "quantile", c.Want, normalQuantile(c.P), e)
			case "interval":
				iv, err := rankSumInterval(c.X, c.Y, c.ConfLevel)
				if err != nil {
					t.Fatal(err)
				}
				near(t, "lower", c.Lower, iv.Lower, c.LowerTol)
				near(t, "upper", c.Upper, iv.Upper, c.UpperTol)
				near(t, "estimate", c.Estimate, iv.Estimate, c.EstimateTol)
			case "intermediate":
				checkIntermediate(t, c)
			default:
				t.Fatalf("unknown kind %q", c.Kind)
			}
		})
	}
}

// checkIntermediate reproduces Kayenta's step-by-step case: the search range, the quantiles,
// the function at the ends, and Brent's roots from them.
func checkIntermediate(t *testing.T, c kayentaInterval) {
	const e = 1e-6
	muMin, muMax := minOf(c.X)-maxOf(c.Y), maxOf(c.X)-minOf(c.Y)
	alpha := 1 - c.ConfLevel
	zqLower, zqUpper := -normalQuantile(alpha/2), normalQuantile(alpha/2)
	f := func(q float64) func(float64) float64 {
		return func(mu float64) float64 {
			v, err := wilcoxonDiff(mu, q, c.X, c.Y)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	fLower0, fUpper0 := f(0)(muMin), f(0)(muMax)
	fLower1, fUpper1 := f(zqLower)(muMin), f(zqLower)(muMax)
	fLower2, fUpper2 := f(zqUpper)(muMin), f(zqUpper)(muMax)
	near(t, "muMin", c.RMumin, muMin, e)
	near(t, "muMax", c.RMumax, muMax, e)
	near(t, "zqLower", c.RZqLower, zqLower, e)
	near(t, "zqUpper", c.RZqUpper, zqUpper, e)
	near(t, "fLower1", c.RFlower1, fLower1, e)
	near(t, "fUpper1", c.RFupper1, fUpper1, e)
	near(t, "fLower2", c.RFlower2, fLower2, e)
	near(t, "fUpper2", c.RFupper2, fUpper2, e)
	near(t, "ciLower", c.RCil, brentRoot(f(zqLower), muMin, muMax, fLower1, fUpper1), e)
	near(t, "ciUpper", c.RCiu, brentRoot(f(zqUpper), muMin, muMax, fLower2, fUpper2), e)
	near(t, "estimate", c.REst, brentRoot(f(0), muMin, muMax, fLower0, fUpper0), e)
}

// Plain bisection stops anywhere on a flat step of the statistic; Brent's iterates are what
// make the bounds agree with Kayenta's and R's on tied data. This guards against a "simpler"
// root finder creeping in.
func TestBrentRootDiffersFromBisectionOnTiedData(t *testing.T) {
	cases := loadKayenta[kayentaInterval](t, "mannwhitney.json")
	var c kayentaInterval
	for _, k := range cases {
		if k.Kind == "intermediate" {
			c = k
		}
	}
	muMin, muMax := minOf(c.X)-maxOf(c.Y), maxOf(c.X)-minOf(c.Y)
	f := func(mu float64) float64 { v, _ := wilcoxonDiff(mu, 0, c.X, c.Y); return v }
	lo, hi := muMin, muMax
	for hi-lo > brentTolerance {
		mid := (lo + hi) / 2
		if f(mid) > 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	bisect := (lo + hi) / 2
	brent := brentRoot(f, muMin, muMax, f(muMin), f(muMax))
	near(t, "brent estimate", c.REst, brent, 1e-6)
	if math.Abs(bisect-c.REst) <= 1e-6 {
		t.Errorf("bisection also gives %.10g; this data no longer tells the two apart", bisect)
	}
}

func TestBrentRootOnSmoothFunctions(t *testing.T) {
	tests := []struct {
		name string
		f    func(float64) float64
		a, b float64
		want float64
	}{
		{"linear", func(x float64) float64 { return 2*x - 3 }, 0, 10, 1.5},
		{"cubic", func(x float64) float64 { return x*x*x - 2*x - 5 }, 2, 3, 2.0945514815423265},
		{"cosine", func(x float64) float64 { return math.Cos(x) - x }, 0, 1, 0.7390851332151607},
		{"root at a", func(x float64) float64 { return x }, 0, 1, 0},
		{"decreasing", func(x float64) float64 { return 4 - x*x }, 0, 5, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := brentRoot(tt.f, tt.a, tt.b, tt.f(tt.a), tt.f(tt.b))
			near(t, "root", tt.want, got, brentTolerance)
		})
	}
}

func TestWilcoxonAllTied(t *testing.T) {
	if _, err := wilcoxonDiff(0, 0, []float64{1, 1}, []float64{1, 1, 1}); err != errAllTied {
		t.Fatalf("want errAllTied, got %v", err)
	}
}

func TestPercentileR7(t *testing.T) {
	v := []float64{15, 20, 35, 40, 50}
	tests := []struct {
		p, want float64
	}{{1, 15.2}, {25, 20}, {40, 29}, {50, 35}, {75, 40}, {99, 49.6}, {100, 50}}
	for _, tt := range tests {
		near(t, "percentile", tt.want, percentileR7(v, tt.p), 1e-12)
	}
	if !math.IsNaN(percentileR7(nil, 50)) {
		t.Error("percentile of nothing should be NaN")
	}
}
