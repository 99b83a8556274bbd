package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
	"github.com/perchhq/perch/engine/spec"
)

// fleetBackends gives each rollout, by name, its own in-memory provider and source.
type fleetBackends struct {
	mu       sync.Mutex
	backends map[string]*memBackend
}

func (f *fleetBackends) of(name string) *memBackend {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.backends[name] == nil {
		f.backends[name] = &memBackend{}
	}
	return f.backends[name]
}

func (f *fleetBackends) registry() registry {
	r := defaultRegistry()
	for kind := range r.routers {
		r.routers[kind] = func(_ context.Context, s *spec.Rollout, _ connectFlags) (engine.Router, error) {
			return f.of(s.Name), nil
		}
	}
	for kind := range r.sources {
		r.sources[kind] = func(_ context.Context, s *spec.Rollout, _ engine.Router, _ connectFlags) (engine.Source, error) {
			return f.of(s.Name), nil
		}
	}
	return r
}

// fleetRollout is rolloutYAML named name, with dependsOn deps ("" for none) and steps in
// place of its own when given.
func fleetRollout(name, deps, steps string) string {
	s := strings.Replace(rolloutYAML, "name: web\n", "name: "+name+"\n", 1)
	if deps != "" {
		s = strings.Replace(s, "name: "+name+"\n", "name: "+name+"\ndependsOn: ["+deps+"]\n", 1)
	}
	if steps != "" {
		s = s[:strings.Index(s, "steps:\n")] + "steps:\n" + steps
	}
	return s
}

// fleetCLI is a CLI over dir (the working directory, where journals go) with a backend per
// rollout.
func fleetCLI(t *testing.T, files map[string]string) (*cli, *fleetBackends) {
	t.Helper()
	b := &fleetBackends{backends: map[string]*memBackend{}}
	c := &cli{dir: t.TempDir()}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.app = &app{stdin: strings.NewReader(""), stdout: &c.stdout, stderr: &c.stderr, registry: b.registry(), getenv: testEnv}
	return c, b
}

