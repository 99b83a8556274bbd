package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
)

// The crash suite runs the real perch binary through its proxy in front of real backends on
// loopback, kills it with SIGKILL at chosen points, resumes it, and checks that it ends as an
// uninterrupted run does without ever restarting, skipping a step or moving traffic to a
// weight no step names.

var perchBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "perch-crash-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "perch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// crashWorld is two backends, a rollout file over a proxy in front of them, and load on it.
type crashWorld struct {
	t       *testing.T
	dir     string
	rollout string
	journal string
	proxy   string
	failing atomic.Bool // the canary answers 500
}

func newCrashWorld(t *testing.T, failingCanary bool) *crashWorld {
	t.Helper()
	w := &crashWorld{t: t, dir: t.TempDir()}
	w.failing.Store(failingCanary)
	stable := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("stable\n")) }))
	canary := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		if w.failing.Load() {
			http.Error(rw, "canary broke", http.StatusInternalServerError)
			return
		}
		rw.Write([]byte("canary\n"))
	}))
	t.Cleanup(stable.Close)
	t.Cleanup(canary.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.proxy = ln.Addr().String()
	ln.Close()
	w.rollout = filepath.Join(w.dir, "rollout.yaml")
	w.journal = filepath.Join(w.dir, "journal.jsonl")
	spec := fmt.Sprintf(`name: crash
traffic: {proxy: {listen: %q, stable: %q, canary: %q}}
metrics: {builtin: {}}
analysis: {interval: 1s, stabilization: 250ms, judge: threshold}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.05, critical: true}
steps:
  - {setWeight: 20, analyze: 2s}
  - {setWeight: 50, analyze: 2s}
  - {setWeight: 80, analyze: 2s}
`, w.proxy, stable.URL, canary.URL)
	if err := os.WriteFile(w.rollout, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); load(ctx, "http://"+w.proxy+"/") }()
	t.Cleanup(func() { stop(); <-done })
	return w
}

// load sends about 200 requests a second until ctx ends; refused connections (perch down) are
// simply retried.
func load(ctx context.Context, url string) {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if resp, err := client.Get(url); err == nil {
				resp.Body.Close()
			}
		}
	}
}

// perch runs the binary with args; the journal and rollout paths are the world's.
func (w *crashWorld) perch(args ...string) *exec.Cmd {
	bin, err := perchBinary()
	if err != nil {
		w.t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"run", w.rollout, "--headless", "--socket", "none", "--journal", w.journal}, args...)...)
	cmd.Dir = w.dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &stderr
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	return cmd
}

// exitCode waits for cmd, at most a minute.
func (w *crashWorld) exitCode(cmd *exec.Cmd) int {
	w.t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		w.t.Fatalf("perch did not finish in a minute; stderr:\n%s", cmd.Stderr)
	}
	return -1
}

