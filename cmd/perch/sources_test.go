package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// hostedFake answers the first request path of each hosted source with a value for every
// interval asked, and nothing for queries that mention "missing". It checks the credential
// header it is given.
func hostedFake(t *testing.T, header, secret string) *httptest.Server {
	nrqlWindow := regexp.MustCompile(`SINCE (\d+) UNTIL (\d+) TIMESERIES (\d+) SECONDS$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(header) != secret {
			http.Error(w, `{"errors":["Forbidden"]}`, http.StatusForbidden)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		missing := strings.Contains(string(body)+r.URL.RawQuery, "missing")
		switch r.URL.Path {
		case "/api/v2/query/timeseries": // Datadog
			var req struct {
				Data struct {
					Attributes struct{ From, To, Interval int64 } `json:"attributes"`
				} `json:"data"`
			}
			json.Unmarshal(body, &req)
			a := req.Data.Attributes
			var times []int64
			var values []float64
			for ts := a.From; ts < a.To; ts += a.Interval {
				times, values = append(times, ts), append(values, 0.2)
			}
			series := []any{map[string]any{"group_tags": []string{}, "query_index": 0}}
			if missing {
				series = []any{}
			}
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"type": "timeseries_response",
				"attributes": map[string]any{"series": series, "times": times, "values": [][]float64{values}}}})
		case "/graphql": // New Relic
			var req struct{ Variables map[string]any }
			json.Unmarshal(body, &req)
			m := nrqlWindow.FindStringSubmatch(fmt.Sprint(req.Variables["nrql"]))
			since, _ := strconv.ParseInt(m[1], 10, 64)
			until, _ := strconv.ParseInt(m[2], 10, 64)
			bucket, _ := strconv.ParseInt(m[3], 10, 64)
			var rows []any
			for ts := since / 1000; ts < until/1000; ts += bucket {
				var v any = 5.0
				if missing {
					v = nil
				}
				rows = append(rows, map[string]any{"beginTimeSeconds": ts, "endTimeSeconds": ts + bucket, "average.duration": v})
			}
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"actor": map[string]any{"account": map[string]any{"nrql": map[string]any{"results": rows}}}}})
		default: // web
			if missing {
				fmt.Fprint(w, `{"value": null}`)
				return
			}
			fmt.Fprint(w, `{"value": 0.3}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestCheckAccessWithHostedSources: validate --check-access runs each check's queries once
// against the datadog, newRelic and web sources, and reports them per check, without their
// credentials.
func TestCheckAccessWithHostedSources(t *testing.T) {
	const secret = "s3cret-key-0123456789"
	t.Setenv("PERCH_TEST_KEY", secret)
	for _, tt := range []struct {
		kind, header, block string
	}{
		{"datadog", "DD-API-KEY", `datadog: {apiKey: "${PERCH_TEST_KEY}", appKey: "${PERCH_TEST_KEY}", address: "%s"}`},
		{"newRelic", "API-Key", `newRelic: {accountId: 1234567, apiKey: "${PERCH_TEST_KEY}", address: "%s"}`},
		{"web", "Authorization", `web: {url: "%s/v1/{{.Check}}/{{.Side}}?q={{.Query}}&start={{.Start}}&end={{.End}}", jsonPath: "$.value", headers: {Authorization: "${PERCH_TEST_KEY}"}}`},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			srv := hostedFake(t, tt.header, secret)
			m := &memProvider{weight: 5}
			reg := defaultRegistry()
			reg.routers["proxy"] = func(context.Context, *spec.Rollout, connectFlags) (engine.Router, error) { return m, nil }
			file := writeFile(t, "web.yaml", `name: web
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics:
  `+fmt.Sprintf(tt.block, srv.URL)+`
analysis: {interval: 30s, judge: threshold}
checks:
  - name: latency
    direction: lower_is_better
    maxDeviationPercent: 20
    canary: "SELECT average(duration) FROM Transaction WHERE version = 'missing'"
    baseline: "SELECT average(duration) FROM Transaction WHERE version = 'stable'"
steps: [{setWeight: 10, analyze: 1m}]
`)
			code, out, errOut := perchRun(t, reg, "validate", file, "--check-access")
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			for _, want := range []string{
				tt.kind + " metrics, 1 check(s)",
				file + ":10:13: checks[0].canary: check latency canary: no data over the last",
				"check latency baseline: 10 sample(s) over the last 5m, latest",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out+errOut, secret) {
				t.Errorf("the output shows the key:\n%s%s", out, errOut)
			}
		})
	}
}

// TestHostedSourceUnsetKey: a key naming an unset variable is reported at its line.
func TestHostedSourceUnsetKey(t *testing.T) {
	file := writeFile(t, "dd.yaml", `name: dd
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics:
  datadog: {apiKey: "${PERCH_TEST_UNSET_KEY}", appKey: "${PERCH_TEST_UNSET_KEY}"}
checks:
  - {name: latency, direction: lower_is_better, maxDeviationPercent: 20, canary: "avg:x{version:canary}", baseline: "avg:x{version:stable}"}
steps: [{setWeight: 10, analyze: 1m}]
`)
	m := &memProvider{}
	reg := defaultRegistry()
	reg.routers["proxy"] = func(context.Context, *spec.Rollout, connectFlags) (engine.Router, error) { return m, nil }
	code, out, errOut := perchRun(t, reg, "validate", file, "--check-access")
	want := file + ":4:21: metrics.datadog.apiKey: environment variable PERCH_TEST_UNSET_KEY is not set"
	if code != exitRuntime || !strings.Contains(errOut, want) {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d saying %q", code, out, errOut, exitRuntime, want)
	}
}
