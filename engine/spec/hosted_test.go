package spec_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine/spec"
)

// hosted builds a rollout file with the given metrics block and check queries.
func hosted(metrics, canary, baseline string) string {
	return `name: checkout
traffic:
  proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}
metrics:
  ` + metrics + `
checks:
  - name: latency
    canary: ` + canary + `
    baseline: ` + baseline + `
    direction: lower_is_better
    maxDeviationPercent: 20
  - name: errors
    events: {canary: ` + canary + `, baseline: ` + baseline + `}
    total: {canary: ` + canary + `, baseline: ` + baseline + `}
    direction: lower_is_better
    maxIncrease: 0.01
steps:
  - setWeight: 10
    analyze: 5m
`
}

func TestHostedSourcesParse(t *testing.T) {
	for _, tt := range []struct{ kind, metrics, query string }{
		{"datadog", `datadog: {site: datadoghq.eu, apiKey: "${DD_API_KEY}", appKey: "${DD_APP_KEY}"}`, `"avg:trace.http.request.duration{version:canary}"`},
		{"newRelic", `newRelic: {accountId: 1234567, apiKey: "${NR_API_KEY}", region: EU}`, `"SELECT percentile(duration, 99) FROM Transaction WHERE appName = 'checkout'"`},
		{"web", `web: {url: "https://metrics.example/q?check={{.Check}}&side={{.Side}}&q={{.Query}}&start={{.Start}}&end={{.End}}", jsonPath: "$.data.values", headers: {Authorization: "Bearer ${METRICS_TOKEN}"}}`, "p99"},
		{"web", `web: {url: "${METRICS_URL}/q?q={{.Query}}", jsonPath: "$.value", address: "${METRICS_PROXY}"}`, "p99"},
	} {
		r, err := spec.Parse("rollout.yaml", []byte(hosted(tt.metrics, tt.query, tt.query)))
		if err != nil {
			t.Errorf("%s: %v", tt.metrics, err)
			continue
		}
		if r.Metrics.Kind() != tt.kind {
			t.Errorf("%s: Kind() = %q, want %q", tt.metrics, r.Metrics.Kind(), tt.kind)
		}
		c := r.Checks[1]
		for _, q := range []struct{ check, side, wantCheck, wantSide string }{
			{r.Checks[0].Canary.Check, r.Checks[0].Canary.Side, "latency", "canary"},
			{r.Checks[0].Baseline.Check, r.Checks[0].Baseline.Side, "latency", "baseline"},
			{c.Events.Canary.Check, c.Events.Canary.Side, "errors", "canary"},
			{c.Total.Baseline.Check, c.Total.Baseline.Side, "errors", "baseline"},
		} {
			if q.check != q.wantCheck || q.side != q.wantSide {
				t.Errorf("%s: a query placed at %s %s, want %s %s", tt.kind, q.check, q.side, q.wantCheck, q.wantSide)
			}
		}
	}
}

// TestHostedSecretsStayOutOfJournals: keys written as values are recorded redacted, and
// references as they are.
func TestHostedSecretsStayOutOfJournals(t *testing.T) {
	for _, m := range []string{
		`datadog: {apiKey: "0123456789abcdef", appKey: "${DD_APP_KEY}"}`,
		`newRelic: {accountId: 1, apiKey: "0123456789abcdef"}`,
		`web: {url: "https://m.example/{{.Query}}", jsonPath: "$.v", headers: {Authorization: "Bearer 0123456789abcdef"}}`,
	} {
		r, err := spec.Parse("rollout.yaml", []byte(hosted(m, "q", "q")))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), "0123456789abcdef") || !strings.Contains(string(b), spec.RedactedSecret) {
			t.Errorf("journal header %s: the key is in it", b)
		}
		var back spec.Rollout
		if err := json.Unmarshal(b, &back); err != nil || back.Recheck() != nil {
			t.Errorf("header does not read back: %v, %v", err, back.Recheck())
		}
	}
}

