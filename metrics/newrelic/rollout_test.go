package newrelic_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics/internal/apicall"
	"github.com/perchhq/perch/metrics/internal/apicall/apitest"
	"github.com/perchhq/perch/metrics/internal/sourcetest"
	"github.com/perchhq/perch/metrics/newrelic"
)

const rollout = `name: checkout
traffic:
  proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}
metrics:
  newRelic: {accountId: 1234567, apiKey: "${NR_API_KEY}", region: US}
analysis: {interval: 1m, stabilization: 1m, judge: threshold}
checks:
  - name: p99_latency
    canary: "SELECT percentile(duration, 99) FROM Transaction WHERE appName = 'checkout' AND version = 'canary'"
    baseline: "SELECT percentile(duration, 99) FROM Transaction WHERE appName = 'checkout' AND version = 'stable'"
    direction: lower_is_better
    maxDeviationPercent: 20
  - name: errors
    events:
      canary: "SELECT count(*) FROM Transaction WHERE appName = 'checkout' AND version = 'canary' AND error IS true"
      baseline: "SELECT count(*) FROM Transaction WHERE appName = 'checkout' AND version = 'stable' AND error IS true"
    total:
      canary: "SELECT count(*) FROM Transaction WHERE appName = 'checkout' AND version = 'canary'"
      baseline: "SELECT count(*) FROM Transaction WHERE appName = 'checkout' AND version = 'stable'"
    direction: lower_is_better
    maxIncrease: 0.02
steps:
  - setWeight: 10
    analyze: 5m
`

// TestEngineJudgesFromNewRelic runs a rollout whose checks are NRQL through NerdGraph, once
// with a canary as fast as stable (promoted) and once with one twice as slow (rolled back).
// The source reaches the fake through an in-memory transport, so the bubble's virtual clock
// drives the engine and the buckets alike.
func TestEngineJudgesFromNewRelic(t *testing.T) {
	for _, tt := range []struct {
		name      string
		canaryP99 float64
		want      engine.Outcome
	}{
		{name: "healthy canary", canaryP99: 0.120, want: engine.OutcomePromoted},
		{name: "slow canary", canaryP99: 0.240, want: engine.OutcomeRolledBack},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := sourcetest.Parse(t, rollout)
				f := &fake{value: func(nrql string, _ time.Time) any {
					canary := strings.Contains(nrql, "'canary'")
					switch {
					case strings.Contains(nrql, "percentile") && canary:
						return map[string]any{"99": tt.canaryP99}
					case strings.Contains(nrql, "percentile"):
						return map[string]any{"99": 0.120}
					case strings.Contains(nrql, "error IS true"):
						return 1.0
					default:
						return 100.0
					}
				}}
				f.name = "value" // one key per result; the source takes whichever it is
				src, err := newrelic.New(newrelic.Config{AccountID: 1234567, APIKey: apiKey, Limits: apicall.Limits{Transport: apitest.Transport(f)}})
				if err != nil {
					t.Fatal(err)
				}
				sourcetest.Run(t, r, src, tt.want)
				reqs := f.requests()
				if len(reqs) < 3*6 {
					t.Errorf("only %d NerdGraph calls: want 6 queries at each of at least 3 looks", len(reqs))
				}
				for _, q := range reqs {
					if nrql, _ := q.vars["nrql"].(string); !strings.HasSuffix(nrql, "TIMESERIES 60 SECONDS") {
						t.Fatalf("NRQL %q: want a TIMESERIES of the 1m interval", nrql)
					}
				}
			})
		})
	}
}

var _ engine.Source = (*newrelic.Source)(nil)