// killAt kills cmd with SIGKILL as soon as the journal holds the nth event of type typ, then
// cuts the journal right after that event, as if the crash had come just then.
func (w *crashWorld) killAt(cmd *exec.Cmd, typ engine.EventType, nth int) {
	w.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		data, _ := os.ReadFile(w.journal)
		if cut := afterEvent(data, typ, nth); cut > 0 {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if err := os.Truncate(w.journal, int64(cut)); err != nil {
				w.t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			w.t.Fatalf("no %d× %s in the journal after a minute:\n%s", nth, typ, data)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// afterEvent is the offset just past the line of the nth event of type typ, or 0.
func afterEvent(journal []byte, typ engine.EventType, nth int) int {
	offset, seen := 0, 0
	for _, line := range bytes.SplitAfter(journal, []byte("\n")) {
		if !bytes.HasSuffix(line, []byte("\n")) {
			return 0
		}
		offset += len(line)
		if bytes.Contains(line, []byte(`"type":"`+string(typ)+`"`)) {
			if seen++; seen == nth {
				return offset
			}
		}
	}
	return 0
}

// check reads the journal and asserts the properties every crash must keep.
func (w *crashWorld) check(want engine.Phase) engine.State {
	w.t.Helper()
	rec, err := engine.LoadRecording(w.journal)
	if err != nil {
		w.t.Fatalf("the journal does not replay: %v", err)
	}
	named := []int{0, 100}
	for _, st := range rec.Header.Spec.Steps {
		named = append(named, st.Weight())
	}
	lastStep, starts := -1, 0
	for _, ev := range rec.Events {
		switch ev.Type {
		case engine.EventRolloutStarted:
			if starts++; starts > 1 {
				w.t.Errorf("event %d: the rollout started over", ev.Seq)
			}
		case engine.EventStepStarted:
			if ev.Step != lastStep+1 {
				w.t.Errorf("event %d: step %d started after step %d (a step restarted or was skipped)", ev.Seq, ev.Step+1, lastStep+1)
			}
			lastStep = ev.Step
		case engine.EventWeightSet:
			if !slices.Contains(named, *ev.Weight) {
				w.t.Errorf("event %d: traffic moved to %d%%, which no step names", ev.Seq, *ev.Weight)
			}
		}
	}
	st := rec.Fold()
	if st.Phase != want {
		w.t.Errorf("the rollout ended %s, want %s (as uninterrupted)", st.Phase, want)
	}
	return st
}

func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the perch binary")
	}
	tests := []struct {
		name     string
		failing  bool
		at       engine.EventType
		nth      int
		torn     bool // the crash also cut a journal line in half
		wantCode int
		want     engine.Phase
	}{
		{"during stabilization", false, engine.EventWeightSet, 1, false, exitOK, engine.PhasePromoted},
		{"mid-sampling", false, engine.EventAnalysis, 3, false, exitOK, engine.PhasePromoted},
		{"mid-journal-write", false, engine.EventAnalysis, 5, true, exitOK, engine.PhasePromoted},
		{"between steps", false, engine.EventStepPassed, 2, false, exitOK, engine.PhasePromoted},
		{"mid weight change", false, engine.EventStepStarted, 3, false, exitOK, engine.PhasePromoted},
		{"while promoting", false, engine.EventPromoteStarted, 1, false, exitOK, engine.PhasePromoted},
		{"before the failure is seen", true, engine.EventAnalysisStarted, 1, false, exitRolledBack, engine.PhaseRolledBack},
		{"during rollback", true, engine.EventRollbackStarted, 1, false, exitRolledBack, engine.PhaseRolledBack},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newCrashWorld(t, tc.failing)
			w.killAt(w.perch(), tc.at, tc.nth)
			if tc.torn {
				f, _ := os.OpenFile(w.journal, os.O_APPEND|os.O_WRONLY, 0)
				f.WriteString(`{"seq":99,"time":"2026-11-22T10:00:00Z","type":"analy`)
				f.Close()
			}
			before, err := engine.LoadRecording(w.journal)
			if err != nil {
				t.Fatalf("the journal left by SIGKILL does not read: %v", err)
			}
			resumed := w.perch("--resume")
			if code := w.exitCode(resumed); code != tc.wantCode {
				t.Fatalf("resumed perch exited %d, want %d; stderr:\n%s", code, tc.wantCode, resumed.Stderr)
			}
			if tc.torn && !strings.Contains(fmt.Sprint(resumed.Stderr), "dropped a torn last line") {
				t.Errorf("resume did not warn of the torn line:\n%s", resumed.Stderr)
			}
			st := w.check(tc.want)
			if crashed := before.Fold(); st.Steps[crashed.Step].Status == engine.StepPending {
				t.Errorf("the step the crash interrupted (%d) never ran to its end", crashed.Step+1)
			}
		})
	}
}

// TestSignalsLeaveTrafficAndResume: SIGTERM stops the engine with traffic as it is, says how
// to resume (exit 3), and the resumed run ends as an uninterrupted one.
func TestSignalsLeaveTrafficAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the perch binary")
	}
	w := newCrashWorld(t, false)
	cmd := w.perch()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if data, _ := os.ReadFile(w.journal); afterEvent(data, engine.EventAnalysis, 2) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rollout never got to analysis")
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := w.exitCode(cmd); code != exitRuntime || !strings.Contains(fmt.Sprint(cmd.Stderr), "--resume --journal") {
		t.Fatalf("SIGTERM: exit %d, stderr:\n%s\nwant exit 3 and how to resume", code, cmd.Stderr)
	}
	rec, err := engine.LoadRecording(w.journal)
	if err != nil || rec.Events[len(rec.Events)-1].Type != engine.EventStopped {
		t.Fatalf("after SIGTERM the journal (%v) does not end with a stopped event", err)
	}
	if code := w.exitCode(w.perch("--resume")); code != exitOK {
		t.Fatalf("resumed after SIGTERM: exit %d", code)
	}
	w.check(engine.PhasePromoted)
}
