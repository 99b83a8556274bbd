package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

const replaySpec = `
name: replay-test
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {builtin: {}}
analysis: {interval: 2s, stabilization: 1s, judge: threshold}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.01, critical: true}
steps:
  - {setWeight: 10, analyze: 4s}
  - pause: {}
  - {setWeight: 50, analyze: 4s}
`

func parseSpec(t *testing.T) *spec.Rollout {
	t.Helper()
	rollout, err := spec.Parse("replay.yaml", []byte(replaySpec))
	if err != nil {
		t.Fatal(err)
	}
	return rollout
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// handRecording is a rollout whose timing the tests know: events at the given offsets, with
// an operator's pause of five hours before step 3.
func handRecording(t *testing.T) *engine.Recording {
	t.Helper()
	w := func(v int) *int { return &v }
	alice := &engine.Actor{Name: "alice", Role: engine.RoleOperator}
	evs := []struct {
		at time.Duration
		ev engine.Event
	}{
		{0, engine.Event{Type: engine.EventRolloutStarted, Attempt: 1}},
		{0, engine.Event{Type: engine.EventStepStarted, Step: 0, Weight: w(10)}},
		{time.Second, engine.Event{Type: engine.EventWeightSet, Weight: w(10)}},
		{2 * time.Second, engine.Event{Type: engine.EventAnalysisStarted}},
		{4 * time.Second, engine.Event{Type: engine.EventAnalysis, Checks: []engine.CheckResult{{Check: "errors", Result: metrics.Result{Verdict: metrics.Pass}}}}},
		{6 * time.Second, engine.Event{Type: engine.EventStepPassed}},
		{6 * time.Second, engine.Event{Type: engine.EventStepStarted, Step: 1}},
		{6*time.Second + 5*time.Hour, engine.Event{Type: engine.EventStepPassed, Step: 1, Actor: alice, Reason: "resumed by alice"}},
		{6*time.Second + 5*time.Hour, engine.Event{Type: engine.EventStepStarted, Step: 2, Weight: w(50)}},
		{7*time.Second + 5*time.Hour, engine.Event{Type: engine.EventWeightSet, Step: 2, Weight: w(50)}},
		{8*time.Second + 5*time.Hour, engine.Event{Type: engine.EventPromoteStarted, Step: 2, Reason: "every step passed"}},
		{9*time.Second + 5*time.Hour, engine.Event{Type: engine.EventPromoted, Step: 2, Weight: w(100)}},
	}
	rec := &engine.Recording{Header: engine.Header{Journal: engine.JournalVersion, Created: t0, Spec: parseSpec(t)}}
	step := 0
	for i, e := range evs {
		ev := e.ev
		ev.Seq = int64(i + 1)
		ev.Time = t0.Add(e.at)
		if ev.Type == engine.EventStepStarted {
			step = ev.Step
		}
		ev.Step = step
		rec.Events = append(rec.Events, ev)
	}
	return rec
}

// fold is the state after the first n events of rec.
func fold(rec *engine.Recording, n int) engine.State {
	st := engine.NewState(rec.Header.Spec)
	for _, ev := range rec.Events[:n] {
		st.Apply(ev)
	}
	return st
}

// arrival is an event and how long after the start of playback it was streamed.
type arrival struct {
	seq   int64
	after time.Duration
}

func collect(ctx context.Context, es *engine.EventStream, start time.Time) []arrival {
	var out []arrival
	for {
		ev, ok := es.Next(ctx)
		if !ok {
			return out
		}
		out = append(out, arrival{ev.Seq, time.Since(start)})
	}
}

func TestPlayerWaitsRecordedGapsOverSpeed(t *testing.T) {
	cases := []struct {
		name  string
		speed float64
	}{{"speed 1", 1}, {"speed 2", 2}, {"speed 0.5", 0.5}}
	// When each event is due, in seconds of recorded time from the first: the five-hour pause
	// plays as two analysis intervals (4 s).
	want := []time.Duration{0, 0, 1, 2, 4, 6, 6, 10, 10, 11, 12, 13}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := handRecording(t)
				p := engine.NewPlayer(rec, tc.speed)
				es := p.Events()
				start := time.Now()
				done := make(chan error)
				go func() { done <- p.Run(context.Background()) }()
				got := collect(context.Background(), es, start)
				if err := <-done; err != nil {
					t.Fatalf("Run: %v", err)
				}
				if len(got) != len(want) {
					t.Fatalf("streamed %d events, want %d", len(got), len(want))
				}
				for i, a := range got {
					at := time.Duration(float64(want[i]*time.Second) / tc.speed)
					if a.seq != int64(i+1) || a.after != at {
						t.Errorf("event %d: seq %d streamed after %s, want seq %d after %s", i, a.seq, a.after, i+1, at)
					}
				}
				if st := p.Status(); !st.Done || st.Pos != len(rec.Events) || !st.At.Equal(rec.Events[len(rec.Events)-1].Time) {
					t.Errorf("status at the end: %+v", st)
				}
			})
		})
	}
}

