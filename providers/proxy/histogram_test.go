package proxy

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/metrics"
)

// The latency_histogram measure counts, per step, the requests faster than each bound, merged
// over the step's slots as the quantiles are, and exactly: every bin lies between two bounds.
func TestSourceAnswersHistograms(t *testing.T) {
	s := newTestSource(t, time.Second, time.Minute)
	// 0..10 s: the canary's requests take 1, 3, 10, 30, 100 ms in turn; stable's 10 ms.
	took := []time.Duration{time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond, 100 * time.Millisecond}
	for sec := range 10 {
		at := t0.Add(time.Duration(sec)*time.Second + 500*time.Millisecond)
		s.observe(canary, false, took[sec%5], at)
		s.observe(stable, false, 10*time.Millisecond, at)
	}
	bounds := HistogramBounds()
	if len(bounds) != 34 || !math.IsInf(bounds[33], 1) || !slices.IsSorted(bounds) ||
		math.Abs(bounds[0]-0.001048576) > 1e-12 || math.Abs(bounds[1]-0.001572864) > 1e-12 || math.Abs(bounds[32]-68.719476736) > 1e-9 {
		t.Fatalf("bounds %v: want 2^10, 1.5·2^10 … 2^26 units of 1.024 µs (1.05 ms … 68.7 s) and +Inf", bounds)
	}
	// The canary's 5 requests of a step against the bounds: 1 ms is below the first.
	want := make([]float64, len(bounds))
	for b, bound := range bounds {
		for _, d := range took {
			if d.Seconds() < bound {
				want[b]++
			}
		}
	}
	start, end, step := t0.Add(5*time.Second), t0.Add(10*time.Second), 5*time.Second
	h, err := s.Histogram(context.Background(), metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionCanary), start, end, step)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.Bounds, bounds) || len(h.Points) != 2 {
		t.Fatalf("got %+v: want 2 points at the measure's bounds", h)
	}
	for i, p := range h.Points {
		if !p.Time.Equal(start.Add(time.Duration(i)*step)) || !slices.Equal(p.Counts, want) {
			t.Errorf("point %d: %v %v, want %v %v", i, p.Time, p.Counts, start.Add(time.Duration(i)*step), want)
		}
	}
	// No requests: zeros; older than the retention (the ring's 61 slots end at second 9, so
	// it covers from 51 s before t0): left out.
	h, err = s.Histogram(context.Background(), metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionCanary), t0.Add(-2*time.Minute), t0.Add(20*time.Second), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.Points); n != 7 || !h.Points[0].Time.Equal(t0.Add(-40*time.Second)) || !h.Points[n-1].Time.Equal(t0.Add(20*time.Second)) ||
		slices.Max(h.Points[n-1].Counts) != 0 || h.Points[n-2].Counts[len(bounds)-1] != 10 {
		t.Errorf("got %+v: want the 7 points from 40 s before t0, the last all zeros", h.Points)
	}

	for _, tc := range []struct {
		name  string
		ask   func() error
		error string
	}{
		{"samples of a histogram", func() error {
			_, err := s.Samples(context.Background(), metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionCanary), start, end, step)
			return err
		}, "is a histogram"},
		{"a histogram of a quantile", func() error {
			_, err := s.Histogram(context.Background(), metrics.BuiltinQuery(metrics.MeasureLatencyP99, metrics.VersionCanary), start, end, step)
			return err
		}, "is not a histogram"},
		{"more points than a histogram answer holds", func() error {
			_, err := s.Histogram(context.Background(), metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionCanary), end.Add(-7*time.Hour), end, time.Second)
			return err
		}, "want 0 to 25000 points"},
		{"unbounded", func() error {
			_, err := s.Histogram(context.Background(), metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionCanary), time.Time{}, end, step)
			return err
		}, "want 0 to"},
	} {
		if err := tc.ask(); err == nil || !strings.Contains(err.Error(), tc.error) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.error)
		}
	}
}

// BenchmarkHistogram15m is one look at a 15-minute window in 30 s steps of a histogram check.
func BenchmarkHistogram15m(b *testing.B) {
	s, _ := newSource(time.Second, 20*time.Minute)
	for sec := range 900 {
		for i := range 100 {
			s.observe(canary, false, time.Duration(i+1)*time.Millisecond, t0.Add(time.Duration(sec)*time.Second))
		}
	}
	q := metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionCanary)
	for b.Loop() {
		s.Histogram(context.Background(), q, t0.Add(30*time.Second), t0.Add(900*time.Second), 30*time.Second)
	}
}

