package control

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine"
)

// TestStatusBeforeTheFirstLook: before a check's first look its values are missing (null in
// JSON), not zeros that would look measured, and the weight is -1 until the provider confirms
// one.
func TestStatusBeforeTheFirstLook(t *testing.T) {
	tgt := newTarget(t)
	s := StatusOf(tgt.Snapshot())
	c := s.Checks[0]
	if c.Verdict != "" || !math.IsNaN(float64(c.Canary)) || !math.IsNaN(float64(c.Baseline)) || s.Weight != -1 || s.Step != 1 {
		t.Errorf("status before any look: %+v, check %+v; want no verdict, no values, weight -1, step 1", s, c)
	}
	data, _ := json.Marshal(s)
	if !strings.Contains(string(data), `"canary":null,"baseline":null`) {
		t.Errorf("status JSON %s: want null values before the first look", data)
	}
}

// TestRepeatedCommandsSucceed: a command whose end the rollout has reached already is
// answered OK with a note and not sent to the engine (which would refuse it); others are.
func TestRepeatedCommandsSucceed(t *testing.T) {
	tgt := newTarget(t)
	path := filepath.Join(t.TempDir(), "s.sock")
	start(t, path, tgt, Options{})
	for _, tc := range []struct {
		phase   engine.Phase
		command string
		note    string
	}{
		{engine.PhasePaused, "pause", "already paused"},
		{engine.PhaseRunning, "resume", "already running"},
		{engine.PhaseRollingBack, "rollback", "already rolling back"},
		{engine.PhaseRolledBack, "rollback", "already rolled back"},
		{engine.PhasePromoting, "promote", "already promoting"},
		{engine.PhasePromoted, "promote", "already promoted"},
		{engine.PhaseRunning, "pause", ""},
		{engine.PhasePaused, "resume", ""},
	} {
		tgt.mu.Lock()
		tgt.st.Phase = tc.phase
		tgt.mu.Unlock()
		before := len(tgt.commands())
		resp := send(t, path, Request{Command: tc.command})
		sent := len(tgt.commands()) > before
		if !resp.OK || resp.Note != tc.note || sent == (tc.note != "") {
			t.Errorf("%s while %s: %+v, sent to the engine %v; want OK with note %q", tc.command, tc.phase, resp, sent, tc.note)
		}
	}
}

// TestStatusMarksDryRuns: a dry-run check says so in the status (dryRun in JSON); others
// leave the field out.
func TestStatusMarksDryRuns(t *testing.T) {
	st := newTarget(t).Snapshot()
	st.Checks = append([]engine.CheckState(nil), st.Checks...)
	st.Checks[0].DryRun = true
	data, _ := json.Marshal(StatusOf(st))
	if strings.Count(string(data), `"dryRun":true`) != 1 || strings.Contains(string(data), `"dryRun":false`) {
		t.Errorf("status JSON %s: want dryRun on the dry-run check only", data)
	}
}
