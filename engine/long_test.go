package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// TestLongRolloutStaysBounded runs a 24-hour step (2,880 looks) in virtual time and checks that
// what the engine keeps in memory is bounded: the event log and each check's history are rings.
func TestLongRolloutStaysBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := testSpec(t, specOpts{steps: "  - setWeight: 10\n    analyze: 24h\n"})
		r := start(t, spec, newWorld(), engine.Config{Journal: discard{}})
		out, err := r.finish(25 * time.Hour)
		if err != nil || out != engine.OutcomePromoted {
			t.Fatalf("outcome %s, %v", out, err)
		}
		st := r.eng.Snapshot()
		if st.Seq < 2880 {
			t.Fatalf("only %d events: the step did not look every 30s for 24h", st.Seq)
		}
		if len(st.Log) != engine.MaxLog {
			t.Errorf("event log holds %d events, want the newest %d", len(st.Log), engine.MaxLog)
		}
		for _, c := range st.Checks {
			if len(c.History) != engine.MaxHistory {
				t.Errorf("check %s keeps %d points, want the newest %d", c.Name, len(c.History), engine.MaxHistory)
			}
		}
	})
}

// discard is a journal that keeps nothing in memory (the real one writes to disk).
type discard struct{}

func (discard) Append(engine.Event) error { return nil }

// BenchmarkLongRolloutHeap runs rollouts with one step of b.N·100 looks at a 1ms interval and
// reports the live heap after the engine is done, per look, so growth with length shows as a
// rising figure: go test -run XXX -bench LongRolloutHeap -benchtime 5x ./engine
func BenchmarkLongRolloutHeap(b *testing.B) {
	for _, looks := range []int{720, 2880, 11520} {
		b.Run(time.Duration(looks*30*int(time.Second)).String()+"-equivalent", func(b *testing.B) {
			for range b.N {
				rollout, err := spec.Parse("bench.yaml", []byte(benchSpec(looks)))
				if err != nil {
					b.Fatal(err)
				}
				w := newWorld()
				eng, err := engine.New(engine.Config{Spec: rollout, Router: w, Source: w, Journal: discard{}})
				if err != nil {
					b.Fatal(err)
				}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				if out, err := eng.Run(context.Background()); out != engine.OutcomePromoted || err != nil {
					b.Fatalf("%s %v", out, err)
				}
				st := eng.Snapshot()
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapInuse)/1024, "heap-KiB")
				b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/1024, "growth-KiB")
				runtime.KeepAlive(st)
			}
		})
	}
}

func benchSpec(looks int) string {
	return `name: bench
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {interval: 1ms, stabilization: 0s, judge: threshold}
checks:
  - {name: latency, canary: canary_latency, baseline: stable_latency, direction: lower_is_better, maxDeviationPercent: 20}
  - name: errors
    critical: true
    direction: lower_is_better
    maxIncrease: 0.01
    events: {canary: canary_errors, baseline: stable_errors}
    total: {canary: canary_requests, baseline: stable_requests}
steps:
  - {setWeight: 10, analyze: ` + time.Duration(looks*int(time.Millisecond)).String() + `}
`
}

// BenchmarkReplayHeap replays recordings of one long step — a look every 30 s for 6, 24 and
// 96 hours — to their end and reports the live heap the Player holds beyond the recording
// itself, which must not grow with the recording's length:
// go test -run XXX -bench ReplayHeap -benchtime 3x ./engine
func BenchmarkReplayHeap(b *testing.B) {
	for _, hours := range []int{6, 24, 96} {
		b.Run(fmt.Sprintf("%dh", hours), func(b *testing.B) {
			rec := longRecording(b, hours*120)
			var base runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&base)
			for range b.N {
				p := engine.NewPlayer(rec, engine.MaxReplaySpeed)
				p.ToEnd()
				if st := p.Status(); !st.Done {
					b.Fatalf("replay at %d of %d", st.Pos, st.Len)
				}
				var after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(len(rec.Events)), "events")
				b.ReportMetric(float64(int64(after.HeapInuse)-int64(base.HeapInuse))/1024, "player-KiB")
				runtime.KeepAlive(p)
			}
		})
	}
}

// longRecording is the journal of a promoted rollout with one step of looks looks, 30 s apart.
func longRecording(tb testing.TB, looks int) *engine.Recording {
	tb.Helper()
	text := strings.Replace(benchSpec(looks*30000), "interval: 1ms", "interval: 30s", 1) // analyze: looks × 30 s
	rollout, err := spec.Parse("bench.yaml", []byte(text))
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	var evs []engine.Event
	add := func(at time.Duration, ev engine.Event) {
		ev.Seq, ev.Time = int64(len(evs)+1), t0.Add(at)
		evs = append(evs, ev)
	}
	w, full := 10, 100
	add(0, engine.Event{Type: engine.EventRolloutStarted, Attempt: 1})
	add(0, engine.Event{Type: engine.EventStepStarted, Weight: &w})
	add(0, engine.Event{Type: engine.EventWeightSet, Weight: &w})
	add(0, engine.Event{Type: engine.EventAnalysisStarted})
	for i := 1; i <= looks; i++ {
		var checks []engine.CheckResult
		for _, name := range []string{"latency", "errors"} {
			checks = append(checks, engine.CheckResult{Check: name, LastCanary: metrics.Number(100 + i%7), LastBaseline: 100,
				Result: metrics.Result{Verdict: metrics.Pass, Reason: fmt.Sprintf("canary %d vs baseline 100 (+%d%%; tolerance 20%%)", 100+i%7, i%7),
					Canary: metrics.Number(100 + i%7), Baseline: 100, Deviation: metrics.Number(i % 7)}})
		}
		add(time.Duration(i)*30*time.Second, engine.Event{Type: engine.EventAnalysis, Checks: checks})
	}
	end := time.Duration(looks) * 30 * time.Second
	add(end, engine.Event{Type: engine.EventStepPassed, Reason: "every check passed"})
	add(end, engine.Event{Type: engine.EventPromoteStarted, Reason: "every step passed"})
	add(end, engine.Event{Type: engine.EventWeightSet, Weight: &full})
	add(end, engine.Event{Type: engine.EventPromoted, Weight: &full})
	return &engine.Recording{Header: engine.Header{Spec: rollout}, Events: evs}
}