// TestHistogramWireSize: what a histogram answer costs on the admin API's wire, at 1,000
// requests a second with latencies from 1 ms to 2 s (so most bounds count something).
func TestHistogramWireSize(t *testing.T) {
	s := newTestSource(t, time.Second, 20*time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	for sec := range 900 {
		at := t0.Add(time.Duration(sec) * time.Second)
		for range 1000 {
			s.observe(canary, false, time.Duration(float64(30*time.Millisecond)*math.Exp(rng.NormFloat64())), at)
		}
	}
	h, err := s.Histogram(context.Background(), metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionCanary),
		t0.Add(time.Second), t0.Add(900*time.Second), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	per := len(data) / len(h.Points)
	t.Logf("%d points in %d bytes: %d bytes a point", len(h.Points), len(data), per)
	if len(h.Points) != 900 || per > 350 {
		t.Errorf("%d points, %d bytes a point: want 900 at most 350", len(h.Points), per)
	}
}

// TestLatencyHistogramAtDemoTraffic judges the latency_histogram measure as a builtin check
// would, at the demo's traffic: 600 requests a second split by the weight, one-second
// intervals, latencies log-normal with median 30 ms and log-sd 0.3, and, for a tail
// regression, every latency above the median stretched ×1.8 (the p99 +40%). With
// maxDeviationPercent 100 and the demo's family of 8 tests, a healthy canary passes and the
// regression fails within a 15 s step at 25%; at 1% (6 requests a second) a healthy canary
// is mostly still undecided after 30 s, which the log shows.
func TestLatencyHistogramAtDemoTraffic(t *testing.T) {
	judge, err := metrics.New("sequential", nil)
	if err != nil {
		t.Fatal(err)
	}
	criteria := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: func(v float64) *float64 { return &v }(100), Family: 8}
	const runs, intervals = 20, 30
	type outcome struct {
		passed, failed, decidedBy15 int
		at                          []int // the interval each decided run decided at, from 1
	}
	play := func(weight, stretch float64, seed uint64) outcome {
		rng := rand.New(rand.NewPCG(seed, uint64(weight*10+stretch)))
		var o outcome
		for range runs {
			s := newTestSource(t, time.Second, time.Minute)
			for sec := range intervals {
				at := t0.Add(time.Duration(sec)*time.Second + time.Millisecond)
				for range 600 {
					v, side := 0.03*math.Exp(0.3*rng.NormFloat64()), stable
					if rng.Float64() < weight/100 {
						side = canary
						if v > 0.03 {
							v = 0.03 + (v-0.03)*stretch
						}
					}
					s.observe(side, false, time.Duration(v*float64(time.Second)), at)
				}
			}
			series := func(version string) metrics.Series {
				h, err := s.Histogram(context.Background(), metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, version),
					t0.Add(time.Second), t0.Add(intervals*time.Second), time.Second)
				if err != nil {
					t.Fatal(err)
				}
				out := metrics.Series{Bounds: h.Bounds}
				for _, p := range h.Points {
					out.Buckets = append(out.Buckets, p.Counts)
				}
				return out
			}
			r := judge.Judge(metrics.Input{Criteria: criteria, Canary: series(metrics.VersionCanary), Baseline: series(metrics.VersionStable),
				Traffic: &metrics.Traffic{Weights: []float64{weight}}})
			switch r.Verdict {
			case metrics.Pass:
				o.passed++
			case metrics.Fail:
				o.failed++
			}
			if r.DecidedAt != nil {
				o.at = append(o.at, *r.DecidedAt+1)
				if *r.DecidedAt < 15 {
					o.decidedBy15++
				}
			}
		}
		return o
	}
	for _, tc := range []struct {
		weight, stretch float64
		check           func(o outcome) bool
	}{
		{1, 1, func(o outcome) bool { return o.failed == 0 }},
		{5, 1, func(o outcome) bool { return o.failed == 0 }},
		{25, 1, func(o outcome) bool { return o.failed == 0 && o.passed == runs && o.decidedBy15 >= runs*9/10 }},
		{25, 1.8, func(o outcome) bool { return o.failed == runs && o.decidedBy15 == runs }},
	} {
		o := play(tc.weight, tc.stretch, 61)
		median := 0
		if len(o.at) > 0 {
			slices.Sort(o.at)
			median = o.at[len(o.at)/2]
		}
		t.Logf("weight %g%%, tail ×%g: %d passed, %d failed of %d within %d s (median %d s); %d decided within 15 s",
			tc.weight, tc.stretch, o.passed, o.failed, runs, intervals, median, o.decidedBy15)
		if !tc.check(o) {
			t.Errorf("weight %g%%, tail ×%g: %+v", tc.weight, tc.stretch, o)
		}
	}
}
