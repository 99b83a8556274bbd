package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
)

const rolloutYAML = `name: web
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {interval: 10s, stabilization: 10s, judge: threshold}
checks:
  - name: errors
    critical: true
    direction: lower_is_better
    maxIncrease: 0.01
    events: {canary: canary_errors, baseline: stable_errors}
    total: {canary: canary_requests, baseline: stable_requests}
steps:
  - {setWeight: 10, analyze: 1m}
  - {setWeight: 50, analyze: 1m}
`

type cli struct {
	dir            string
	stdout, stderr bytes.Buffer
	app            *app
}

func newCLI(t *testing.T, m *memBackend) *cli {
	t.Helper()
	c := &cli{dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(c.dir, "web.yaml"), []byte(rolloutYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	c.app = &app{stdin: strings.NewReader(""), stdout: &c.stdout, stderr: &c.stderr, registry: memRegistry(m), getenv: testEnv}
	return c
}

func (c *cli) run(ctx context.Context, args ...string) int {
	c.stdout.Reset()
	c.stderr.Reset()
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "DIR", c.dir)
	}
	return c.app.main(ctx, args)
}

func TestRunHeadless(t *testing.T) {
	tests := []struct {
		name   string
		failAt int
		code   int
		last   string
	}{
		{"promotes", 0, exitOK, "promoted: canary weight is 100%"},
		{"rolls back", 50, exitRolledBack, "rolled back: canary weight is 0%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCLI(t, &memBackend{failAt: tc.failAt})
				code := c.run(t.Context(), "run", "DIR/web.yaml", "--headless", "--socket", "none", "--journal", "DIR/j.jsonl")
				if code != tc.code {
					t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, c.stderr.String())
				}
				lines := strings.Split(strings.TrimSpace(c.stdout.String()), "\n")
				if !strings.HasSuffix(lines[len(lines)-1], tc.last) {
					t.Errorf("last line %q, want it to end with %q", lines[len(lines)-1], tc.last)
				}
				rec, err := engine.LoadRecording(filepath.Join(c.dir, "j.jsonl"))
				if err != nil {
					t.Fatal(err)
				}
				if len(rec.Events) != len(lines) {
					t.Errorf("%d lines printed, %d events journaled", len(lines), len(rec.Events))
				}
			})
		})
	}
}

func TestRunHeadlessJSONIsTheJournal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCLI(t, &memBackend{})
		if code := c.run(t.Context(), "run", "DIR/web.yaml", "--headless", "--socket", "none", "-o", "json", "--journal", "DIR/j.jsonl"); code != 0 {
			t.Fatalf("exit %d: %s", code, c.stderr.String())
		}
		journal, _ := os.ReadFile(filepath.Join(c.dir, "j.jsonl"))
		events := strings.SplitN(string(journal), "\n", 2)[1] // the journal without its header
		if c.stdout.String() != events {
			t.Errorf("--output json printed\n%s\nwhich is not the journal's events\n%s", c.stdout.String(), events)
		}
		for _, line := range strings.Split(strings.TrimSpace(c.stdout.String()), "\n") {
			var ev engine.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Type == "" {
				t.Fatalf("line %q is not an event: %v", line, err)
			}
		}
	})
}

func TestRunInterruptedThenResumed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &memBackend{}
		c := newCLI(t, m)
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			time.Sleep(100 * time.Second) // during step 2
			cancel()
		}()
		code := c.run(ctx, "run", "DIR/web.yaml", "--headless", "--socket", "none", "--journal", "DIR/j.jsonl")
		if code != exitRuntime || !strings.Contains(c.stderr.String(), "Resume with: perch run "+c.dir+"/web.yaml --resume --journal "+c.dir+"/j.jsonl") {
			t.Fatalf("exit %d, stderr:\n%s\nwant exit 3 and how to resume", code, c.stderr.String())
		}
		if m.weight != 50 {
			t.Fatalf("weight %d after the interrupt, want 50 left as it was", m.weight)
		}
		if code := c.run(t.Context(), "run", "DIR/web.yaml", "--headless", "--socket", "none", "--resume", "--journal", "DIR/j.jsonl"); code != exitOK {
			t.Fatalf("resume: exit %d: %s", code, c.stderr.String())
		}
		if !strings.HasPrefix(c.stdout.String(), time.Now().UTC().Format("2006")) || !strings.Contains(c.stdout.String(), "resumed from journal") {
			t.Errorf("resumed output does not start with the reconciliation:\n%s", c.stdout.String())
		}
		rec, err := engine.LoadRecording(filepath.Join(c.dir, "j.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if last := rec.Events[len(rec.Events)-1]; last.Type != engine.EventPromoted {
			t.Errorf("journal ends with %s, want promoted", last.Type)
		}
	})
}

