package metrics_test

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/perchhq/perch/metrics"
)

// sampleQuantiles draws, for each of n intervals, requests log-normal latencies (median
// `median`, log-sd 0.5) and returns each interval's q-quantile (linear interpolation between
// order statistics, as most tools compute it) and the requests.
func sampleQuantiles(rng *rand.Rand, n int, requests, median, q float64) (values, counts []float64) {
	for range n {
		m := max(1, int(requests))
		v := make([]float64, m)
		for k := range v {
			v[k] = median * math.Exp(0.5*rng.NormFloat64())
		}
		sort.Float64s(v)
		pos := float64(m-1) * q
		lo := int(pos)
		x := v[lo]
		if lo+1 < m {
			x += (pos - float64(lo)) * (v[lo+1] - v[lo])
		}
		values, counts = append(values, x), append(counts, float64(m))
	}
	return values, counts
}

// A p99 from the canary's 4 requests an interval is biased low against the baseline's from
// 400: judged as they are, the same versions pass and a +40% regression passes too. Told the
// quantile and the requests, the judge leaves such intervals out and says why.
func TestQuantilesFromUnequalSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	j := mustJudge(t, "sequential", nil)
	c := metrics.Criteria{Direction: metrics.LowerIsBetter, MaxDeviationPercent: pf(10)}
	for _, tt := range []struct {
		name   string
		factor float64
	}{{"same versions", 1}, {"+40% regression", 1.4}} {
		t.Run(tt.name, func(t *testing.T) {
			canary, nc := sampleQuantiles(rng, 40, 4, 0.1*tt.factor, 0.99)
			baseline, nb := sampleQuantiles(rng, 40, 400, 0.1, 0.99)
			in := metrics.Input{Criteria: c, Canary: metrics.Series{Values: canary}, Baseline: metrics.Series{Values: baseline}}
			blind := j.Judge(in)
			t.Logf("without the quantile and the requests: %s %q", blind.Verdict, blind.Reason)
			in.Quantile, in.Traffic = 0.99, &metrics.Traffic{Canary: nc, Baseline: nb}
			r := j.Judge(in)
			t.Logf("told them: %s %q", r.Verdict, r.Reason)
			if r.Verdict != metrics.Inconclusive || !strings.Contains(r.Reason, "the canary's p99 rests on 4 requests an interval against 400") {
				t.Fatalf("got %s %q", r.Verdict, r.Reason)
			}
		})
	}
	t.Run("equal sides are comparable", func(t *testing.T) {
		canary, nc := sampleQuantiles(rng, 40, 20, 0.1*1.4, 0.99)
		baseline, nb := sampleQuantiles(rng, 40, 20, 0.1, 0.99)
		r := j.Judge(metrics.Input{Criteria: c, Canary: metrics.Series{Values: canary}, Baseline: metrics.Series{Values: baseline},
			Traffic: &metrics.Traffic{Canary: nc, Baseline: nb}})
		r2 := j.Judge(metrics.Input{Criteria: metrics.Criteria{Direction: c.Direction, MaxDeviationPercent: c.MaxDeviationPercent, Quantile: 0.99},
			Canary: metrics.Series{Values: canary}, Baseline: metrics.Series{Values: baseline}, Traffic: &metrics.Traffic{Canary: nc, Baseline: nb}})
		if r.Verdict != metrics.Fail || r2.Verdict != metrics.Fail || strings.Contains(r2.Reason, "left out") {
			t.Fatalf("got %s %q and %s %q", r.Verdict, r.Reason, r2.Verdict, r2.Reason)
		}
	})
	t.Run("some intervals left out", func(t *testing.T) {
		canary, nc := sampleQuantiles(rng, 40, 2000, 0.1, 0.99)
		baseline, nb := sampleQuantiles(rng, 40, 2000, 0.1, 0.99)
		for i := 0; i < 40; i += 8 {
			nc[i] = 3
		}
		r := j.Judge(metrics.Input{Criteria: metrics.Criteria{Direction: c.Direction, MaxDeviationPercent: c.MaxDeviationPercent, Quantile: 0.99},
			Canary: metrics.Series{Values: canary}, Baseline: metrics.Series{Values: baseline}, Traffic: &metrics.Traffic{Canary: nc, Baseline: nb}})
		if !strings.Contains(r.Reason, "5 of 40 intervals left out") || r.Stats["intervals"] != 35 {
			t.Fatalf("got %s %q, %v intervals", r.Verdict, r.Reason, r.Stats["intervals"])
		}
	})
}

func TestQuantileOf(t *testing.T) {
	for _, tt := range []struct {
		q    metrics.Query
		want float64
	}{
		{metrics.BuiltinQuery(metrics.MeasureLatencyP99, metrics.VersionCanary), 0.99},
		{metrics.BuiltinQuery(metrics.MeasureLatencyP50, metrics.VersionStable), 0.5},
		{metrics.BuiltinQuery(metrics.MeasureThroughput, metrics.VersionStable), 0},
		{metrics.Query{Expr: `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{version="canary"}[1m])))`}, 0.95},
		{metrics.Query{Expr: `avg(rate(http_request_duration_seconds_sum[1m]))`}, 0},
		{metrics.Query{Metric: &metrics.MetricStat{Namespace: "AWS/ApplicationELB", MetricName: "TargetResponseTime", Stat: "p99.9"}}, 0.999},
		{metrics.Query{Metric: &metrics.MetricStat{Namespace: "AWS/ApplicationELB", MetricName: "TargetResponseTime", Stat: "Average"}}, 0},
		{metrics.Query{Expr: `MAX(SEARCH('{AWS/ApplicationELB,LoadBalancer} MetricName="TargetResponseTime"', 'p99'))`}, 0.99},
	} {
		if got := metrics.QuantileOf(tt.q); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("QuantileOf(%s) = %g, want %g", tt.q, got, tt.want)
		}
	}
}
