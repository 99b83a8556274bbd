package engine_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/metrics"
)

// builtinWorld answers builtin queries as perch's proxy would, except that the canary gets
// canaryShare of the requests whatever weight it was set to (a misrouted canary, say).
type builtinWorld struct {
	mu          sync.Mutex
	weight      int
	canaryShare float64
	segments    []string
}

func (w *builtinWorld) RouteSegments(_ context.Context, segs []segment.Segment) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.segments = nil
	for _, s := range segs {
		w.segments = append(w.segments, s.Name)
	}
	return nil
}

func (w *builtinWorld) RoutedSegments(context.Context) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.segments), nil
}

func (w *builtinWorld) SetWeight(_ context.Context, percent int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.weight = percent
	return nil
}

func (w *builtinWorld) Weight(context.Context) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.weight, nil
}

func (w *builtinWorld) Samples(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	measure, version, err := metrics.ParseBuiltinQuery(q)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	share := w.canaryShare
	w.mu.Unlock()
	const perInterval = 10_000.0
	requests := perInterval * (1 - share)
	if version == metrics.VersionCanary {
		requests = perInterval * share
	}
	var v float64
	switch measure {
	case metrics.MeasureRequests:
		v = requests
	case metrics.MeasureErrors:
		v = requests * 0.001
	default:
		v = 0.05 // every latency: the same on both sides
	}
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: v})
	}
	return out, nil
}

const builtinRollout = `name: guarded
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {builtin: {}}
analysis: {interval: 30s, stabilization: 30s}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.01, critical: true}
  - {name: p99, builtin: latency_p99, maxDeviationPercent: 20}
steps:
  - {setWeight: 5, analyze: 10m}
`

// TestMisroutedCanaryHolds: at weight 5% a canary that gets 0.2% of the requests is not
// judged on that data (its few requests say little about it): the step holds, saying why,
// for an operator to settle.
func TestMisroutedCanaryHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rollout, err := spec.Parse("guarded.yaml", []byte(builtinRollout))
		if err != nil {
			t.Fatal(err)
		}
		w := &builtinWorld{canaryShare: 0.002}
		eng, err := engine.New(engine.Config{Spec: rollout, Router: w, Source: w, Journal: &memJournal{}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan engine.Outcome)
		go func() { out, _ := eng.Run(ctx); done <- out }()
		time.Sleep(15 * time.Minute) // past the step's 10 minutes of analysis
		st := eng.Snapshot()
		if st.Phase != engine.PhaseHolding || !strings.Contains(st.HoldReason, "canary got 0.2% of requests at weight 5%") {
			t.Fatalf("%s (%s) after 15m with the canary getting 0.2%% at weight 5%%: want a hold naming the split", st.Phase, st.HoldReason)
		}
		// The hold is the operator's to settle: advancing past it promotes this one-step rollout.
		if err := eng.Do(ctx, engine.Command{Kind: engine.CommandAdvance, Actor: engine.Actor{Name: "alice", Role: engine.RoleOperator}, Step: st.Step}); err != nil {
			t.Fatal(err)
		}
		if out := <-done; out != engine.OutcomePromoted {
			t.Fatalf("outcome %s after the operator advanced, want promoted", out)
		}
	})
}

// TestSegmentsLeaveTheSplitUnguarded: with a segment routed wholly to the canary beside the
// weight, the canary's share of requests is not its weight, and no hold follows from it.
func TestSegmentsLeaveTheSplitUnguarded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		text := strings.Replace(builtinRollout, "steps:\n", "steps:\n  - segment: {name: staff, match: {header: {name: X-Staff, value: \"true\"}}}\n", 1)
		rollout, err := spec.Parse("segmented.yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		w := &builtinWorld{canaryShare: 0.2} // 5% of the rest, and all of staff
		eng, err := engine.New(engine.Config{Spec: rollout, Router: w, Source: w, Journal: &memJournal{}})
		if err != nil {
			t.Fatal(err)
		}
		out, err := eng.Run(context.Background())
		if out != engine.OutcomePromoted || err != nil {
			t.Fatalf("outcome %s, %v with a segment routed: want promoted; last: %s", out, err, eng.Snapshot().HoldReason)
		}
	})
}