// journalOf is the one journal of rollout name in dir.
func journalOf(t *testing.T, dir, name string) *engine.Recording {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(dir, "perch-"+name+"-*.jsonl"))
	if len(found) != 1 {
		t.Fatalf("journals of %s: %q, want one", name, found)
	}
	rec, err := engine.LoadRecording(found[0])
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestRunSeveralFilesInWaves(t *testing.T) {
	c, _ := fleetCLI(t, map[string]string{
		"eu.yaml": fleetRollout("checkout-eu", "", ""),
		"us.yaml": fleetRollout("checkout-us", "checkout-eu", ""),
	})
	t.Chdir(c.dir)
	synctest.Test(t, func(t *testing.T) {
		if code := c.run(t.Context(), "run", "DIR/eu.yaml", "DIR/us.yaml", "--socket", "none"); code != exitOK {
			t.Fatalf("exit %d, want 0\n%s", code, c.stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(c.stdout.String()), "\n")
		euPromoted, usFirst := -1, -1
		for i, l := range lines {
			switch {
			case strings.HasPrefix(l, "checkout-eu: ") && strings.HasSuffix(l, "promoted: canary weight is 100%"):
				euPromoted = i
			case strings.HasPrefix(l, "checkout-us: ") && usFirst < 0:
				usFirst = i
			case !strings.HasPrefix(l, "checkout-eu: ") && !strings.HasPrefix(l, "checkout-us: "):
				t.Errorf("line %q names no rollout", l)
			}
		}
		if euPromoted < 0 || usFirst < euPromoted {
			t.Errorf("checkout-us printed first at line %d, checkout-eu promoted at %d; want after:\n%s", usFirst, euPromoted, c.stdout.String())
		}
		for _, name := range []string{"checkout-eu", "checkout-us"} {
			rec := journalOf(t, c.dir, name)
			if last := rec.Events[len(rec.Events)-1]; last.Type != engine.EventPromoted || rec.Header.Spec.Name != name {
				t.Errorf("%s's journal ends with %s", name, last.Type)
			}
		}
		if !strings.Contains(c.stderr.String(), "perch: checkout-us: waiting for checkout-eu to promote") ||
			!strings.Contains(c.stderr.String(), "perch: checkout-eu: journal "+c.dir+"/perch-checkout-eu-") {
			t.Errorf("stderr:\n%s", c.stderr.String())
		}
	})
}

func TestRunSeveralFilesRollbackCancelsTheWave(t *testing.T) {
	c, b := fleetCLI(t, map[string]string{
		"eu.yaml":  fleetRollout("checkout-eu", "", ""),
		"us.yaml":  fleetRollout("checkout-us", "checkout-eu", ""),
		"bad.yaml": strings.Replace(fleetRollout("checkout-bad", "", ""), "setWeight: 50", "setWeight: 5", 1),
	})
	b.of("checkout-eu").failAt = 50
	t.Chdir(c.dir)
	synctest.Test(t, func(t *testing.T) {
		if code := c.run(t.Context(), "run", "DIR/eu.yaml", "DIR/us.yaml", "DIR/bad.yaml", "--socket", "none", "-o", "json"); code != exitRolledBack {
			t.Fatalf("exit %d, want 1\n%s", code, c.stderr.String())
		}
		for _, want := range []string{
			"perch: checkout-us: cancelled: checkout-eu rolled back; it never started and nothing was journaled",
			"perch: " + c.dir + "/bad.yaml: refused: " + c.dir + "/bad.yaml:14:17: steps[1].setWeight: weight 5 must be greater than 10 set at steps[0]",
		} {
			if !strings.Contains(c.stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, c.stderr.String())
			}
		}
		if found, _ := filepath.Glob(filepath.Join(c.dir, "perch-checkout-us-*")); len(found) != 0 {
			t.Errorf("a cancelled rollout left journals %q", found)
		}
		if found, _ := filepath.Glob(filepath.Join(c.dir, "perch-checkout-bad-*")); len(found) != 0 {
			t.Errorf("a refused file left journals %q", found)
		}
		// -o json: each line is the journal's event with the rollout's name first.
		for _, line := range strings.Split(strings.TrimSpace(c.stdout.String()), "\n") {
			var ev struct {
				Rollout string `json:"rollout"`
				engine.Event
			}
			if !strings.HasPrefix(line, `{"rollout":"checkout-eu",`) || json.Unmarshal([]byte(line), &ev) != nil || ev.Type == "" {
				t.Errorf("line %q is not checkout-eu's event", line)
			}
		}
		if rec := journalOf(t, c.dir, "checkout-eu"); rec.Events[len(rec.Events)-1].Type != engine.EventRolledBack {
			t.Error("checkout-eu's journal does not end rolled back")
		}
	})
}

