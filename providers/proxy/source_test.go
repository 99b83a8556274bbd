package proxy

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/metrics"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newTestSource(t *testing.T, resolution, retention time.Duration) *Source {
	t.Helper()
	s, err := newSource(resolution, retention)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func values(t *testing.T, s *Source, measure, name string, start, end time.Time, step time.Duration) []float64 {
	t.Helper()
	samples, err := s.Samples(context.Background(), metrics.BuiltinQuery(measure, name), start, end, step)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(samples))
	for i, x := range samples {
		out[i] = x.Value
	}
	return out
}

func TestSourceAnswersEachStepFromTheStepBeforeIt(t *testing.T) {
	s := newTestSource(t, time.Second, time.Minute)
	// 0..10 s: canary gets one request a second, the 3rd and 7th fail; stable two a second.
	for sec := range 10 {
		at := t0.Add(time.Duration(sec)*time.Second + 500*time.Millisecond)
		s.observe(canary, sec == 3 || sec == 7, time.Duration(sec+1)*10*time.Millisecond, at)
		s.observe(stable, false, 10*time.Millisecond, at)
		s.observe(stable, false, 10*time.Millisecond, at)
	}
	start, end, step := t0.Add(5*time.Second), t0.Add(10*time.Second), 5*time.Second
	cases := []struct {
		measure, version string
		want             []float64
	}{
		{metrics.MeasureRequests, metrics.VersionCanary, []float64{5, 5}},
		{metrics.MeasureErrors, metrics.VersionCanary, []float64{1, 1}},
		{metrics.MeasureRequests, metrics.VersionStable, []float64{10, 10}},
		{metrics.MeasureErrors, metrics.VersionStable, []float64{0, 0}},
		{metrics.MeasureThroughput, metrics.VersionStable, []float64{2, 2}},
		// Latencies 10..50 ms, then 60..100 ms: the p50 is the third of five, the p99 the fifth.
		{metrics.MeasureLatencyP50, metrics.VersionCanary, []float64{0.03, 0.08}},
		{metrics.MeasureLatencyP99, metrics.VersionCanary, []float64{0.05, 0.1}},
	}
	for _, tc := range cases {
		t.Run(tc.measure+"/"+tc.version, func(t *testing.T) {
			got := values(t, s, tc.measure, tc.version, start, end, step)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if math.Abs(got[i]-tc.want[i]) > tc.want[i]/16+1e-9 {
					t.Errorf("point %d: got %v, want %v (within the sketch's 1/16)", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestSourceLeavesOutWhatItCannotKnow(t *testing.T) {
	s := newTestSource(t, time.Second, 10*time.Second)
	if got := values(t, s, metrics.MeasureRequests, metrics.VersionCanary, t0, t0.Add(5*time.Second), time.Second); len(got) != 0 {
		t.Errorf("before any request: %v, want no samples", got)
	}
	for sec := range 30 {
		s.observe(stable, false, time.Millisecond, t0.Add(time.Duration(sec)*time.Second))
	}
	// The ring keeps 11 slots (10 s plus the one being filled): seconds 19..29.
	got := values(t, s, metrics.MeasureRequests, metrics.VersionStable, t0.Add(time.Second), t0.Add(30*time.Second), time.Second)
	if want := slices.Repeat([]float64{1}, 11); !slices.Equal(got, want) {
		t.Errorf("stable requests over 30 s with 10 s kept: %v, want %v (the points still in the ring)", got, want)
	}
	// The canary had no request: counts are zero, latency has nothing to measure.
	if got := values(t, s, metrics.MeasureRequests, metrics.VersionCanary, t0.Add(25*time.Second), t0.Add(29*time.Second), 2*time.Second); !slices.Equal(got, []float64{0, 0, 0}) {
		t.Errorf("canary requests = %v, want zeros", got)
	}
	if got := values(t, s, metrics.MeasureLatencyP99, metrics.VersionCanary, t0.Add(25*time.Second), t0.Add(29*time.Second), 2*time.Second); len(got) != 0 {
		t.Errorf("canary p99 with no requests = %v, want no samples", got)
	}
}

func TestSourceRejectsBadQueries(t *testing.T) {
	s := newTestSource(t, time.Second, time.Minute)
	cases := []struct {
		name  string
		query metrics.Query
		start time.Time
		end   time.Time
		step  time.Duration
		want  string
	}{
		{"promql", metrics.Query{Expr: `rate(x[1m])`}, t0, t0, time.Second, "not a builtin query"},
		{"unknown measure", metrics.Query{Expr: `saturation{version="canary"}`}, t0, t0, time.Second, "not a builtin query"},
		{"step below resolution", metrics.BuiltinQuery(metrics.MeasureRequests, metrics.VersionCanary), t0, t0, time.Millisecond, "resolution"},
		{"end before start", metrics.BuiltinQuery(metrics.MeasureRequests, metrics.VersionCanary), t0, t0.Add(-time.Second), time.Second, "want 0 to"},
		{"unbounded", metrics.BuiltinQuery(metrics.MeasureRequests, metrics.VersionCanary), time.Time{}, t0, time.Second, "want 0 to"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Samples(context.Background(), tc.query, tc.start, tc.end, tc.step)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestNewSourceBounds(t *testing.T) {
	s := newTestSource(t, time.Second, 100*time.Hour)
	if n := len(s.slots); n != int(MaxRetention/time.Second)+1 {
		t.Errorf("retention of 100h kept %d slots, want it capped at %s", n, MaxRetention)
	}
	if _, err := newSource(time.Minute, time.Second); err == nil {
		t.Error("a retention shorter than the resolution was accepted")
	}
}

// TestSketchAccuracy measures how far the sketch's quantiles are from the exact ones of the same
// samples. The layout bounds the error at 1/16 of the value; interpolation does much better.
func TestSketchAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := []struct {
		name string
		draw func() time.Duration
	}{
		{"lognormal 20ms σ0.3", func() time.Duration { return time.Duration(20e6 * math.Exp(0.3*rng.NormFloat64())) }},
		{"lognormal 200µs σ1", func() time.Duration { return time.Duration(200e3 * math.Exp(rng.NormFloat64())) }},
		{"uniform 1–100ms", func() time.Duration { return time.Duration(1e6 + rng.Float64()*99e6) }},
		{"bimodal 5ms/800ms", func() time.Duration {
			if rng.IntN(20) == 0 {
				return time.Duration(800e6 * math.Exp(0.1*rng.NormFloat64()))
			}
			return time.Duration(5e6 * math.Exp(0.2*rng.NormFloat64()))
		}},
	}
	for _, d := range dists {
		for _, n := range []int{100, 10_000} {
			var sk sketch
			exact := make([]float64, n)
			for i := range exact {
				v := d.draw()
				sk.add(v)
				exact[i] = v.Seconds()
			}
			slices.Sort(exact)
			worst := 0.0
			for _, q := range []float64{0.5, 0.95, 0.99} {
				want := exact[int(math.Ceil(q*float64(n)))-1] // the nearest-rank quantile
				got := sk.quantile(q, uint64(n))
				rel := math.Abs(got-want) / want
				worst = max(worst, rel)
				if rel > 1.0/16 {
					t.Errorf("%s, n=%d: p%g = %v, exact %v (%.2f%% off, bound 6.25%%)", d.name, n, q*100, got, want, rel*100)
				}
			}
			t.Logf("%-20s n=%-6d worst relative error over p50/p95/p99: %.2f%%", d.name, n, worst*100)
		}
	}
}

func TestBinsCoverTheRangeInOrder(t *testing.T) {
	prevHi := 0.0
	for i := range sketchBins {
		lo, hi := binBounds(i)
		if lo != prevHi || hi <= lo {
			t.Fatalf("bin %d is [%v, %v), previous ended at %v", i, lo, hi, prevHi)
		}
		prevHi = hi
		if i >= subBins && (hi-lo)/lo > 1.0/16+1e-12 {
			t.Fatalf("bin %d is %.3f%% wide", i, (hi-lo)/lo*100)
		}
	}
	for _, d := range []time.Duration{0, time.Microsecond, 37 * time.Millisecond, time.Second, time.Hour} {
		lo, hi := binBounds(binOf(d))
		if s := d.Seconds(); d < time.Minute && (s < lo || s >= hi) {
			t.Errorf("%s landed in bin [%v, %v)", d, lo, hi)
		}
	}
	if binOf(time.Hour) != sketchBins-1 {
		t.Errorf("an hour should land in the last bin")
	}
}

func BenchmarkObserve(b *testing.B) {
	s, _ := newSource(time.Second, DefaultRetention)
	now := time.Now()
	for i := 0; b.Loop(); i++ {
		s.observe(version(i&1), false, time.Duration(i%50_000)*time.Microsecond, now)
	}
}

// BenchmarkSamples15m is one look at a 15-minute window in 30 s steps: what the engine asks of
// the source each interval of a long step.
func BenchmarkSamples15m(b *testing.B) {
	s, _ := newSource(time.Second, DefaultRetention)
	for sec := range 900 {
		for i := range 50 {
			s.observe(canary, false, time.Duration(i)*time.Millisecond, t0.Add(time.Duration(sec)*time.Second))
		}
	}
	q := metrics.BuiltinQuery(metrics.MeasureLatencyP99, metrics.VersionCanary)
	for b.Loop() {
		s.Samples(context.Background(), q, t0.Add(30*time.Second), t0.Add(900*time.Second), 30*time.Second)
	}
}
