package spec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// histogramSpec has a Prometheus histogram check; broken ones are made by editing it.
const histogramSpec = `name: web
traffic:
  proxy: {listen: "127.0.0.1:8080", stable: "http://127.0.0.1:9001", canary: "http://127.0.0.1:9002"}
metrics:
  prometheus: {address: "http://127.0.0.1:9090"}
analysis: {interval: 1m}
checks:
  - name: latency
    histogram:
      canary: sum by (le) (increase(http_request_duration_seconds_bucket{version="canary"}[1m]))
      baseline: sum by (le) (increase(http_request_duration_seconds_bucket{version="stable"}[1m]))
    direction: lower_is_better
    maxIncrease: 0.02
steps:
  - setWeight: 5
    analyze: 5m
`

func TestHistogramCheck(t *testing.T) {
	r, err := spec.Parse("web.yaml", []byte(histogramSpec))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Checks[0]
	if !c.IsHistogram() || c.IsCounts() || !strings.Contains(c.Histogram.Canary.Expr, `version="canary"`) ||
		!strings.Contains(c.Histogram.Baseline.Expr, `version="stable"`) {
		t.Errorf("check %+v: want a histogram check with both queries", c)
	}
	if u := c.ValueUnit(); u.Name != "%" || !u.Rate {
		t.Errorf("unit %+v: a histogram's values are shares of requests", u)
	}
	if w := r.Warnings(); len(w) != 0 {
		t.Errorf("warnings %q for queries with increase()", w)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("revalidating: %v", err)
	}

	tests := []struct {
		name      string
		old, new  string
		line, col int
		msg       string
	}{
		{"with sample queries too", "    direction:", "    canary: lat\n    direction:", 10, 7, "checks[0].histogram: a check has one kind of query"},
		{"with counts too", "    direction:", "    events: {canary: a, baseline: b}\n    total: {canary: c, baseline: d}\n    direction:", 10, 7, "checks[0].histogram: a check has one kind of query"},
		{"a side missing", "      baseline: sum by (le) (increase(http_request_duration_seconds_bucket{version=\"stable\"}[1m]))\n", "", 10, 7, "checks[0].histogram.baseline: missing query"},
		{"another judge", "analysis: {interval: 1m}", "analysis: {interval: 1m, judge: threshold}", 10, 7, "checks[0].histogram: a histogram check needs the sequential judge (threshold judges"},
		{"the check's own judge", "    maxIncrease: 0.02\n", "    maxIncrease: 0.02\n    judge: mannwhitney\n", 14, 12, "checks[0].judge: a histogram check needs the sequential judge"},
		{"cloudwatch", "  prometheus: {address: \"http://127.0.0.1:9090\"}", "  cloudwatch: {}", 10, 7, "checks[0].histogram: a histogram check needs a source that answers bucket queries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(histogramSpec, tc.old) {
				t.Fatalf("edit %q does not apply", tc.old)
			}
			_, err := spec.Parse("web.yaml", []byte(strings.Replace(histogramSpec, tc.old, tc.new, 1)))
			var errs spec.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want spec.Errors", err)
			}
			for _, e := range errs {
				if e.Line == tc.line && e.Col == tc.col && strings.Contains(e.Msg, tc.msg) {
					return
				}
			}
			t.Errorf("want web.yaml:%d:%d: %s\ngot:\n%v", tc.line, tc.col, tc.msg, err)
		})
	}

	t.Run("a rate, not counts", func(t *testing.T) {
		r, err := spec.Parse("web.yaml", []byte(strings.Replace(histogramSpec, `increase(http_request_duration_seconds_bucket{version="stable"}[1m])`,
			`rate(http_request_duration_seconds_bucket{version="stable"}[1m])`, 1)))
		if err != nil {
			t.Fatal(err)
		}
		w := r.Warnings()
		if len(w) != 1 || !strings.HasPrefix(w[0], "web.yaml:11:17: warning: checks[0].histogram.baseline has no increase(") {
			t.Errorf("warnings %q, want one at the baseline query", w)
		}
	})
}

func TestBuiltinLatencyHistogram(t *testing.T) {
	text := `name: web
traffic: {proxy: {listen: "127.0.0.1:8080", stable: "http://127.0.0.1:9001", canary: "http://127.0.0.1:9002"}}
metrics: {builtin: {}}
checks:
  - {name: latency, builtin: latency_histogram, maxIncrease: 0.05}
steps:
  - {setWeight: 10, analyze: 1m}
`
	r, err := spec.Parse("b.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Checks[0]
	if !c.IsHistogram() || c.Histogram.Canary != metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionCanary) ||
		c.Histogram.Baseline != metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionStable) ||
		c.Direction != metrics.LowerIsBetter || c.Unit != "s" {
		t.Errorf("latency_histogram expanded to %+v", c)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("revalidating an expanded spec: %v", err)
	}
	mixed := strings.Replace(text, "maxIncrease: 0.05}", "maxIncrease: 0.05, histogram: {canary: a, baseline: b}}", 1)
	if _, err := spec.Parse("b.yaml", []byte(mixed)); err == nil || !strings.Contains(err.Error(), "takes no canary, baseline, events, total or histogram queries") {
		t.Errorf("a builtin check with histogram queries: %v", err)
	}
	threshold := strings.Replace(text, "checks:", "analysis: {judge: threshold}\nchecks:", 1)
	if _, err := spec.Parse("b.yaml", []byte(threshold)); err == nil || !strings.Contains(err.Error(), "checks[0].builtin: a histogram check needs the sequential judge") {
		t.Errorf("a builtin histogram under threshold: %v", err)
	}
}
