package engine_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// writeJournal writes a journal with n simple events through the real Journal.
func writeJournal(t *testing.T, spec *spec.Rollout, n int) (string, []engine.Event) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := engine.CreateJournal(path, spec, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var events []engine.Event
	w := 10
	for i := 1; i <= n; i++ {
		ev := engine.Event{Seq: int64(i), Time: time.Unix(int64(i), 0).UTC(), Type: engine.EventWeightSet, Weight: &w}
		if i == 2 {
			ev = engine.Event{Seq: 2, Time: time.Unix(2, 0).UTC(), Type: engine.EventAnalysis, Checks: []engine.CheckResult{{
				Check: "latency", LastCanary: 1.5, LastBaseline: metrics.Number(nan()),
				Result: metrics.Result{Verdict: metrics.Inconclusive, Reason: "too few", Canary: metrics.Number(nan()), Baseline: 1, Deviation: metrics.Number(nan())},
			}}}
		}
		if err := j.Append(ev); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	return path, events
}

func TestJournalRoundTrip(t *testing.T) {
	spec := testSpec(t, specOpts{})
	path, events := writeJournal(t, spec, 5)
	rec, err := engine.LoadRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Events) != 5 || len(rec.Warnings) != 0 {
		t.Fatalf("read %d events with warnings %v, want 5 and none", len(rec.Events), rec.Warnings)
	}
	if a, b := mustJSON(t, rec.Header.Spec), mustJSON(t, spec); a != b {
		t.Errorf("spec in header differs from the spec written:\n%s\n%s", a, b)
	}
	for i := range events {
		if a, b := mustJSON(t, rec.Events[i]), mustJSON(t, events[i]); a != b {
			t.Errorf("event %d read back as\n%s\nwant\n%s", i+1, a, b)
		}
	}
	if _, err := engine.CreateJournal(path, spec, time.Now()); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("creating over an existing journal: %v, want a refusal", err)
	}
}

func TestJournalTornLastLine(t *testing.T) {
	spec := testSpec(t, specOpts{})
	path, _ := writeJournal(t, spec, 3)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"time":"1970-01-01T00:00:04Z","type":"weight_s`) // the crash came mid-write
	f.Close()

	j, rec, err := engine.OpenJournal(path)
	if err != nil {
		t.Fatalf("open a journal with a torn last line: %v", err)
	}
	if len(rec.Events) != 3 || len(rec.Warnings) != 1 || !strings.Contains(rec.Warnings[0], "line 5") {
		t.Fatalf("%d events, warnings %q; want 3 events and a warning about line 5", len(rec.Events), rec.Warnings)
	}
	w := 20
	if err := j.Append(engine.Event{Seq: 4, Time: time.Unix(4, 0), Type: engine.EventWeightSet, Weight: &w}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	rec, err = engine.LoadRecording(path)
	if err != nil || len(rec.Events) != 4 || len(rec.Warnings) != 0 || *rec.Events[3].Weight != 20 {
		t.Fatalf("after appending past the torn line: %v, %d events, warnings %v; want 4 clean events", err, len(rec.Events), rec.Warnings)
	}
}

func TestJournalErrors(t *testing.T) {
	spec := testSpec(t, specOpts{})
	path, _ := writeJournal(t, spec, 3)
	good, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(good), "\n")
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", "empty journal"},
		{"not a journal", "{\"hello\":1}\n", "line 1: not a perch journal"},
		{"corrupt middle line", lines[0] + lines[1] + "garbage\n" + lines[3], "line 3: not a journal event"},
		{"gap in sequence", lines[0] + lines[1] + lines[3], "line 3: event seq 3 where 2 was expected"},
		{"unknown event", lines[0] + `{"seq":1,"time":"1970-01-01T00:00:01Z","type":"exploded","step":0}` + "\n", `line 2: event 1: unknown type "exploded"`},
		{"step out of range", lines[0] + `{"seq":1,"time":"1970-01-01T00:00:01Z","type":"step_passed","step":9}` + "\n", "line 2: event 1: step 9 outside"},
		{"weight without value", lines[0] + `{"seq":1,"time":"1970-01-01T00:00:01Z","type":"weight_set","step":0}` + "\n", "line 2: event 1: weight_set needs a weight"},
		{"newer format", strings.Replace(lines[0], `"perchJournal":1`, `"perchJournal":9`, 1), "journal format 9 is newer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := engine.ReadJournal(strings.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func FuzzReadJournal(f *testing.F) {
	rollout, err := spec.Load("spec/testdata/checkout-api.yaml")
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	header, _ := json.Marshal(engine.Header{Journal: 1, Spec: rollout})
	buf.Write(append(header, '\n'))
	buf.WriteString(`{"seq":1,"time":"2026-11-22T10:00:00Z","type":"rollout_started","step":0,"attempt":1}` + "\n")
	buf.WriteString(`{"seq":2,"time":"2026-11-22T10:00:00Z","type":"step_started","step":0,"weight":1}` + "\n")
	f.Add(buf.Bytes())
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := engine.ReadJournal(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever the reader accepts, the reducer must fold without panicking.
		st := engine.NewState(rec.Header.Spec)
		for _, ev := range rec.Events {
			st.Apply(ev)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A journal records who did what to a release and why: only its owner may read it.
func TestJournalIsPrivate(t *testing.T) {
	path, _ := writeJournal(t, testSpec(t, specOpts{}), 1)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("journal mode %o, want 600", mode)
	}
}