func TestPlayerPauseKeepsWhatWasLeftOfTheGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := handRecording(t)
		p := engine.NewPlayer(rec, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go p.Run(ctx)
		time.Sleep(1500 * time.Millisecond) // events at 0, 0, 1 s applied; the next is due at 2 s
		synctest.Wait()
		if pos := p.Status().Pos; pos != 3 {
			t.Fatalf("after 1.5 s: %d events applied, want 3", pos)
		}
		p.TogglePause()
		time.Sleep(time.Hour)
		synctest.Wait()
		if st := p.Status(); st.Pos != 3 || !st.Paused {
			t.Fatalf("paused for an hour: %+v, want still at 3 and paused", st)
		}
		p.TogglePause()
		time.Sleep(499 * time.Millisecond)
		synctest.Wait()
		if pos := p.Status().Pos; pos != 3 {
			t.Fatalf("0.499 s after resuming: %d events, want 3 (half a second of the gap was left)", pos)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if pos := p.Status().Pos; pos != 4 {
			t.Fatalf("0.5 s after resuming: %d events, want 4", pos)
		}
	})
}

func TestPlayerSpeedChangesTheRemainingWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := engine.NewPlayer(handRecording(t), 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go p.Run(ctx)
		time.Sleep(6 * time.Second) // at the pause step: the next event is 4 s (the cut gap) away
		synctest.Wait()
		if pos := p.Status().Pos; pos != 7 {
			t.Fatalf("after 6 s: %d events, want 7", pos)
		}
		time.Sleep(2 * time.Second) // 2 s of the 4 s left
		p.Faster()                  // ×2: the 2 s left take 1 s
		p.Faster()                  // ×4: 0.5 s
		if s := p.Status().Speed; s != 4 {
			t.Fatalf("speed after two Faster: %v", s)
		}
		time.Sleep(499 * time.Millisecond)
		synctest.Wait()
		if pos := p.Status().Pos; pos != 7 {
			t.Fatalf("too early: %d events", pos)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if pos := p.Status().Pos; pos != 9 {
			t.Fatalf("after the remaining 0.5 s at ×4: %d events, want 9", pos)
		}
	})
}

func TestPlayerSpeedLimits(t *testing.T) {
	cases := []struct {
		name  string
		start float64
		move  func(*engine.Player)
		times int
		want  float64
	}{
		{"faster caps", 1, (*engine.Player).Faster, 20, engine.MaxReplaySpeed},
		{"slower caps", 1, (*engine.Player).Slower, 20, engine.MinReplaySpeed},
		{"zero means 1", 0, (*engine.Player).Faster, 0, 1},
		{"too fast is clamped", 1e9, (*engine.Player).Faster, 0, engine.MaxReplaySpeed},
		{"slower halves", 8, (*engine.Player).Slower, 1, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := engine.NewPlayer(handRecording(t), tc.start)
			for range tc.times {
				tc.move(p)
			}
			if got := p.Status().Speed; got != tc.want {
				t.Errorf("speed %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPlayerSeeksShowTheFoldedState(t *testing.T) {
	// Step starts are events 2, 7 and 9 (1-based): seeking lands just after them.
	cases := []struct {
		name    string
		from    int
		seek    func(*engine.Player)
		wantPos int
	}{
		{"next from step 1", 2, (*engine.Player).NextStep, 7},
		{"next mid-step", 3, (*engine.Player).NextStep, 7},
		{"next from the last step goes to the end", 10, (*engine.Player).NextStep, 12},
		{"prev mid-step goes to its start", 5, (*engine.Player).PrevStep, 2},
		{"prev at a step's start goes to the one before", 7, (*engine.Player).PrevStep, 2},
		{"prev in the first step goes to the start", 2, (*engine.Player).PrevStep, 0},
		{"to start", 10, (*engine.Player).ToStart, 0},
		{"to end", 3, (*engine.Player).ToEnd, 12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := handRecording(t)
				p := engine.NewPlayer(rec, 1)
				p.Linger = true
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go p.Run(ctx)
				playTo(t, p, tc.from)
				tc.seek(p)
				if got := p.Status().Pos; got != tc.wantPos {
					t.Fatalf("position %d, want %d", got, tc.wantPos)
				}
				ch, unsubscribe := p.Subscribe()
				defer unsubscribe()
				if got, want := <-ch, fold(rec, tc.wantPos); !reflect.DeepEqual(got, want) {
					t.Errorf("the state after seeking is not the fold of the first %d events:\n got %+v\nwant %+v", tc.wantPos, got, want)
				}
				time.Sleep(time.Hour) // paused: a seek does not resume playback
				synctest.Wait()
				if got := p.Status().Pos; got != tc.wantPos {
					t.Errorf("a paused player moved on to %d after a seek", got)
				}
			})
		})
	}
}

// playTo lets p play until it has applied n events, then pauses it there.
func playTo(t *testing.T, p *engine.Player, n int) {
	t.Helper()
	for p.Status().Pos < n {
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
	}
	p.TogglePause()
	if got := p.Status().Pos; got != n {
		t.Fatalf("playback passed %d without stopping there (at %d)", n, got)
	}
}

func TestPlayerLingersForSeeksAfterTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := handRecording(t)
		p := engine.NewPlayer(rec, 1000)
		p.Linger = true
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		if !p.Status().Done {
			t.Fatal("not at the end after a minute at ×1000")
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned at the end with Linger set: %v", err)
		default:
		}
		p.ToStart()
		synctest.Wait()
		if st := p.Status(); st.Done || st.Pos != 2 {
			t.Fatalf("after ToStart with Linger: %+v, want playing again from the start (the two events at 0 s applied)", st)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run with Linger returned %v when its context ended, want nil", err)
		}
	})
}

