package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/perchhq/perch/metrics"
)

// TestAnalyzeDryRun: a dry-run check is judged and shown, marked, and left out of the
// overall verdict; the same check not a dry run fails it.
func TestAnalyzeDryRun(t *testing.T) {
	const input = `{"checks": [
  {"name": "errors", "judge": "threshold", "direction": "lower_is_better", "maxIncrease": 0.005,
   "canary": {"events": [0, 1, 0, 0, 1, 0], "total": [1000, 1010, 990, 1005, 1000, 995]},
   "baseline": {"events": [1, 0, 1, 0, 1, 1], "total": [1000, 990, 1010, 1000, 1005, 995]}},
  {"name": "conversion", "judge": "threshold", "direction": "higher_is_better", "maxDeviationPercent": 5, DRY
   "canary": [0.02, 0.021, 0.019, 0.02, 0.02, 0.021],
   "baseline": [0.04, 0.041, 0.039, 0.04, 0.04, 0.041]}
]}`
	for _, tt := range []struct {
		dry     string
		verdict metrics.Verdict
	}{
		{`"dryRun": true,`, metrics.Pass},
		{``, metrics.Fail},
	} {
		code, stdout, stderr := runPerch(t, strings.Replace(input, "DRY", tt.dry, 1), "analyze", "--input", "-")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got analysis
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatal(err)
		}
		c := got.Checks[1]
		if got.Verdict != tt.verdict || c.Verdict != metrics.Fail || c.DryRun != (tt.dry != "") {
			t.Errorf("with %q: verdict %s, conversion %s (dry run %v); want %s, conversion failing:\n%s", tt.dry, got.Verdict, c.Verdict, c.DryRun, tt.verdict, stdout)
		}
	}
}
