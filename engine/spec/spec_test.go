package spec_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// goodSpec is a valid rollout file; broken ones are made by editing one line of it.
const goodSpec = `name: web
traffic:
  proxy: {listen: "127.0.0.1:8080", stable: "http://127.0.0.1:9001", canary: "http://127.0.0.1:9002"}
metrics:
  prometheus: {address: "http://127.0.0.1:9090"}
analysis:
  judge: threshold
checks:
  - name: latency
    canary: lat{version="canary"}
    baseline: lat{version="stable"}
    direction: lower_is_better
    maxDeviationPercent: 15
steps:
  - setWeight: 5
    analyze: 5m
  - pause: {}
  - setWeight: 50
    analyze: 10m
`

func TestDefaults(t *testing.T) {
	r, err := spec.Parse("web.yaml", []byte(goodSpec))
	if err != nil {
		t.Fatal(err)
	}
	a := r.Analysis
	if time.Duration(a.Interval) != 30*time.Second || time.Duration(a.Stabilization) != time.Minute ||
		a.Inconclusive != spec.InconclusiveHold || a.FailureLimit != 0 || a.Judge != "threshold" {
		t.Errorf("analysis %+v: want interval 30s, stabilization 1m, hold, limit 0, the judge given", a)
	}
	noJudge := strings.Replace(goodSpec, "analysis:\n  judge: threshold\n", "", 1)
	r, err = spec.Parse("web.yaml", []byte(noJudge))
	if err != nil {
		t.Fatalf("without a judge: %v", err)
	}
	if r.Analysis.Judge != spec.DefaultJudge {
		t.Errorf("default judge %q, want %q", r.Analysis.Judge, spec.DefaultJudge)
	}
}

