package demo

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// quantile is the nearest-rank q-quantile of sorted values.
func quantile(sorted []float64, q float64) float64 {
	return sorted[int(math.Ceil(q*float64(len(sorted))))-1]
}

func draw(b Behavior, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = b.latency().Seconds()
	}
	slices.Sort(out)
	return out
}

// TestLatencyRegressionIsATailRegression checks the latency-regression scenario's premise:
// its canary's p99 is about 40% above stable's while the median does not move.
func TestLatencyRegressionIsATailRegression(t *testing.T) {
	const n = 200_000
	stretched := normal
	stretched.TailStretch = 1.8
	base, slow := draw(normal, n), draw(stretched, n)
	p99 := quantile(slow, 0.99)/quantile(base, 0.99) - 1
	p50 := quantile(slow, 0.50)/quantile(base, 0.50) - 1
	if p99 < 0.35 || p99 > 0.45 {
		t.Errorf("p99 moved %+.1f%%, want about +40%%", p99*100)
	}
	if math.Abs(p50) > 0.02 {
		t.Errorf("median moved %+.1f%%, want it unchanged", p50*100)
	}
	if m := quantile(base, 0.5); math.Abs(m-0.030) > 0.001 {
		t.Errorf("normal median %.4fs, want 30ms", m)
	}
}

func TestSpecScalesWithSpeed(t *testing.T) {
	for _, speed := range []float64{1, 4, 0.5} {
		spec, err := Spec("healthy", speed, "127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3")
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Duration(spec.Steps[0].Analyze); got != time.Duration(float64(stepAnalysis)/speed) {
			t.Errorf("speed %v: step analysis %s", speed, got)
		}
		if got := time.Duration(spec.Analysis.Interval); got != time.Duration(float64(interval)/speed) {
			t.Errorf("speed %v: interval %s", speed, got)
		}
		var weights []int
		for _, st := range spec.Steps {
			weights = append(weights, st.Weight())
		}
		if !slices.Equal(weights, []int{1, 5, 25, 50}) {
			t.Errorf("steps %v, want 1 5 25 50", weights)
		}
		// At speed 1 the whole rollout (stabilization and analysis of every step) fits in 90 s.
		if total := 4 * (stabilization + stepAnalysis); speed == 1 && total > 90*time.Second {
			t.Errorf("a demo takes %s at speed 1", total)
		}
	}
}

// TestLoadNeverExceedsItsConcurrency points the load at a backend that answers only when
// released: it must hold at most Concurrency requests and skip the rest.
func TestLoadNeverExceedsItsConcurrency(t *testing.T) {
	release := make(chan struct{})
	var inFlight, most atomic.Int64
	var users sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		users.Store(r.Header.Get(UserHeader), true)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	l := &Load{Target: srv.URL, Rate: 1000, Concurrency: 4, Users: 3, UserHeader: UserHeader}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	for l.Stats().Skipped < 20 {
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	cancel()
	<-done
	if m := most.Load(); m > 4 {
		t.Errorf("%d requests in flight at once, want at most 4", m)
	}
	if s := l.Stats(); s.Sent < 4 || s.Failed != 0 {
		t.Errorf("stats %+v: want at least 4 sent and none failed", s)
	}
	users.Range(func(k, _ any) bool {
		if u := k.(string); u != "user-0" && u != "user-1" && u != "user-2" {
			t.Errorf("request from %q, want user-0..2", u)
		}
		return true
	})
}

// firstStepErrorVerdict judges the demo's error check as the engine would at the end of the
// 1% step, on a canary and a stable that never fail, with rate requests per second split
// exactly by the weight.
func firstStepErrorVerdict(t *testing.T, rate float64) metrics.Result {
	t.Helper()
	rollout, err := Spec("healthy", 1, "127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3")
	if err != nil {
		t.Fatal(err)
	}
	check := rollout.Checks[slices.IndexFunc(rollout.Checks, func(c spec.Check) bool { return c.IsCounts() })]
	judge, err := metrics.New(rollout.Analysis.Judge, check.JudgeOptions)
	if err != nil {
		t.Fatal(err)
	}
	weight := float64(rollout.Steps[0].Weight()) / 100
	perInterval := rate * time.Duration(rollout.Analysis.Interval).Seconds()
	intervals := int(time.Duration(rollout.Steps[0].Analyze) / time.Duration(rollout.Analysis.Interval))
	criteria := check.Criteria()
	criteria.Family = rollout.Family()
	in := metrics.Input{Criteria: criteria}
	for range intervals {
		in.Canary.Events, in.Canary.Total = append(in.Canary.Events, 0), append(in.Canary.Total, weight*perInterval)
		in.Baseline.Events, in.Baseline.Total = append(in.Baseline.Events, 0), append(in.Baseline.Total, (1-weight)*perInterval)
	}
	return judge.Judge(in)
}

// TestDefaultLoadLetsTheFirstStepPass checks the arithmetic behind DefaultRate: at 1% the
// canary gets just enough requests in the step for the default judge to show its error rate
// within tolerance, which a third of that load, 200 requests/s, does not give it.
func TestDefaultLoadLetsTheFirstStepPass(t *testing.T) {
	if rollout, _ := Spec("healthy", 1, "127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"); rollout.Analysis.Judge != spec.DefaultJudge {
		t.Fatalf("the demo is judged by %q, want the default judge %q", rollout.Analysis.Judge, spec.DefaultJudge)
	}
	if r := firstStepErrorVerdict(t, DefaultRate); r.Verdict != metrics.Pass {
		t.Errorf("at %d requests/s the 1%% step ends %s: %s", DefaultRate, r.Verdict, r.Reason)
	}
	if r := firstStepErrorVerdict(t, 200); r.Verdict != metrics.Inconclusive {
		t.Errorf("at 200 requests/s the 1%% step ends %s, want it to hold for want of evidence: %s", r.Verdict, r.Reason)
	}
}