func TestHostedSourcesRefuse(t *testing.T) {
	for _, tt := range []struct{ metrics, query, want string }{
		{`datadog: {appKey: "${K}"}`, "q", "rollout.yaml:5:12: metrics.datadog.apiKey: missing"},
		{`datadog: {site: "https://api.datadoghq.eu", apiKey: "${A}", appKey: "${K}"}`, "q", "metrics.datadog.site: \"https://api.datadoghq.eu\": want a site name"},
		{`datadog: {apiKey: "${A}", appKey: "${K}", address: "api.datadoghq.eu"}`, "q", "metrics.datadog.address: want an http:// or https:// URL"},
		{`newRelic: {apiKey: "${A}"}`, "q", "metrics.newRelic.accountId: missing"},
		{`newRelic: {accountId: 1, apiKey: "${A}", region: APAC}`, "q", `rollout.yaml:5:52: metrics.newRelic.region: want US or EU, got "APAC"`},
		{`newRelic: {accountId: 1, apiKey: "${A}"}`, `"SELECT count(*) FROM Transaction SINCE 1 hour ago"`, "rollout.yaml:8:13: checks[0].canary: the query has SINCE"},
		{`web: {url: "https://m.example/{{.Nope}}", jsonPath: "$.v"}`, "q", "metrics.web.url: web metrics url"},
		{`web: {url: "ftp://m.example/{{.Query}}", jsonPath: "$.v"}`, "q", "metrics.web.url: want an http:// or https:// URL template"},
		{`web: {url: "https://m.example/{{.Query}}", jsonPath: "value"}`, "q", "metrics.web.jsonPath: JSONPath \"value\": want it to start at the root"},
		{`web: {url: "https://m.example/{{.Query}}"}`, "q", "metrics.web.jsonPath: missing"},
		{`web: {url: "https://m.example/{{.Query}}", jsonPath: "$.v", headers: {X-Key: "(redacted)"}}`, "q", "metrics.web.headers.X-Key"},
		{"web: {url: \"https://m.example/\", jsonPath: \"$.v\"}\n  datadog: {apiKey: a, appKey: b}", "q", "only one metrics source may be set (got datadog and web)"},
	} {
		_, err := spec.Parse("rollout.yaml", []byte(hosted(tt.metrics, tt.query, "q")))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.metrics, err, tt.want)
		}
	}
}

// TestHostedSourcesInJudgesFiles: perch judge serve's file takes the same blocks, checks
// its queries at their paths, and places them for the web source.
func TestHostedSourcesInJudgesFiles(t *testing.T) {
	const judges = `metrics:
  %s
analyses:
  checkout:
    checks:
      - name: latency
        canary: %s
        baseline: %s
        direction: lower_is_better
        maxDeviationPercent: 20
`
	j, err := spec.ParseJudges("judges.yaml", []byte(fmt.Sprintf(judges, `web: {url: "https://m.example/{{.Check}}/{{.Side}}?q={{.Query}}", jsonPath: "$.v"}`, "p99", "p99")))
	if err != nil {
		t.Fatal(err)
	}
	if c := j.Analyses["checkout"].Checks[0]; c.Canary.Check != "latency" || c.Baseline.Side != "baseline" {
		t.Errorf("queries placed at %+v and %+v, want the check latency, canary and baseline", c.Canary, c.Baseline)
	}
	_, err = spec.ParseJudges("judges.yaml", []byte(fmt.Sprintf(judges, `newRelic: {accountId: 1, apiKey: "${NR_API_KEY}"}`,
		`"SELECT count(*) FROM Transaction SINCE 1 day ago"`, `"SELECT count(*) FROM Transaction"`)))
	if want := "judges.yaml:7:17: analyses.checkout.checks[0].canary: the query has SINCE"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%v, want an error saying %q", err, want)
	}
}
