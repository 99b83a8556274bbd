package tui

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// stateStrategies is a rollout past a segment step and a flag step, at 5% and held by its
// release window.
func stateStrategies(t testing.TB) (engine.State, time.Time) {
	data, err := os.ReadFile("testdata/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "steps:\n", `steps:
  - segment: {name: employees, match: {header: {name: X-Employee, value: "true"}}}
  - setFlag: {flag: new-dashboard, percent: 20}
`, 1) + "flags: {flagd: {file: /etc/flagd/flags.json}}\nschedule: {timezone: Europe/Berlin, advance: [{days: Mon-Thu, hours: \"09:00-16:00\"}]}\n"
	rollout, err := spec.Parse("rollout.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	s := newSimSpec(t, rollout)
	s.start()
	s.emit(engine.Event{Type: engine.EventSegmentsSet, Segments: []string{"employees"}})
	s.pass(nil, "segment set; the step has no analysis")
	s.emit(engine.Event{Type: engine.EventFlagRead, Flag: "new-dashboard", Percent: intp(5), Saved: []byte(`{}`)})
	s.emit(engine.Event{Type: engine.EventFlagSet, Flag: "new-dashboard", Percent: intp(20)})
	s.pass(nil, "flag set; the step has no analysis")
	s.lookN(10, healthy)
	until := s.now.Add(40 * time.Hour)
	s.emit(engine.Event{Type: engine.EventHeld, Hold: engine.HoldWindow, Until: &until, Reason: "outside release window; next window Mon 09:00 Europe/Berlin"})
	return s.st, s.now.Add(5 * time.Second)
}

func TestTheViewShowsSegmentsFlagsAndTheWindow(t *testing.T) {
	st, now := stateStrategies(t)
	h := newHarness(t, st, now, nil)
	screen := h.screen()
	for _, want := range []string{
		"segments employees · flag new-dashboard 20%",
		"? holding (window): outside release window; next window Mon 09:00 Europe/Berlin (checks still run; a advances anyway)",
		"1  segment employees",
		"2  flag new-dashboard 20%",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen lacks %q:\n%s", want, screen)
		}
	}
	h.m.Update(windowSize(70, 24))
	if screen := h.screen(); !strings.Contains(screen, "✔+employees ✔new-dashboard=20%") {
		t.Errorf("the narrow timeline lacks the segment and flag steps:\n%s", screen)
	}
}