func TestRunBadInput(t *testing.T) {
	c := newCLI(t, &memBackend{})
	os.WriteFile(filepath.Join(c.dir, "bad.yaml"), []byte("name: web\nsteps: [{setWeight: 200}]\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad rollout file", []string{"run", "DIR/bad.yaml", "--headless"}, "DIR/bad.yaml:2:21: steps[0].setWeight: weight 200 is outside 1..100"},
		{"missing file", []string{"run", "DIR/none.yaml", "--headless"}, "no such file"},
		{"resume without journal", []string{"run", "DIR/web.yaml", "--headless", "--resume"}, "--resume needs --journal"},
		{"bad output", []string{"run", "DIR/web.yaml", "--headless", "-o", "yaml"}, `--output: want text or json, got "yaml"`},
		{"no file", []string{"run", "--headless"}, "perch run takes one rollout file"},
		{"unknown flag", []string{"run", "DIR/web.yaml", "--hedless"}, "unknown flag: --hedless"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code := c.run(t.Context(), tc.args...); code != exitBadInput {
				t.Errorf("exit %d, want 2", code)
			}
			if want := strings.ReplaceAll(tc.want, "DIR", c.dir); !strings.Contains(c.stderr.String(), want) {
				t.Errorf("stderr:\n%s\nwant it to contain %q", c.stderr.String(), want)
			}
		})
	}
	// A journal is never clobbered by a new run.
	os.WriteFile(filepath.Join(c.dir, "old.jsonl"), []byte("precious\n"), 0o644)
	if code := c.run(t.Context(), "run", "DIR/web.yaml", "--headless", "--journal", "DIR/old.jsonl"); code != exitBadInput || !strings.Contains(c.stderr.String(), "already exists") {
		t.Errorf("exit %d, stderr %q: want a refusal to overwrite the journal", code, c.stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(c.dir, "old.jsonl")); string(b) != "precious\n" {
		t.Error("the old journal was changed")
	}
}

func TestValidate(t *testing.T) {
	c := newCLI(t, &memBackend{})
	if code := c.run(t.Context(), "validate", "DIR/web.yaml"); code != exitOK || !strings.Contains(c.stdout.String(), "web: ok — proxy traffic, prometheus metrics, 1 check(s), 2 step(s): 10% for 1m → 50% for 1m → promote") {
		t.Errorf("exit %d, stdout %q", code, c.stdout.String())
	}
	os.WriteFile(filepath.Join(c.dir, "two.yaml"), []byte("name: x y\nsteps: [{setWeight: 0}]\n"), 0o644)
	code := c.run(t.Context(), "validate", "DIR/two.yaml")
	lines := strings.Split(strings.TrimSpace(c.stderr.String()), "\n")
	if code != exitBadInput || len(lines) < 5 || !strings.HasSuffix(lines[len(lines)-1], "problem(s) in "+c.dir+"/two.yaml") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and every problem listed", code, c.stderr.String())
	}
}

func TestRunSetupFailureLeavesNoJournal(t *testing.T) {
	c := newCLI(t, &memBackend{})
	spec := rolloutYAML + "notify:\n  - webhook: {url: \"${PERCH_TEST_UNSET_HOOK}\"}\n"
	os.WriteFile(filepath.Join(c.dir, "web.yaml"), []byte(spec), 0o644)
	code := c.run(t.Context(), "run", "DIR/web.yaml", "--headless", "--socket", "none", "--journal", "DIR/j.jsonl")
	if code != exitBadInput || !strings.Contains(c.stderr.String(), "PERCH_TEST_UNSET_HOOK") {
		t.Fatalf("exit %d, stderr %q: want exit 2 naming the unset variable", code, c.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(c.dir, "j.jsonl")); !os.IsNotExist(err) {
		t.Errorf("a failed start left its journal behind (%v)", err)
	}
}
