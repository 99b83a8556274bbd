package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
)

// TestHangupStopsAHeadlessRun: SIGHUP (the terminal went away: a dropped SSH session) stops a
// headless run as SIGTERM does. The journal ends with stopped, perch says how to resume, the
// control socket is removed and the exit is 3; the resumed run ends as an uninterrupted one.
func TestHangupStopsAHeadlessRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the perch binary")
	}
	w := newCrashWorld(t, false)
	socket := filepath.Join(w.dir, "perch.sock")
	cmd := w.perch("--socket", socket)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		_, statErr := os.Stat(socket)
		if data, _ := os.ReadFile(w.journal); afterEvent(data, engine.EventAnalysis, 2) > 0 && statErr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rollout never got to analysis with its control socket")
		}
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if code := w.exitCode(cmd); code != exitRuntime || !strings.Contains(fmt.Sprint(cmd.Stderr), "--resume --journal") {
		t.Fatalf("SIGHUP: exit %d, stderr:\n%s\nwant exit 3 and how to resume", code, cmd.Stderr)
	}
	rec, err := engine.LoadRecording(w.journal)
	if err != nil || rec.Events[len(rec.Events)-1].Type != engine.EventStopped {
		t.Fatalf("after SIGHUP the journal (%v) does not end with a stopped event", err)
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Errorf("the control socket is left behind after SIGHUP (%v)", err)
	}
	if code := w.exitCode(w.perch("--resume")); code != exitOK {
		t.Fatalf("resumed after SIGHUP: exit %d", code)
	}
	w.check(engine.PhasePromoted)
}
