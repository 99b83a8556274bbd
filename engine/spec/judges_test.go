package spec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine/spec"
)

const goodJudges = `metrics:
  prometheus: {address: "http://127.0.0.1:9090"}
analysis:
  interval: 1m
analyses:
  checkout:
    checks:
      - name: errors
        events:
          canary: sum(increase(errors{version="canary"}[1m]))
          baseline: sum(increase(errors{version="stable"}[1m]))
        total:
          canary: sum(increase(requests{version="canary"}[1m]))
          baseline: sum(increase(requests{version="stable"}[1m]))
        direction: lower_is_better
        maxIncrease: 0.01
  search:
    checks:
      - name: latency
        canary: lat{version="canary"}
        baseline: lat{version="stable"}
        direction: lower_is_better
        maxDeviationPercent: 15
        judge: threshold
`

func TestJudgesFile(t *testing.T) {
	j, err := spec.ParseJudges("judges.yaml", []byte(goodJudges))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(j.Names(), ","); got != "checkout,search" {
		t.Errorf("names %q", got)
	}
	if time.Duration(j.Analysis.Interval) != time.Minute || j.Analysis.Judge != spec.DefaultJudge {
		t.Errorf("analysis %+v: want the interval given and the default judge", j.Analysis)
	}
	if c := j.Analyses["checkout"].Checks[0]; !c.IsCounts() || c.Name != "errors" {
		t.Errorf("checkout's check %+v", c)
	}
	if got := j.Source().Metrics.Kind(); got != "prometheus" {
		t.Errorf("source %q", got)
	}
	if got := j.Where("analyses.search.checks[0].judge"); got != "judges.yaml:24:16" {
		t.Errorf("Where %q", got)
	}
}

// TestJudgesFileErrors: each mistake is said at its line, with its path in this file.
func TestJudgesFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"check problem", "        maxDeviationPercent: 15\n", "", "judges.yaml:19:9: analyses.search.checks[0]: no tolerance"},
		{"bad direction", "direction: lower_is_better\n        maxDeviationPercent", "direction: sideways\n        maxDeviationPercent", "judges.yaml:22:20: analyses.search.checks[0].direction: unknown direction"},
		{"unknown field", "        judge: threshold\n", "        jugde: threshold\n", `judges.yaml:24:9: analyses.search.checks[0]: unknown field "jugde" (did you mean "judge"?)`},
		{"bad name", "  search:\n", "  se/arch:\n", `judges.yaml:17:3: analyses.se/arch: "se/arch": name an analysis`},
		{"no checks", "  search:\n    checks:\n", "  search:\n    checks: []\n    old:\n", "analyses.search.checks: missing: an analysis needs at least one check"},
		{"rollout-only setting", "  interval: 1m\n", "  interval: 1m\n  failureLimit: 2\n", "judges.yaml:5:17: analysis.failureLimit: perch judge serve only judges"},
		{"builtin", "  prometheus: {address: \"http://127.0.0.1:9090\"}\n", "  builtin: {}\n", "metrics.builtin: the builtin source"},
		{"no source", "  prometheus: {address: \"http://127.0.0.1:9090\"}\n", "  prometheus: {address: \"nowhere\"}\n", "judges.yaml:2:25: metrics.prometheus.address: want an http:// or https:// URL"},
		{"unknown top field", "analysis:\n", "analysis:\n  judge: threshold\nsteps: []\nx:\n", `unknown field "steps"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(goodJudges, tc.old, tc.new, 1)
			if text == goodJudges {
				t.Fatal("the edit did not apply")
			}
			_, err := spec.ParseJudges("judges.yaml", []byte(text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	_, err := spec.ParseJudges("judges.yaml", []byte("metrics:\n  prometheus: {address: \"http://x\"}\n"))
	if err == nil || !strings.Contains(err.Error(), "analyses: missing") {
		t.Errorf("no analyses: %v", err)
	}
}
