package datadog_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics/datadog"
	"github.com/perchhq/perch/metrics/internal/apicall"
	"github.com/perchhq/perch/metrics/internal/apicall/apitest"
	"github.com/perchhq/perch/metrics/internal/sourcetest"
)

const rollout = `name: checkout
traffic:
  proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}
metrics:
  datadog: {site: datadoghq.eu, apiKey: "${DD_API_KEY}", appKey: "${DD_APP_KEY}"}
analysis: {interval: 1m, stabilization: 1m, judge: threshold}
checks:
  - name: p99_latency
    canary: "p99:trace.http.request{service:checkout,version:canary}"
    baseline: "p99:trace.http.request{service:checkout,version:stable}"
    direction: lower_is_better
    maxDeviationPercent: 20
  - name: errors
    events:
      canary: "sum:trace.http.request.errors{service:checkout,version:canary}.as_count()"
      baseline: "sum:trace.http.request.errors{service:checkout,version:stable}.as_count()"
    total:
      canary: "sum:trace.http.request.hits{service:checkout,version:canary}.as_count()"
      baseline: "sum:trace.http.request.hits{service:checkout,version:stable}.as_count()"
    direction: lower_is_better
    maxIncrease: 0.02
steps:
  - setWeight: 10
    analyze: 5m
`

// TestEngineJudgesFromDatadog runs a rollout whose checks are Datadog queries sent by the
// official client, once with a canary as fast as stable (promoted) and once with one twice
// as slow (rolled back), on the bubble's virtual clock.
func TestEngineJudgesFromDatadog(t *testing.T) {
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
				f := &fake{series: 1, value: func(query string, _ time.Time) *float64 {
					switch {
					case strings.HasPrefix(query, "p99:") && strings.Contains(query, "version:canary"):
						return num(tt.canaryP99)
					case strings.HasPrefix(query, "p99:"):
						return num(0.120)
					case strings.Contains(query, ".errors"):
						return num(1.0000002) // as_count() of a rate, interpolated
					default:
						return num(99.9999997)
					}
				}}
				src, err := datadog.New(datadog.Config{Site: "datadoghq.eu", APIKey: apiKey, AppKey: appKey, Limits: apicall.Limits{Transport: apitest.Transport(f)}})
				if err != nil {
					t.Fatal(err)
				}
				sourcetest.Run(t, r, src, tt.want)
				reqs := f.requests()
				if len(reqs) < 3*6 {
					t.Errorf("only %d Datadog calls: want 6 queries at each of at least 3 looks", len(reqs))
				}
				for _, q := range reqs {
					if q.body.Data.Attributes.Interval != 60000 || q.path != "/api/v2/query/timeseries" {
						t.Fatalf("request %s %+v: want the timeseries API at the 1m interval", q.path, q.body.Data.Attributes)
					}
				}
			})
		})
	}
}

var _ engine.Source = (*datadog.Source)(nil)