func TestPlayerStoppedEarlyReportsWhy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := engine.NewPlayer(handRecording(t), 1)
		ch, _ := p.Subscribe()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := p.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run: %v, want the context's deadline", err)
		}
		var last engine.State
		for st := range ch { // closed when Run returns
			last = st
		}
		if last.Seq != 4 {
			t.Errorf("the last state published was after event %d, want 4 (3 s into the recording)", last.Seq)
		}
	})
}

func TestPlayerPublishesPlaybackChanges(t *testing.T) {
	p := engine.NewPlayer(handRecording(t), 1)
	ch, unsubscribe := p.Subscribe()
	defer unsubscribe()
	<-ch // the initial state
	for _, change := range []struct {
		name string
		do   func()
	}{{"pause", p.TogglePause}, {"faster", p.Faster}, {"slower", p.Slower}, {"next step", p.NextStep}, {"to start", p.ToStart}} {
		change.do()
		select {
		case <-ch:
		default:
			t.Errorf("%s published no state for the UI to redraw", change.name)
		}
	}
}

// TestReplayReproducesARecordedRun runs a real engine to a journal, then replays the journal:
// the player streams the same events and ends in the same state as the engine.
func TestReplayReproducesARecordedRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	var engineFinal engine.State
	synctest.Test(t, func(t *testing.T) {
		spec := parseSpec(t)
		j, err := engine.CreateJournal(path, spec, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		eng, err := engine.New(engine.Config{Spec: spec, Router: &enginetest.Router{}, Source: steadySource{}, Journal: j})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			// Resume the pause step once the engine reaches it.
			ch, unsubscribe := eng.Subscribe()
			defer unsubscribe()
			for st := range ch {
				if st.Step == 1 && st.Phase == engine.PhasePaused {
					eng.Do(context.Background(), engine.Command{Kind: engine.CommandResume, Step: 1, Actor: engine.Actor{Name: "alice", Role: engine.RoleOperator}})
					return
				}
			}
		}()
		out, err := eng.Run(context.Background())
		if err != nil || out != engine.OutcomePromoted {
			t.Fatalf("engine: %s, %v", out, err)
		}
		engineFinal = eng.Snapshot()
	})
	rec, err := engine.LoadRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Events) < 10 {
		t.Fatalf("the engine recorded only %d events", len(rec.Events))
	}
	synctest.Test(t, func(t *testing.T) {
		p := engine.NewPlayer(rec, 8)
		es := p.Events()
		ch, _ := p.Subscribe()
		go p.Run(context.Background())
		var streamed []engine.Event
		for {
			ev, ok := es.Next(context.Background())
			if !ok {
				break
			}
			streamed = append(streamed, ev)
		}
		var last engine.State
		for st := range ch {
			last = st
		}
		if !reflect.DeepEqual(streamed, rec.Events) {
			t.Errorf("replay streamed %d events, not the %d recorded ones in order", len(streamed), len(rec.Events))
		}
		if last.Phase != engine.PhasePromoted || last.Seq != engineFinal.Seq || last.Weight != engineFinal.Weight {
			t.Errorf("replay ended %s at seq %d weight %d; the engine ended %s at seq %d weight %d",
				last.Phase, last.Seq, last.Weight, engineFinal.Phase, engineFinal.Seq, engineFinal.Weight)
		}
	})
}

// steadySource answers 100 requests and no errors at every step.
type steadySource struct{}

func (steadySource) Samples(_ context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	measure, _, err := metrics.ParseBuiltinQuery(q)
	if err != nil {
		return nil, err
	}
	value := 100.0
	if measure == metrics.MeasureErrors {
		value = 0
	}
	var out []metrics.Sample
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, metrics.Sample{Time: t, Value: value})
	}
	return out, nil
}
