package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
	"github.com/perchhq/perch/internal/printable/printabletest"
	"github.com/perchhq/perch/metrics"
)

// hostileJournal writes a copy of the healthy demo recording, cut short and ended by a stop,
// with every text of every event hand-edited to hold control characters, escape sequences,
// line breaks and bidi controls. It returns its path and the events as written.
func hostileJournal(t *testing.T) (string, []engine.Event) {
	t.Helper()
	rec, err := engine.LoadRecording(filepath.Join("..", "..", "demo", "recordings", "healthy.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	events := rec.Events[:len(rec.Events)-3]
	last := events[len(events)-1]
	events = append(events, engine.Event{Seq: last.Seq + 1, Time: last.Time.Add(time.Second), Type: engine.EventStopped, Step: last.Step})
	path := filepath.Join(t.TempDir(), "hostile.jsonl")
	j, err := engine.CreateJournal(path, rec.Header.Spec, events[0].Time)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i := range events {
		printabletest.Fill(&events[i], reflect.TypeFor[engine.EventType]())
		if err := j.Append(events[i]); err != nil {
			t.Fatal(err)
		}
	}
	return path, events
}

// TestHostileJournalReplaysPrintable replays a hand-edited journal headless: the journal keeps
// the text as written, the text output is one printable line per event, the JSON output one
// line per event that decodes to the journal's event, and the closing words are printable.
func TestHostileJournalReplaysPrintable(t *testing.T) {
	path, events := hostileJournal(t)
	rec, err := engine.LoadRecording(path)
	if err != nil {
		t.Fatalf("the hand-edited journal does not load: %v", err)
	}
	// As written, but for invalid UTF-8, which JSON cannot hold and encoding/json replaces.
	var written engine.Event
	line, _ := json.Marshal(events[3])
	json.Unmarshal(line, &written)
	got, _ := json.Marshal(rec.Events[3])
	want, _ := json.Marshal(written)
	if !bytes.Equal(got, want) || !strings.Contains(rec.Events[3].Reason, "\x1b]52;") {
		t.Fatalf("the journal did not keep the text as written:\n%s\n%s", got, want)
	}

	a, stdout, stderr := testApp()
	if code := a.main(context.Background(), []string{"replay", path, "--headless", "--speed", "1024"}); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != len(events) {
		t.Fatalf("%d lines for %d events:\n%s", len(lines), len(events), stdout)
	}
	for i, l := range lines {
		if r, ok := printabletest.Find(l, false); ok {
			t.Fatalf("line %d holds %U: %q", i+1, r, l)
		}
		if !strings.HasPrefix(l, events[i].Time.UTC().Format(time.RFC3339)+"  ") {
			t.Errorf("line %d does not start with its event's time: %q", i+1, l)
		}
	}
	if !strings.Contains(stdout.String(), `Reason\x00\x01`) {
		t.Errorf("the reasons are not shown, escaped:\n%s", stdout)
	}
	if r, ok := printabletest.Find(stderr.String(), true); ok || !strings.Contains(stderr.String(), "stopped at step") {
		t.Errorf("stderr holds %U or does not say where it stopped: %q", r, stderr)
	}

	a, stdout, stderr = testApp()
	if code := a.main(context.Background(), []string{"replay", path, "--headless", "--output", "json", "--speed", "1024"}); code != exitOK {
		t.Fatalf("json: exit %d: %s", code, stderr)
	}
	jsonLines := bytes.Split(bytes.TrimSuffix(stdout.Bytes(), []byte("\n")), []byte("\n"))
	if len(jsonLines) != len(events) {
		t.Fatalf("%d JSON lines for %d events", len(jsonLines), len(events))
	}
	for i, l := range jsonLines {
		if r, ok := printabletest.Find(string(l), false); ok {
			t.Fatalf("JSON line %d holds %U raw: %s", i+1, r, l)
		}
	}
	for i, ev := range jsonEvents(t, stdout.Bytes()) {
		got, _ := json.Marshal(ev)
		want, _ := json.Marshal(rec.Events[i])
		if !bytes.Equal(got, want) {
			t.Fatalf("JSON line %d is not the journal's event:\n%s\n%s", i+1, got, want)
		}
	}
}

// TestHeadlessEventIsOnePrintableLine prints every event type with hostile text in each of
// its fields, in both formats.
func TestHeadlessEventIsOnePrintableLine(t *testing.T) {
	_, events := hostileJournal(t)
	rec, _ := engine.LoadRecording(filepath.Join("..", "..", "demo", "recordings", "healthy.jsonl"))
	seen := map[engine.EventType]bool{}
	for _, ev := range events {
		seen[ev.Type] = true
	}
	for _, typ := range []engine.EventType{engine.EventWeightFailed, engine.EventPaused, engine.EventResumed, engine.EventHeld,
		engine.EventRollbackStarted, engine.EventRolledBack, engine.EventCommandRefused, engine.EventReconciled, engine.EventNote} {
		if !seen[typ] {
			ev := engine.Event{Seq: 1, Type: typ, Weight: new(int)}
			printabletest.Fill(&ev, reflect.TypeFor[engine.EventType]())
			events = append(events, ev)
		}
	}
	for _, ev := range events {
		for _, format := range []string{outputText, outputJSON} {
			var out bytes.Buffer
			if err := printEvent(&out, ev, rec.Header.Spec, format); err != nil {
				t.Fatal(err)
			}
			line, ok := strings.CutSuffix(out.String(), "\n")
			if !ok || strings.Contains(line, "\n") {
				t.Fatalf("%s %s: not one line: %q", ev.Type, format, out.String())
			}
			if r, ok := printabletest.Find(line, false); ok {
				t.Fatalf("%s %s holds %U: %q", ev.Type, format, r, line)
			}
		}
	}
}

// TestStatusTextIsPrintable prints a status whose every text holds hostile text: each part
// stays on its own line and none holds a control character.
func TestStatusTextIsPrintable(t *testing.T) {
	s := control.Status{Phase: engine.PhasePaused, Step: 2, Steps: 3, Weight: 10, Target: 10, LastEvent: time.Now(),
		Checks: []control.CheckStatus{{Verdict: metrics.Fail}, {Verdict: metrics.Pass}}}
	printabletest.Fill(&s, reflect.TypeFor[engine.Phase]())
	var out bytes.Buffer
	printStatus(&out, &s)
	if r, ok := printabletest.Find(out.String(), true); ok {
		t.Fatalf("status holds %U:\n%q", r, out.String())
	}
	// The rollout, the reason, the provider's error, one line per check, the last event.
	if n, want := strings.Count(out.String(), "\n"), 3+len(s.Checks)+1; n != want {
		t.Errorf("%d lines, want %d:\n%s", n, want, out.String())
	}
}
