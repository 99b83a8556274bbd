package tui

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/perchhq/perch/engine"
)

// TestGolden runs the program (teatest) on a state folded from events and compares the
// screen with testdata/TestGolden/NAME_WxH.golden. Update them with -update after a change
// you have looked at. From 120×40 the check panes draw charts of the step that fill them.
func TestGolden(t *testing.T) {
	states := []struct {
		name  string
		build func(testing.TB) (engine.State, time.Time)
		keys  []string // pressed after the first frame
		want  string   // on screen before the keys are pressed
	}{
		{name: "running", build: stateRunning, want: "RUNNING"},
		{name: "paused", build: statePaused, want: "PAUSED"},
		{name: "holding", build: stateHolding, want: "HOLDING"},
		{name: "outage", build: stateOutage, want: "HOLDING"},
		{name: "rolled_back", build: stateRolledBack, want: "ROLLED BACK"},
		{name: "promoted", build: statePromoted, want: "PROMOTED"},
		{name: "help", build: stateRunning, keys: []string{"?"}, want: "RUNNING"},
		{name: "sequential", build: stateSequential, want: "RUNNING"},
		{name: "detail", build: stateSequential, keys: []string{"j", "enter"}, want: "RUNNING"},
		{name: "many_checks", build: bigState, want: "RUNNING"},
		{name: "dry_run", build: stateDryRun, keys: []string{"j", "enter"}, want: "RUNNING"},
	}
	for _, size := range [][2]int{{120, 40}, {80, 24}, {200, 60}} {
		for _, tt := range states {
			t.Run(fmt.Sprintf("%s_%dx%d", tt.name, size[0], size[1]), func(t *testing.T) {
				st, now := tt.build(t)
				m := New(Options{
					Snapshots: newFakeSnapshots(st),
					Commander: &fakeCommander{},
					Actor:     engine.Actor{Name: "alice", Role: engine.RoleOperator, Source: "tui"},
					Renderer:  asciiRenderer(),
					Clock:     func() time.Time { return now },
					Location:  time.UTC,
				})
				tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(size[0], size[1]))
				teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(tt.want)) },
					teatest.WithDuration(5*time.Second))
				for _, k := range tt.keys {
					tm.Send(keyMsg(k))
				}
				tm.Send(tea.Quit())
				final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
				teatest.RequireEqualOutput(t, []byte(final.View()))
			})
		}
	}
}
