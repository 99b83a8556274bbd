package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
)

// TestStatusAndCommandsForScripts: one step numbering (1 for the first) in perch status -o
// json, the journal and --step; repeated commands succeed saying "already …"; status before a
// step's first look shows no made-up values; status --watch follows the rollout in plain text
// to its end and exits with its outcome.
func TestStatusAndCommandsForScripts(t *testing.T) {
	c := newCLI(t, &memBackend{})
	spec := strings.Replace(rolloutYAML, "  - {setWeight: 10, analyze: 1m}\n", "  - pause: {}\n  - {setWeight: 10, analyze: 1h}\n", 1)
	spec = strings.Replace(spec, "name: web\n", "name: web\ncanary: {version: v2.4.0, image: ghcr.io/acme/web:v2.4.0, commit: 1a2b3c4}\n", 1)
	os.WriteFile(filepath.Join(c.dir, "web.yaml"), []byte(spec), 0o644)
	socket := filepath.Join(c.dir, "s.sock")
	exit := make(chan int, 1)
	go func() {
		exit <- c.run(t.Context(), "run", "DIR/web.yaml", "--headless", "--journal", "DIR/j.jsonl", "--socket", socket)
	}()
	shell := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		sh := &app{stdout: &out, stderr: &errOut, registry: c.app.registry, getenv: func(string) string { return "" }}
		code := sh.main(context.Background(), append(args, "--socket", socket))
		return code, out.String(), errOut.String()
	}
	stepOf := func() int {
		t.Helper()
		code, out, errOut := shell("status", "-o", "json")
		var resp control.Response
		if code != 0 || json.Unmarshal([]byte(out), &resp) != nil || resp.Status == nil {
			t.Fatalf("status -o json: exit %d\n%s%s", code, out, errOut)
		}
		return resp.Status.Step
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, _ := shell("status")
		if code == 0 && strings.Contains(out, "web v2.4.0 (image ghcr.io/acme/web:v2.4.0, commit 1a2b3c4)  paused  step 1/3 (pause)") {
			if !strings.Contains(out, "canary weight not set yet") || !strings.Contains(out, "no look yet this step") || regexp.MustCompile(`canary 0\b`).MatchString(out) {
				t.Errorf("status before any weight or look:\n%s\nwant no made-up zeros", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the pause step: exit %d\n%s", code, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if step := stepOf(); step != 1 {
		t.Errorf("status -o json says step %d in the first step, want 1", step)
	}
	if code, out, errOut := shell("pause"); code != 0 || !strings.Contains(out, "pause: already paused") {
		t.Errorf("pause of a paused rollout: exit %d\n%s%s; want 0, already paused", code, out, errOut)
	}
	if code, out, errOut := shell("advance", "--step", "1"); code != 0 {
		t.Fatalf("advance --step 1 in the first step: exit %d\n%s%s", code, out, errOut)
	}
	if step := stepOf(); step != 2 {
		t.Errorf("status -o json says step %d after the first step, want 2", step)
	}
	if code, out, errOut := shell("resume"); code != 0 || !strings.Contains(out, "resume: already running") {
		t.Errorf("resume of a running rollout: exit %d\n%s%s; want 0, already running", code, out, errOut)
	}
	if code, _, errOut := shell("advance", "--step", "1"); code != exitRuntime || !strings.Contains(errOut, "stale command") {
		t.Errorf("advance --step 1 in the second step: exit %d, %q; want refused as stale", code, errOut)
	}

	// The journal counts steps as status and --step do.
	journal, _ := os.ReadFile(filepath.Join(c.dir, "j.jsonl"))
	var started []int
	for _, line := range strings.Split(strings.TrimSpace(string(journal)), "\n")[1:] {
		var raw struct {
			Type string `json:"type"`
			Step int    `json:"step"`
		}
		json.Unmarshal([]byte(line), &raw)
		if raw.Type == string(engine.EventStepStarted) {
			started = append(started, raw.Step)
		}
	}
	if len(started) != 2 || started[0] != 1 || started[1] != 2 {
		t.Errorf("the journal's step_started events say steps %v, want [1 2]", started)
	}

	watched := make(chan struct {
		code     int
		out, err string
	}, 1)
	go func() {
		code, out, errOut := shell("status", "--watch")
		watched <- struct {
			code     int
			out, err string
		}{code, out, errOut}
	}()
	time.Sleep(1500 * time.Millisecond)
	if code, out, errOut := shell("rollback", "--reason", "pager went off"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case w := <-watched:
		if w.code != exitRolledBack || !strings.Contains(w.out, "rolled back") || !strings.Contains(w.out, "step 2/3") || strings.Contains(w.out, "rolled_back") {
			t.Errorf("status --watch: exit %d\n%s%s\nwant it to follow to the rollback and exit 1", w.code, w.out, w.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("status --watch did not end after the rollback")
	}
	if code := <-exit; code != exitRolledBack {
		t.Fatalf("run exited %d, want 1\n%s", code, c.stderr.String())
	}
}

// TestStatusPicksTheRollout: with several perches running, perch status NAME picks one by the
// rollout's name; an unknown name says none runs.
func TestStatusPicksTheRollout(t *testing.T) {
	tmp := t.TempDir()
	env := func(name string) string { return map[string]string{"TMPDIR": tmp}[name] }
	var exits []chan int
	for _, name := range []string{"web", "api"} {
		c := newCLI(t, &memBackend{})
		c.app.getenv = env
		spec := strings.Replace(rolloutYAML, "name: web", "name: "+name, 1)
		spec = strings.Replace(spec, "  - {setWeight: 10, analyze: 1m}\n", "  - pause: {}\n", 1)
		os.WriteFile(filepath.Join(c.dir, "r.yaml"), []byte(spec), 0o644)
		exit := make(chan int, 1)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() { exit <- c.run(ctx, "run", "DIR/r.yaml", "--headless", "--journal", "DIR/j.jsonl") }()
		exits = append(exits, exit)
	}
	shell := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		sh := &app{stdout: &out, stderr: &errOut, registry: memRegistry(&memBackend{}), getenv: env}
		code := sh.main(context.Background(), args)
		return code, out.String(), errOut.String()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, _ := shell("status", "api")
		if code == 0 && strings.HasPrefix(out, "api  paused") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status api never found the api rollout: exit %d\n%s", code, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, errOut := shell("status"); code != exitBadInput || !strings.Contains(errOut, "several perches are running; name the rollout") {
		t.Errorf("status with two running: exit %d, %q", code, errOut)
	}
	if code, _, errOut := shell("status", "nope"); code != exitRuntime || !strings.Contains(errOut, `no running perch of rollout "nope"`) {
		t.Errorf("status nope: exit %d, %q", code, errOut)
	}
	for _, name := range []string{"web", "api"} {
		if code, out, errOut := shell("rollback", name); code != 0 {
			t.Errorf("rollback %s: exit %d\n%s%s", name, code, out, errOut)
		}
	}
	for _, exit := range exits {
		<-exit
	}
}

// TestVersion: perch version and perch --version say the module's version, the commit and Go's
// version.
func TestVersion(t *testing.T) {
	c := newCLI(t, &memBackend{})
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if code := c.run(t.Context(), args...); code != 0 || !strings.HasPrefix(c.stdout.String(), "perch ") || !strings.Contains(c.stdout.String(), "commit ") || !strings.Contains(c.stdout.String(), "go1.") {
			t.Errorf("perch %s: exit %d, %q", args[0], code, c.stdout.String())
		}
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionText(info, true), "perch v1.4.0, commit 1a2b3c4d5e6f with local changes, go1.26.8"; got != want {
		t.Errorf("versionText = %q, want %q", got, want)
	}
}

// TestValidateHints: the mistakes people make get a hint where they are made, and a step that
// sets a weight without analyze gets a warning.
func TestValidateHints(t *testing.T) {
	c := newCLI(t, &memBackend{})
	tests := []struct {
		name, from, to string
		code           int
		want           string
	}{
		{"tab", "    direction:", "\tdirection:", exitBadInput, "bad.yaml:8:1: indented with a tab: YAML indents with spaces only"},
		{"pause with a duration", "  - {setWeight: 50, analyze: 1m}\n", "  - pause: 5m\n  - {setWeight: 50, analyze: 1m}\n", exitBadInput,
			"steps[1].pause: want a mapping, got \"5m\"; write pause: {duration: 5m}, or pause: {} to wait for an operator"},
		{"percent sign", "maxIncrease: 0.01", "maxIncrease: 0.5%", exitBadInput, "write 0.005 for 0.5%"},
		{"indentation", "    total:", "   total:", exitBadInput, "bad.yaml:11:4: indented 3 spaces, as nothing above it is: the lines it follows are indented 4 spaces"},
		{"no analyze", "  - {setWeight: 10, analyze: 1m}\n", "  - {setWeight: 10}\n", exitOK, "bad.yaml:13:5: warning: steps[0] sets 10% without analyze"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yaml := rolloutYAML
			if !strings.Contains(yaml, tc.from) {
				t.Fatalf("the rollout has no %q", tc.from)
			}
			os.WriteFile(filepath.Join(c.dir, "bad.yaml"), []byte(strings.Replace(yaml, tc.from, tc.to, 1)), 0o644)
			code := c.run(t.Context(), "validate", "DIR/bad.yaml")
			if code != tc.code || !strings.Contains(c.stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, c.stderr.String(), tc.code, tc.want)
			}
		})
	}
}

// TestDemoFlagHints: a misspelt scenario gets a "did you mean"; an existing --record file is
// refused without suggesting --resume, which the demo has not.
func TestDemoFlagHints(t *testing.T) {
	c := newCLI(t, &memBackend{})
	if code := c.run(t.Context(), "demo", "--scenario", "error_spike", "--headless"); code != exitBadInput || !strings.Contains(c.stderr.String(), `unknown scenario "error_spike" (did you mean "error-spike"?)`) {
		t.Errorf("demo --scenario error_spike: exit %d, %q", code, c.stderr.String())
	}
	os.WriteFile(filepath.Join(c.dir, "old.jsonl"), []byte("{}\n"), 0o644)
	code := c.run(t.Context(), "demo", "--record", "DIR/old.jsonl", "--headless")
	if errOut := c.stderr.String(); code != exitBadInput || !strings.Contains(errOut, "already exists") || strings.Contains(errOut, "--resume") {
		t.Errorf("demo --record EXISTING: exit %d, %q", code, errOut)
	}
}

// TestHeadlessAnalysisLines: a look's line labels its values (the last interval's canary and
// baseline) and writes them in the check's unit: a rate as a percentage, never "0/0".
func TestHeadlessAnalysisLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCLI(t, &memBackend{})
		if code := c.run(t.Context(), "run", "DIR/web.yaml", "--headless", "--socket", "none", "--journal", "DIR/j.jsonl"); code != exitOK {
			t.Fatalf("exit %d: %s", code, c.stderr.String())
		}
		looks := 0
		for _, line := range strings.Split(c.stdout.String(), "\n") {
			if !strings.Contains(line, "  analysis") {
				continue
			}
			looks++
			if !regexp.MustCompile(`analysis \(last interval\): errors (pass|inconclusive|fail) canary [0-9.]+% baseline [0-9.]+%$`).MatchString(line) {
				t.Errorf("analysis line %q: want its values labelled and in %%", line)
			}
		}
		if looks == 0 {
			t.Fatalf("no analysis lines:\n%s", c.stdout.String())
		}
	})
}
