package engine_test

import (
	"context"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
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
				spec, err := engine.ParseSpec("bench.yaml", []byte(benchSpec(looks)))
				if err != nil {
					b.Fatal(err)
				}
				w := newWorld()
				eng, err := engine.New(engine.Config{Spec: spec, Router: w, Source: w, Journal: discard{}})
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
