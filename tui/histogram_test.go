package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// A histogram check's values are shares of requests (those slower than a bound), written as
// percentages whatever the bounds' unit, and its detail names its bucket queries.
func TestHistogramCheck(t *testing.T) {
	rollout, err := spec.Parse("h.yaml", []byte(`name: h
traffic: {proxy: {listen: "127.0.0.1:8080", stable: "http://127.0.0.1:9001", canary: "http://127.0.0.1:9002"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
checks:
  - name: latency
    histogram:
      canary: sum by (le) (increase(lat_bucket{version="canary"}[30s]))
      baseline: sum by (le) (increase(lat_bucket{version="stable"}[30s]))
    direction: lower_is_better
    maxIncrease: 0.02
    unit: s
steps:
  - {setWeight: 10, analyze: 5m}
`))
	if err != nil {
		t.Fatal(err)
	}
	st := engine.NewState(rollout)
	h := newHarness(t, st, time.Now(), nil)
	if u := h.m.checkUnit(0); !u.Rate || u.Value(0.034) != "3.4%" {
		t.Errorf("unit %+v writes 0.034 as %q, want 3.4%%", u, u.Value(0.034))
	}
	p := &page{m: h.m, w: 120}
	h.m.measureFields(p, &rollout.Checks[0])
	text := ansi.Strip(strings.Join(p.lines, "\n"))
	for _, want := range []string{`histogram  canary sum by (le) (increase(lat_bucket{version="canary"}[30s]))`, `baseline sum by (le) (increase(lat_bucket{version="stable"}[30s]))`} {
		if !strings.Contains(text, want) {
			t.Errorf("the detail lacks %q:\n%s", want, text)
		}
	}
}