// TestFleetControlVerbsByName runs two rollouts in real time and steers each by name through
// the one control socket.
func TestFleetControlVerbsByName(t *testing.T) {
	paused := "  - pause: {}\n  - {setWeight: 10, analyze: 1h}\n"
	c, _ := fleetCLI(t, map[string]string{
		"api.yaml": fleetRollout("checkout-api", "", paused),
		"web.yaml": fleetRollout("checkout-web", "", paused),
		"eu.yaml":  fleetRollout("checkout-eu", "checkout-web", ""),
	})
	t.Chdir(c.dir)
	socket := filepath.Join(c.dir, "s.sock")
	exit := make(chan int, 1)
	var stdout, stderr lockedBuffer
	c.app.stdout, c.app.stderr = &stdout, &stderr
	go func() {
		exit <- c.app.main(t.Context(), []string{"run", filepath.Join(c.dir, "api.yaml"), filepath.Join(c.dir, "web.yaml"), filepath.Join(c.dir, "eu.yaml"), "--headless", "--socket", socket})
	}()
	shell := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		sh := &app{stdout: &out, stderr: &errOut, registry: c.app.registry, getenv: func(string) string { return "" }}
		code := sh.main(context.Background(), append(args, "--socket", socket))
		return code, out.String(), errOut.String()
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, out, _ := shell("status", "-o", "json")
		want := `{"rollouts":[{"name":"checkout-api","phase":"paused","step":1,"weight":-1},{"name":"checkout-eu","phase":"waiting","step":0,"weight":-1,"waiting":["checkout-web"]},{"name":"checkout-web","phase":"paused","step":1,"weight":-1}]}` + "\n"
		if code == 0 && out == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed both rollouts paused: exit %d\n%s\n%s", code, out, stderr.String())
		}
	}
	if code, out, _ := shell("status"); code != 0 || !strings.Contains(out, "checkout-eu   waiting") || !strings.Contains(out, "waiting for checkout-web") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	if code, _, errOut := shell("resume"); code != exitRuntime || !strings.Contains(errOut, "2 rollouts run here; name one (perch resume NAME): checkout-api, checkout-web") {
		t.Errorf("resume without a name: exit %d, %q", code, errOut)
	}
	if code, _, errOut := shell("resume", "checkout-eu"); code != exitRuntime || !strings.Contains(errOut, "checkout-eu has not started (waiting for checkout-web to promote)") {
		t.Errorf("resume checkout-eu: exit %d, %q", code, errOut)
	}
	if code, out, errOut := shell("resume", "checkout-api"); code != 0 || !strings.Contains(out, "checkout-api  running  step 2/2") {
		t.Fatalf("resume checkout-api: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := shell("status", "checkout-web"); code != 0 || !strings.HasPrefix(out, "checkout-web  paused  step 1/2 (pause)") {
		t.Errorf("status checkout-web: exit %d\n%s", code, out)
	}
	if code, out, errOut := shell("rollback", "checkout-web", "--reason", "pager went off"); code != 0 {
		t.Fatalf("rollback checkout-web: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := shell("promote", "checkout-api"); code != 0 {
		t.Fatalf("promote checkout-api: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case code := <-exit:
		if code != exitRolledBack {
			t.Fatalf("run exited %d, want 1 (one rolled back)\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not end")
	}
	found, _ := filepath.Glob(filepath.Join(c.dir, "perch-checkout-web-*.jsonl"))
	if len(found) != 1 {
		t.Fatalf("checkout-web journals %q", found)
	}
	checkRolledBackThroughSocket(t, found[0])
	if rec := journalOf(t, c.dir, "checkout-api"); rec.Events[len(rec.Events)-1].Type != engine.EventPromoted {
		t.Error("checkout-api's journal does not end promoted")
	}
	if !strings.Contains(stderr.String(), "perch: checkout-eu: cancelled: checkout-web rolled back") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

// TestServeRollouts serves a directory: rollouts start as files appear, a bad file is reported
// while the others run, and the control socket (found by the rollout's name) serves them.
func TestServeRollouts(t *testing.T) {
	dir := t.TempDir()
	keysDir := t.TempDir()
	_, pub, _ := sshKey(t, keysDir, "alice")
	os.WriteFile(filepath.Join(keysDir, "operators"), []byte(pub), 0o600)
	paused := "  - pause: {}\n  - {setWeight: 10, analyze: 1h}\n"
	os.WriteFile(filepath.Join(dir, "api.yaml"), []byte(fleetRollout("checkout-api", "", paused)), 0o644)
	b := &fleetBackends{backends: map[string]*memBackend{}}
	t.Chdir(t.TempDir())
	run := t.TempDir()
	env := func(name string) string {
		if name == "XDG_RUNTIME_DIR" {
			return run
		}
		return ""
	}
	var stdout, stderr lockedBuffer
	a := &app{stdout: &stdout, stderr: &stderr, registry: b.registry(), getenv: env}
	ctx, cancel := context.WithCancel(t.Context())
	exit := make(chan int, 1)
	go func() {
		exit <- a.main(ctx, []string{"serve", "--rollouts", dir, "--ssh", "127.0.0.1:0", "--operator-keys", filepath.Join(keysDir, "operators"),
			"--host-key", filepath.Join(keysDir, "host"), "--hold-open", "0s"})
	}()
	shell := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		sh := &app{stdout: &out, stderr: &errOut, registry: a.registry, getenv: env}
		code := sh.main(context.Background(), args)
		return code, out.String(), errOut.String()
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never %s\nstderr:\n%s", what, stderr.String())
			}
		}
	}
	waitFor("served the first rollout over SSH", func() bool { return strings.Contains(stderr.String(), "serving the TUI on ssh -p") })
	if _, err := os.Stat(filepath.Join(run, "perch", "fleet-"+filepath.Base(dir)+".sock")); err != nil {
		t.Errorf("fleet socket: %v", err)
	}
	// With one rollout, a verb needs no name and status is the rollout's own.
	waitFor("paused checkout-api", func() bool {
		code, out, _ := shell("status")
		return code == 0 && strings.HasPrefix(out, "checkout-api  paused  step 1/2")
	})
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("name: checkout-bad\nsteps: []\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(fleetRollout("checkout-web", "", paused)), 0o644)
	var list struct{ Rollouts []control.Summary }
	waitFor("listed three rollouts", func() bool {
		code, out, _ := shell("status", "-o", "json")
		list.Rollouts = nil
		return code == 0 && json.Unmarshal([]byte(out), &list) == nil && len(list.Rollouts) == 3 && list.Rollouts[2].Phase == "paused"
	})
	names := []string{}
	for _, s := range list.Rollouts {
		names = append(names, s.Name+" "+s.Phase)
	}
	if !slices.Equal(names, []string{"checkout-api paused", "checkout-bad invalid", "checkout-web paused"}) || !strings.Contains(list.Rollouts[1].Error, "bad.yaml:1:1: traffic: missing") {
		t.Errorf("rollouts %+v", list.Rollouts)
	}
	if !strings.Contains(stderr.String(), "perch: "+filepath.Join(dir, "bad.yaml")+": refused: ") {
		t.Errorf("stderr does not report bad.yaml:\n%s", stderr.String())
	}
	// Found by the rollout's name, without --socket.
	if code, out, errOut := shell("pause", "checkout-web", "--reason", "hold on"); code != 0 || !strings.Contains(out, "already paused") {
		t.Errorf("pause checkout-web: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := shell("rollback", "checkout-web", "--reason", "pager went off"); code != 0 {
		t.Fatalf("rollback checkout-web: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := shell("promote"); code != exitRuntime || !strings.Contains(errOut, "name one (perch promote NAME)") {
		t.Errorf("promote without a name: exit %d %q", code, errOut)
	}
	if code, out, errOut := shell("promote", "checkout-api"); code != 0 {
		t.Fatalf("promote checkout-api: exit %d\n%s%s", code, out, errOut)
	}
	waitFor("promoted checkout-api", func() bool {
		code, out, _ := shell("status", "checkout-api")
		return code == 0 && strings.Contains(out, "promoted")
	})
	os.Remove(filepath.Join(dir, "web.yaml"))
	waitFor("said web.yaml was removed", func() bool {
		return strings.Contains(stderr.String(), "perch: checkout-web: "+filepath.Join(dir, "web.yaml")+" was removed; the rollout carries on to its end")
	})
	cancel()
	select {
	case code := <-exit:
		if code != exitRolledBack {
			t.Errorf("serve exited %d, want 1 (one rolled back)\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not end")
	}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if !strings.HasPrefix(l, "checkout-api: ") && !strings.HasPrefix(l, "checkout-web: ") {
			t.Errorf("line %q names no rollout", l)
		}
	}
}

// TestRunSeveralFilesAllRefused: with every file refused there is nothing to run: perch run
// says why for each, exits 2 and journals nothing.
func TestRunSeveralFilesAllRefused(t *testing.T) {
	c, _ := fleetCLI(t, map[string]string{
		"a.yaml": "name: a\nsteps: []\n",
		"b.yaml": strings.Replace(fleetRollout("checkout-b", "", ""), "setWeight: 50", "setWeight: 5", 1),
	})
	t.Chdir(c.dir)
	if code := c.run(t.Context(), "run", "DIR/a.yaml", "DIR/b.yaml", "--socket", "none"); code != exitBadInput {
		t.Fatalf("exit %d, want 2\n%s", code, c.stderr.String())
	}
	for _, want := range []string{c.dir + "/a.yaml:1:1: traffic: missing", c.dir + "/b.yaml:14:17: steps[1].setWeight: weight 5"} {
		if !strings.Contains(c.stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, c.stderr.String())
		}
	}
	if found, _ := filepath.Glob(filepath.Join(c.dir, "perch-*")); len(found) != 0 {
		t.Errorf("refused files left journals %q", found)
	}
}
