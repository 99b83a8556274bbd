package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics/internal/apicall"
	"github.com/perchhq/perch/metrics/internal/apicall/apitest"
	"github.com/perchhq/perch/metrics/internal/sourcetest"
	"github.com/perchhq/perch/metrics/web"
)

const rollout = `name: checkout
traffic:
  proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}
metrics:
  web:
    url: "https://metrics.example/api/q?check={{.Check}}&side={{.Side}}&q={{.Query}}&start={{.Start}}&end={{.End}}"
    jsonPath: "$.data.points"
    headers: {Authorization: "Bearer ${METRICS_TOKEN}"}
analysis: {interval: 1m, stabilization: 1m, judge: threshold}
checks:
  - name: p99_latency
    canary: p99
    baseline: p99
    direction: lower_is_better
    maxDeviationPercent: 20
steps:
  - setWeight: 10
    analyze: 5m
`

// TestEngineJudgesFromWeb runs a rollout whose check reads an HTTP JSON endpoint answering a
// series per side (the same query name for both: the side tells them apart), once with a
// canary as fast as stable (promoted) and once with one twice as slow (rolled back).
func TestEngineJudgesFromWeb(t *testing.T) {
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
				e := &endpoint{answer: func(w http.ResponseWriter, r *http.Request, start, end time.Time) {
					v := 0.120
					if r.URL.Query().Get("side") == "canary" {
						v = tt.canaryP99
					}
					var points []string
					for at := start.Add(time.Minute); !at.After(end); at = at.Add(time.Minute) {
						points = append(points, fmt.Sprintf("[%d, %g]", at.Unix(), v))
					}
					fmt.Fprintf(w, `{"data": {"points": [%s]}}`, strings.Join(points, ","))
				}}
				src, err := web.New(web.Config{URL: r.Metrics.Web.URL, JSONPath: r.Metrics.Web.JSONPath,
					Headers: map[string]string{"Authorization": "Bearer t"}, Limits: apicall.Limits{Transport: apitest.Transport(e)}})
				if err != nil {
					t.Fatal(err)
				}
				sourcetest.Run(t, r, src, tt.want)
				sides := map[string]int{}
				for _, req := range e.requests() {
					q := req.URL.Query()
					if q.Get("check") != "p99_latency" || q.Get("q") != "p99" {
						t.Fatalf("asked %s: want the check's name and query", req.URL)
					}
					sides[q.Get("side")]++
				}
				if sides["canary"] < 3 || sides["canary"] != sides["baseline"] {
					t.Errorf("asked per side %v: want both sides at each of at least 3 looks", sides)
				}
			})
		})
	}
}

var _ engine.Source = (*web.Source)(nil)
