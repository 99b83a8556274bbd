package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perchhq/perch/demo"
	"github.com/perchhq/perch/engine"
)

// TestShippedRecordingsReplay plays every recording under demo/recordings back headless: each
// prints exactly its journal's events and ends as its scenario is designed to.
func TestShippedRecordingsReplay(t *testing.T) {
	for _, sc := range demo.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			path := filepath.Join("..", "..", "demo", "recordings", sc.Name+".jsonl")
			rec, err := engine.LoadRecording(path)
			if err != nil {
				t.Fatalf("no recording for scenario %s: %v (regenerate with bash demo/recordings/generate.sh)", sc.Name, err)
			}
			if len(rec.Warnings) > 0 {
				t.Errorf("recording has warnings: %v", rec.Warnings)
			}
			a, stdout, stderr := testApp()
			if code := a.main(context.Background(), []string{"replay", path, "--headless", "--output", "json", "--speed", "1024"}); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			evs := jsonEvents(t, stdout.Bytes())
			if len(evs) != len(rec.Events) {
				t.Fatalf("replayed %d events, the recording has %d", len(evs), len(rec.Events))
			}
			want := engine.EventPromoted
			if sc.Expect == engine.OutcomeRolledBack {
				want = engine.EventRolledBack
			}
			if last := evs[len(evs)-1]; last.Type != want {
				t.Errorf("the recording ends with %s; scenario %s is designed to end %s", last.Type, sc.Name, sc.Expect)
			}
			if !strings.Contains(stderr.String(), "the rollout was "+string(sc.Expect)) {
				t.Errorf("stderr %q does not say how the rollout ended", stderr)
			}
			// The text form shows the recorded times and descriptions.
			a, text, _ := testApp()
			a.main(context.Background(), []string{"replay", path, "--headless", "--speed", "1024"})
			first := rec.Events[0]
			if !strings.HasPrefix(text.String(), first.Time.UTC().Format("2006-01-02T15:04:05Z")+"  rollout started") {
				t.Errorf("text replay starts %q", strings.SplitN(text.String(), "\n", 2)[0])
			}
		})
	}
}

func TestReplayRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	notJournal := filepath.Join(dir, "notes.txt")
	os.WriteFile(notJournal, []byte("hello\n"), 0o644)
	good := filepath.Join("..", "..", "demo", "recordings", "healthy.jsonl")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"replay", filepath.Join(dir, "nope.jsonl"), "--headless"}, "no such file"},
		{"not a journal", []string{"replay", notJournal, "--headless"}, "not a perch journal"},
		{"speed too high", []string{"replay", good, "--headless", "--speed", "5000"}, "--speed: want 0.125 to 1024"},
		{"speed zero", []string{"replay", good, "--headless", "--speed", "0"}, "--speed: want 0.125 to 1024"},
		{"no file", []string{"replay", "--headless"}, "takes one recording"},
		{"no TUI yet", []string{"replay", good}, "use --headless"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, _, stderr := testApp()
			if code := a.main(context.Background(), tc.args); code != exitBadInput {
				t.Errorf("exit %d, want %d (%s)", code, exitBadInput, stderr)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q, want it to say %q", stderr, tc.want)
			}
		})
	}
}

func TestReplayToleratesATornLastLine(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "demo", "recordings", "healthy.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	torn := append(bytes.Join(lines[:6], nil), []byte(`{"seq":6,"time":"2026-`)...)
	path := filepath.Join(t.TempDir(), "torn.jsonl")
	if err := os.WriteFile(path, torn, 0o644); err != nil {
		t.Fatal(err)
	}
	a, stdout, stderr := testApp()
	if code := a.main(context.Background(), []string{"replay", path, "--headless", "--speed", "1024"}); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := bytes.Count(stdout.Bytes(), []byte("\n")); n != 5 {
		t.Errorf("printed %d events, want the 5 complete ones", n)
	}
	if !strings.Contains(stderr.String(), "dropped a torn last line") {
		t.Errorf("stderr %q, want a warning about the torn line", stderr)
	}
}
