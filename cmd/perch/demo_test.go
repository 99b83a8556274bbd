package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/perchhq/perch/demo"
	"github.com/perchhq/perch/engine"
)

// ciSpeed runs each scenario four times faster than a person would watch it: the five take
// about 90 s together (with -race on 2 cores). The load is capped at demo.MaxRate, so each
// step sees 2000/2400 of the requests it sees at speed 1: the 1% step may hold a few seconds
// of demo time longer, which changes no outcome.
const ciSpeed = "4"

// testApp is the CLI with its output captured.
func testApp() (*app, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, registry: defaultRegistry(), getenv: testEnv}, &stdout, &stderr
}

// jsonEvents parses --output json lines.
func jsonEvents(t *testing.T, out []byte) []engine.Event {
	t.Helper()
	var evs []engine.Event
	for line := range bytes.Lines(out) {
		var ev engine.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("not a JSON event line: %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestDemoScenariosEndAsDesigned runs every scenario headless, as CI does, and checks how and
// why it ended, then that its journal replays to the same events.
func TestDemoScenariosEndAsDesigned(t *testing.T) {
	if raceEnabled {
		// Measured: at the test's 2,000 requests/s the race detector makes the demo's proxy,
		// backends and load cost about a core (0.4 without it), and on two shared cores the
		// p99 of both versions then measures the detector's queueing, not the backends: a +40%
		// tail fell inside the +15% tolerance and was promoted. .ci/run runs it without -race.
		t.Skip("latency scenarios are not measurable under the race detector; run without -race")
	}
	for _, tc := range demoScenarios() {
		t.Run(tc.scenario, func(t *testing.T) { runDemoScenario(t, tc) })
	}
}

// demoScenario is one scenario's expected end: its exit code, and a check of its events.
type demoScenario struct {
	scenario string
	exit     int
	check    func(t *testing.T, evs []engine.Event)
}

// demoScenarios is how each scenario must end, and why.
func demoScenarios() []demoScenario {
	return []demoScenario{
		{"healthy", exitOK, func(t *testing.T, evs []engine.Event) {
			if n := count(evs, engine.EventStepPassed); n != 4 {
				t.Errorf("%d steps passed, want all 4", n)
			}
		}},
		{"error-spike", exitRolledBack, func(t *testing.T, evs []engine.Event) {
			rb := find(evs, engine.EventRollbackStarted)
			if rb == nil || !strings.Contains(rb.Reason, "error_rate failed") || rb.Step != 2 {
				t.Errorf("rollback %+v: want the critical error_rate check during the 25%% step", rb)
			}
		}},
		{"latency-regression", exitRolledBack, func(t *testing.T, evs []engine.Event) {
			// The tail stretches when the 25% step starts: the steps before pass.
			rb := find(evs, engine.EventRollbackStarted)
			if rb == nil || !strings.Contains(rb.Reason, "latency_p99 failed") || rb.Step < 2 {
				t.Errorf("rollback %+v: want the latency_p99 check, from the 25%% step on", rb)
			}
		}},
		{"flaky-metrics", exitOK, func(t *testing.T, evs []engine.Event) {
			// The 1% step may hold first, for evidence (inconclusive), when the load is capped.
			i := slices.IndexFunc(evs, func(ev engine.Event) bool { return ev.Type == engine.EventHeld && ev.Hold == engine.HoldOutage })
			if i < 0 {
				t.Fatalf("no outage hold: %+v", evs)
			}
			if held := evs[i]; !strings.Contains(held.Reason, "simulated outage") || held.Step != 1 {
				t.Fatalf("held %+v: want an outage hold in the 5%% step naming the outage", held)
			}
			after := evs[i:]
			if resumed := find(after, engine.EventResumed); resumed == nil || resumed.Actor != nil || !strings.Contains(resumed.Reason, "recovered") {
				t.Errorf("resumed %+v: want the rollout to continue by itself when the source recovered", resumed)
			}
			if passed := find(after, engine.EventStepPassed); passed == nil || passed.Step != 1 || passed.Actor != nil {
				t.Errorf("after the hold: %+v, want the 5%% step to pass by itself once data returned", passed)
			}
		}},
		{"segments-and-flags", exitOK, func(t *testing.T, evs []engine.Event) {
			seg := find(evs, engine.EventSegmentsSet)
			if seg == nil || !slices.Equal(seg.Segments, []string{"employees"}) || seg.Step != 0 {
				t.Errorf("first segments_set %+v: want employees routed at the segment step", seg)
			}
			if flag := find(evs, engine.EventFlagSet); flag == nil || flag.Flag != "new-dashboard" || *flag.Percent != 20 || flag.Step != 1 {
				t.Errorf("flag_set %+v: want new-dashboard at 20%% in the flag step", flag)
			}
			held := slices.IndexFunc(evs, func(ev engine.Event) bool { return ev.Type == engine.EventHeld && ev.Hold == engine.HoldWindow })
			if held < 0 || !strings.HasPrefix(evs[held].Reason, "release freeze until") {
				t.Fatalf("no hold for the release freeze: %+v", evs)
			}
			if passed := find(evs[held:], engine.EventStepPassed); passed == nil || passed.Step != evs[held].Step || passed.Actor != nil {
				t.Errorf("after the freeze: %+v, want the held step to pass by itself", passed)
			}
			if n := count(evs, engine.EventStepPassed); n != 6 {
				t.Errorf("%d steps passed, want all 6", n)
			}
			promoting := slices.IndexFunc(evs, func(ev engine.Event) bool { return ev.Type == engine.EventPromoteStarted })
			if removed := find(evs[promoting:], engine.EventSegmentsSet); removed == nil || len(removed.Segments) != 0 {
				t.Errorf("at promotion %+v: want the segment removed", removed)
			}
			if find(evs, engine.EventFlagRestored) != nil {
				t.Error("promotion restored the flag; it keeps its last value")
			}
		}},
		{"slow-burn", exitRolledBack, func(t *testing.T, evs []engine.Event) {
			rb := find(evs, engine.EventRollbackStarted)
			if rb == nil || !strings.Contains(rb.Reason, "error_rate failed") || rb.Step < 2 {
				t.Fatalf("rollback %+v: want the error_rate check, from the 25%% step on", rb)
			}
			// Small enough that no single look shows it: the evidence of several adds up.
			looks := 0
			for _, ev := range evs {
				if ev.Type == engine.EventAnalysis && ev.Step == rb.Step {
					looks++
				}
			}
			if looks < 3 {
				t.Errorf("rolled back after %d looks at the step, want the evidence of several", looks)
			}
		}},
	}
}

// runDemoScenario runs one scenario headless, as CI does, and checks its end, its journal and
// its replay.
func runDemoScenario(t *testing.T, tc demoScenario) {
	record := filepath.Join(t.TempDir(), tc.scenario+".jsonl")
	a, stdout, stderr := testApp()
	code := a.main(context.Background(), []string{"demo", "--headless", "--output", "json", "--scenario", tc.scenario, "--speed", ciSpeed, "--record", record})
	if code != tc.exit {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.exit, stdout, stderr)
	}
	evs := jsonEvents(t, stdout.Bytes())
	want := engine.EventPromoted
	if tc.exit == exitRolledBack {
		want = engine.EventRolledBack
	}
	if last := evs[len(evs)-1]; last.Type != want {
		t.Fatalf("last event %s, want %s", last.Type, want)
	}
	tc.check(t, evs)
	if !strings.Contains(stderr.String(), "perch: proxy on http://127.0.0.1:") {
		t.Errorf("the proxy's address was not printed:\n%s", stderr)
	}
	// The journal holds what was printed, and replays to it.
	rec, err := engine.LoadRecording(record)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Events) != len(evs) {
		t.Errorf("journal has %d events, %d were printed", len(rec.Events), len(evs))
	}
	a, replayed, stderr := testApp()
	if code := a.main(context.Background(), []string{"replay", record, "--headless", "-o", "json", "--speed", "1024"}); code != exitOK {
		t.Fatalf("replay exit %d: %s", code, stderr)
	}
	if !bytes.Equal(replayed.Bytes(), stdout.Bytes()) {
		t.Errorf("replay printed other events than the run")
	}
}

func count(evs []engine.Event, typ engine.EventType) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

func find(evs []engine.Event, typ engine.EventType) *engine.Event {
	for i := range evs {
		if evs[i].Type == typ {
			return &evs[i]
		}
	}
	return nil
}

func TestDemoRejectsBadInput(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown scenario", []string{"demo", "--headless", "--scenario", "nope"}, `unknown scenario "nope" (want one of healthy, error-spike`},
		{"zero speed", []string{"demo", "--headless", "--speed", "0"}, "--speed: want a positive number"},
		{"bad output", []string{"demo", "--headless", "-o", "yaml"}, "--output: want text or json"},
		{"no TUI yet", []string{"demo"}, "use --headless"},
		{"stray argument", []string{"demo", "healthy"}, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir) // a journal must not be written for refused input
			a, _, stderr := testApp()
			if code := a.main(context.Background(), tc.args); code != exitBadInput {
				t.Errorf("exit %d, want %d", code, exitBadInput)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q, want it to say %q", stderr, tc.want)
			}
			if files, _ := os.ReadDir(dir); len(files) > 0 {
				t.Errorf("refused input left %v behind", files[0].Name())
			}
		})
	}
}

func TestDemoDoesNotOverwriteARecording(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kept.jsonl")
	if err := os.WriteFile(path, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, _, stderr := testApp()
	if code := a.main(context.Background(), []string{"demo", "--headless", "--record", path}); code != exitBadInput {
		t.Errorf("exit %d, want %d: %s", code, exitBadInput, stderr)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious\n" {
		t.Errorf("the existing file was changed to %q", b)
	}
	if !strings.Contains(stderr.String(), "already exists") {
		t.Errorf("stderr %q, want it to say the file exists", stderr)
	}
}

func TestScenarioListInHelp(t *testing.T) {
	a, stdout, _ := testApp()
	a.main(context.Background(), []string{"demo", "--help"})
	for _, s := range demo.Scenarios() {
		if !strings.Contains(stdout.String(), fmt.Sprintf("  %-19s %s", s.Name, s.Summary)) {
			t.Errorf("demo --help does not describe %s", s.Name)
		}
	}
}