// TestFamily: the false-alarm budget is shared by every check of every analysed step; a
// pause step after a weight is analysed (it watches the weight it holds), one before is not.
func TestFamily(t *testing.T) {
	r, err := spec.Parse("web.yaml", []byte(goodSpec))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Family(); got != 3 {
		t.Errorf("family %d, want 3: one check in two analysed steps and the pause that watches 5%%", got)
	}
	first := strings.Replace(goodSpec, "steps:\n", "steps:\n  - pause: {}\n", 1)
	if r, err = spec.Parse("web.yaml", []byte(first)); err != nil {
		t.Fatal(err)
	}
	if got := r.Family(); got != 3 {
		t.Errorf("family %d with a first pause step, want 3: a pause before any weight has nothing to watch", got)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		old, new  string // edit of goodSpec
		line, col int
		msg       string
	}{
		{"unknown field", "  judge: threshold\n", "  judge: threshold\n  intreval: 30s\n", 8, 3, `analysis: unknown field "intreval" (did you mean "interval"?)`},
		{"wrong type", "maxDeviationPercent: 15", "maxDeviationPercent: fifteen", 13, 26, `checks[0].maxDeviationPercent: want a number, got "fifteen"`},
		{"two providers", "metrics:\n", "  istio: {virtualService: vs, stable: {host: a}, canary: {host: b}}\nmetrics:\n", 4, 10, "traffic.istio: only one traffic provider may be set (got istio and proxy)"},
		{"no provider", "  proxy: {listen: \"127.0.0.1:8080\", stable: \"http://127.0.0.1:9001\", canary: \"http://127.0.0.1:9002\"}\n", "  {}\n", 3, 3, "traffic: missing: name exactly one provider"},
		{"weight over 100", "setWeight: 50", "setWeight: 150", 18, 16, "steps[2].setWeight: weight 150 is outside 1..100"},
		{"weight under 1", "setWeight: 5\n", "setWeight: 0\n", 15, 16, "steps[0].setWeight: weight 0 is outside 1..100"},
		{"weights not increasing", "setWeight: 50", "setWeight: 5", 18, 16, "steps[2].setWeight: weight 5 must be greater than 5 set at steps[0]"},
		{"zero duration", "analyze: 5m", "analyze: 0s", 16, 14, "steps[0].analyze: want a positive duration, got 0s"},
		{"negative interval", "  judge: threshold\n", "  judge: threshold\n  interval: -5s\n", 8, 13, "analysis.interval: want a positive duration, got -5s"},
		{"duration without unit", "analyze: 5m", "analyze: 300", 16, 14, `steps[0].analyze: want a duration like 30s or 5m, got "300" (add a unit: s, m or h)`},
		{"empty check name", "  - name: latency\n", "  - name: \"\"\n", 9, 11, "checks[0].name: missing: every check needs a name"},
		{"duplicate check name", "steps:\n", "  - name: latency\n    canary: a\n    baseline: b\n    direction: lower_is_better\n    maxIncrease: 1\nsteps:\n", 14, 11, `checks[1].name: "latency" is already the name of checks[0]`},
		{"unknown direction", "direction: lower_is_better", "direction: down", 12, 16, `checks[0].direction: unknown direction "down" (want lower_is_better or higher_is_better)`},
		{"no tolerance", "    maxDeviationPercent: 15\n", "", 9, 5, "checks[0]: no tolerance: set maxDeviationPercent, maxIncrease or both"},
		{"events without total", "    canary: lat{version=\"canary\"}\n    baseline: lat{version=\"stable\"}\n", "    events: {canary: e1, baseline: e2}\n", 10, 13, "checks[0].events: events need total"},
		{"analyze shorter than interval", "analyze: 5m", "analyze: 10s", 16, 14, "steps[0].analyze: 10s is shorter than analysis.interval (30s)"},
		{"pause with analyze", "  - pause: {}\n", "  - pause: {}\n    analyze: 1m\n", 18, 14, "steps[1].analyze: a pause step does not analyze"},
		{"step with both", "  - pause: {}\n", "  - pause: {}\n    setWeight: 20\n", 17, 5, "steps[1]: a step either sets a weight or pauses, not both"},
		{"field set twice", "  judge: threshold\n", "  judge: threshold\n  judge: sequential\n", 8, 3, "analysis.judge: set twice"},
		{"unknown judge", "judge: threshold", "judge: bayes", 7, 10, `analysis.judge: unknown judge "bayes"`},
		{"bad judge option", "    maxDeviationPercent: 15\n", "    maxDeviationPercent: 15\n    judgeOptions: {minSample: 2}\n", 14, 19, `checks[0].judgeOptions: threshold: unknown option "minSample"`},
		{"builtin without proxy source", "    canary: lat{version=\"canary\"}\n    baseline: lat{version=\"stable\"}\n", "    builtin: latency_p99\n", 10, 14, "checks[0].builtin: needs metrics.builtin"},
		{"bad proxy url", `stable: "http://127.0.0.1:9001"`, `stable: "127.0.0.1:9001"`, 3, 45, `traffic.proxy.stable: want an http:// or https:// URL, got "127.0.0.1:9001"`},
		{"override without token", `canary: "http://127.0.0.1:9002"}`, `canary: "http://127.0.0.1:9002", override: {header: X-Canary}}`, 3, 113, "traffic.proxy.override.token: missing"},
		{"negative proxy timeout", `canary: "http://127.0.0.1:9002"}`, `canary: "http://127.0.0.1:9002", timeouts: {idle: -1s}}`, 3, 120, "traffic.proxy.timeouts.idle: want a positive duration"},
		{"list where mapping", "analysis:\n  judge: threshold\n", "analysis: [threshold]\n", 6, 11, "analysis: want a mapping, got a list"},
		{"cloudwatch period", "metrics:\n  prometheus: {address: \"http://127.0.0.1:9090\"}\nanalysis:\n  judge: threshold\n", "metrics:\n  cloudwatch: {}\nanalysis:\n  judge: threshold\n  interval: 45s\n", 8, 13, "analysis.interval: 45s is not a CloudWatch period"},
		{"not YAML", "  - pause: {}\n", "  - pause: {\n", 17, 1, "not valid YAML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(goodSpec, tc.old) {
				t.Fatalf("edit %q does not apply", tc.old)
			}
			text := strings.Replace(goodSpec, tc.old, tc.new, 1)
			_, err := spec.Parse("web.yaml", []byte(text))
			var errs spec.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want SpecErrors", err)
			}
			for _, e := range errs {
				if e.Line == tc.line && e.Col == tc.col && strings.Contains(e.Msg, tc.msg) && e.File == "web.yaml" {
					return
				}
			}
			t.Errorf("want web.yaml:%d:%d: %s\ngot:\n%v", tc.line, tc.col, tc.msg, err)
		})
	}
}

func TestReportsEveryError(t *testing.T) {
	text := strings.NewReplacer("setWeight: 50", "setWeight: 500", "direction: lower_is_better", "direction: sideways", "analyze: 5m", "analyze: soon").Replace(goodSpec)
	_, err := spec.Parse("web.yaml", []byte(text))
	var errs spec.Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("got %v, want 3 errors", err)
	}
	for i := 1; i < len(errs); i++ {
		if errs[i].Line < errs[i-1].Line {
			t.Errorf("errors out of file order:\n%v", err)
		}
	}
}

func TestEmptyAndMissing(t *testing.T) {
	for name, text := range map[string]string{"empty": "", "only comments": "# nothing here\n"} {
		_, err := spec.Parse("x.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), "x.yaml:1:1: empty rollout file") {
			t.Errorf("%s: %v, want x.yaml:1:1: empty rollout file", name, err)
		}
	}
	if _, err := spec.Load(filepath.Join(t.TempDir(), "absent.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want not-exist", err)
	}
}

func TestBuiltinChecks(t *testing.T) {
	text := `name: web
traffic: {proxy: {listen: "127.0.0.1:8080", stable: "http://127.0.0.1:9001", canary: "http://127.0.0.1:9002"}}
metrics: {builtin: {}}
analysis: {judge: threshold}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.01, critical: true}
  - {name: p99, builtin: latency_p99, maxDeviationPercent: 20}
  - {name: rps, builtin: throughput, maxDeviationPercent: 50}
steps:
  - {setWeight: 10, analyze: 1m}
`
	r, err := spec.Parse("b.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	errs, p99, rps := r.Checks[0], r.Checks[1], r.Checks[2]
	if !errs.IsCounts() || errs.Events.Canary != metrics.BuiltinQuery(metrics.MeasureErrors, metrics.VersionCanary) ||
		errs.Total.Baseline != metrics.BuiltinQuery(metrics.MeasureRequests, metrics.VersionStable) || errs.Direction != metrics.LowerIsBetter {
		t.Errorf("error_rate expanded to %+v", errs)
	}
	if p99.Canary.Expr != `latency_p99{version="canary"}` || p99.Unit != "s" {
		t.Errorf("latency_p99 expanded to %+v", p99)
	}
	if rps.Direction != metrics.HigherIsBetter || rps.Unit != "req/s" {
		t.Errorf("throughput expanded to %+v: want higher_is_better in req/s", rps)
	}
	// A spec read back from a journal header validates again unchanged.
	if err := r.Validate(); err != nil {
		t.Errorf("revalidating an expanded spec: %v", err)
	}
}

func TestExampleFilesValidate(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example rollout files under testdata/")
	}
	for _, f := range files {
		if _, err := spec.Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodSpec))
	if b, err := os.ReadFile("testdata/checkout-api.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("name: [\n"))
	f.Add([]byte("steps:\n  - pause:\n  - setWeight: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := spec.Parse("f.yaml", data)
		if err != nil {
			var errs spec.Errors
			if errors.As(err, &errs) {
				for _, e := range errs {
					if e.Line < 1 || e.Col < 1 || e.Msg == "" {
						t.Fatalf("error without a position or message: %+v", e)
					}
				}
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("a spec that loaded does not revalidate: %v", err)
		}
	})
}
