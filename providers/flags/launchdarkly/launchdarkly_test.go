package launchdarkly_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/providers/flags/launchdarkly"
)

const token = "api-5f0c7e2a-1b3d-4e5f-8a9b-0c1d2e3f4a5b"

// dashboard is a boolean flag as GET answers it: production serves false to everyone by
// default; staging has a rollout of its own.
const dashboard = `{
  "name": "New dashboard", "kind": "boolean", "key": "new-dashboard", "_version": 7, "temporary": true, "tags": ["web"],
  "variations": [
    {"_id": "86208e6e-468f-4425-b334-7f318397f95c", "value": true, "name": "on"},
    {"_id": "7b32de80-f346-4276-bb77-28dfa7ddc2d8", "value": false, "name": "off"}
  ],
  "environments": {
    "production": {"on": true, "archived": false, "offVariation": 1, "_version": 4, "_environmentName": "Production",
      "fallthrough": {"variation": 1}, "rules": [{"_id": "r1", "variation": 0, "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@acme.example"]}]}]},
    "staging": {"on": true, "archived": false, "offVariation": 1, "_version": 9, "_environmentName": "Staging",
      "fallthrough": {"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}}, "rules": []}
  }
}`

func newClient(t *testing.T, f *fake, tok, env string) *launchdarkly.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := launchdarkly.New(launchdarkly.Config{Address: srv.URL, Token: tok, Project: "checkout", Environment: env})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withProduction is dashboard with production's fallthrough and versions replaced.
func withProduction(t *testing.T, rule string, bump int) string {
	t.Helper()
	var v map[string]any
	json.Unmarshal([]byte(dashboard), &v)
	env := v["environments"].(map[string]any)["production"].(map[string]any)
	var ft any
	json.Unmarshal([]byte(rule), &ft)
	env["fallthrough"] = ft
	env["_version"] = env["_version"].(float64) + float64(bump)
	v["_version"] = v["_version"].(float64) + float64(bump)
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSetAndRestoreTheDefaultRule(t *testing.T) {
	f := newFake(token)
	f.put("checkout", "new-dashboard", dashboard)
	c := newClient(t, f, token, "production")
	ctx := context.Background()
	p, saved, err := c.ReadFlag(ctx, "new-dashboard")
	if err != nil || p != 0 {
		t.Fatalf("ReadFlag = %d, %v; want 0%% (false for everyone)", p, err)
	}
	if err := c.SetFlagPercent(ctx, "new-dashboard", 20); err != nil {
		t.Fatal(err)
	}
	want := withProduction(t, `{"rollout": {"variations": [{"variation": 0, "weight": 20000}, {"variation": 1, "weight": 80000}]}}`, 1)
	if got := f.get("checkout", "new-dashboard"); got != want {
		t.Errorf("after SetFlagPercent(20):\n%s\nwant only production's default rule changed:\n%s", got, want)
	}
	if p, _, err := c.ReadFlag(ctx, "new-dashboard"); err != nil || p != 20 {
		t.Errorf("read back %d, %v", p, err)
	}
	if err := c.RestoreFlag(ctx, "new-dashboard", saved); err != nil {
		t.Fatal(err)
	}
	if got, want := f.get("checkout", "new-dashboard"), withProduction(t, `{"variation": 1}`, 2); got != want {
		t.Errorf("restored:\n%s\nwant\n%s", got, want)
	}
	const on, off = "86208e6e-468f-4425-b334-7f318397f95c", "7b32de80-f346-4276-bb77-28dfa7ddc2d8"
	get := request{Method: "GET", Path: "/api/v2/flags/checkout/new-dashboard", Query: "env=production", Auth: token}
	patch := func(comment string, in map[string]any) request {
		return request{Method: "PATCH", Path: "/api/v2/flags/checkout/new-dashboard", Auth: token,
			ContentType: "application/json; domain-model=launchdarkly.semanticpatch",
			Body:        map[string]any{"environmentKey": "production", "comment": comment, "instructions": []any{in}}}
	}
	wantReqs := []request{
		get,
		get,
		patch("perch: new-dashboard to 20% of the canary's users", map[string]any{"kind": "updateFallthroughVariationOrRollout",
			"rolloutWeights": map[string]any{on: 20000.0, off: 80000.0}}),
		get,
		get,
		patch("perch: rolled back, default rule restored", map[string]any{"kind": "updateFallthroughVariationOrRollout", "variationId": off}),
	}
	if got := f.log(); !reflect.DeepEqual(got, wantReqs) {
		t.Errorf("requests\n%+v\nwant\n%+v", got, wantReqs)
	}
}

// TestARolloutKeepsItsBucketing: a default rule that already was a rollout keeps what it is
// bucketed by, and is restored to its own weights.
func TestARolloutKeepsItsBucketing(t *testing.T) {
	const org = `{"rollout": {"variations": [{"variation": 0, "weight": 5000}, {"variation": 1, "weight": 95000}], "bucketBy": "key", "contextKind": "organization"}}`
	f := newFake(token)
	f.put("checkout", "new-dashboard", withProduction(t, org, 0))
	c := newClient(t, f, token, "production")
	ctx := context.Background()
	p, saved, err := c.ReadFlag(ctx, "new-dashboard")
	if err != nil || p != 5 {
		t.Fatalf("ReadFlag = %d, %v", p, err)
	}
	if err := c.SetFlagPercent(ctx, "new-dashboard", 40); err != nil {
		t.Fatal(err)
	}
	want := withProduction(t, `{"rollout": {"variations": [{"variation": 0, "weight": 40000}, {"variation": 1, "weight": 60000}], "bucketBy": "key", "contextKind": "organization"}}`, 1)
	if got := f.get("checkout", "new-dashboard"); got != want {
		t.Errorf("after SetFlagPercent(40):\n%s\nwant\n%s", got, want)
	}
	if err := c.RestoreFlag(ctx, "new-dashboard", saved); err != nil {
		t.Fatal(err)
	}
	if got, want := f.get("checkout", "new-dashboard"), withProduction(t, org, 2); got != want {
		t.Errorf("restored:\n%s\nwant\n%s", got, want)
	}
}

func TestRefusals(t *testing.T) {
	f := newFake(token)
	f.put("checkout", "theme", strings.Replace(strings.Replace(dashboard, `"value": true`, `"value": "dark"`, 1), `"value": false`, `"value": "light"`, 1))
	f.put("checkout", "new-dashboard", strings.Replace(dashboard, `"production": {"on": true`, `"production": {"on": false`, 1))
	c := newClient(t, f, token, "production")
	if err := c.SetFlagPercent(context.Background(), "theme", 20); err == nil || !strings.Contains(err.Error(), "flag theme is not a boolean flag") {
		t.Errorf("a string flag: %v", err)
	}
	if p, _, err := c.ReadFlag(context.Background(), "new-dashboard"); err != nil || p != 0 {
		t.Errorf("targeting off reads %d, %v; want the off variation's 0%%", p, err)
	}
	if err := c.SetFlagPercent(context.Background(), "new-dashboard", 20); err == nil || !strings.Contains(err.Error(), "targeting off in environment production") {
		t.Errorf("targeting off: %v", err)
	}
	if _, _, err := newClient(t, f, token, "qa").ReadFlag(context.Background(), "new-dashboard"); err == nil || !strings.Contains(err.Error(), "has no environment qa") {
		t.Errorf("unknown environment: %v", err)
	}
	for _, r := range f.log() {
		if r.Method != "GET" {
			t.Errorf("a refusal wrote: %+v", r)
		}
	}
}

func TestErrorAnswers(t *testing.T) {
	f := newFake(token)
	f.put("checkout", "new-dashboard", dashboard)
	_, _, err := newClient(t, f, "api-wrong", "production").ReadFlag(context.Background(), "new-dashboard")
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized: unauthorized: Invalid access token") || !strings.Contains(err.Error(), "check flags.launchDarkly.token") {
		t.Errorf("wrong token: %v", err)
	}
	c := newClient(t, f, token, "production")
	if _, _, err := c.ReadFlag(context.Background(), "old-dashboard"); err == nil || !strings.Contains(err.Error(), "404 Not Found: not_found: Unknown resource") ||
		!strings.Contains(err.Error(), "flags.launchDarkly.project (checkout)") {
		t.Errorf("unknown flag: %v", err)
	}
	f.failNext(failure{status: 403, code: "forbidden", message: "Access to the requested resource was denied"})
	if err := c.SetFlagPercent(context.Background(), "new-dashboard", 20); err == nil || !strings.Contains(err.Error(), "403 Forbidden: forbidden: Access to the requested resource was denied") {
		t.Errorf("forbidden: %v", err)
	}
}

// TestRateLimits: a 429 waits for Retry-After, or X-Ratelimit-Reset (Unix milliseconds).
func TestRateLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(token)
		f.put("checkout", "new-dashboard", dashboard)
		c, err := launchdarkly.New(launchdarkly.Config{Token: token, Project: "checkout", Environment: "production", HTTP: &http.Client{Transport: handlerTransport{f}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		limited := "You've exceeded the API rate limit. Try again later."
		f.failNext(failure{status: 429, code: "rate_limited", message: limited, header: http.Header{"Retry-After": {"2"}}},
			failure{status: 429, code: "rate_limited", message: limited, header: http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(7*time.Second).UnixMilli(), 10)}}})
		start := time.Now()
		if _, _, err := c.ReadFlag(ctx, "new-dashboard"); err != nil {
			t.Fatalf("after two 429s: %v", err)
		}
		if waited := time.Since(start); waited != 7*time.Second {
			t.Errorf("waited %s, want 2s then until the reset 5s later", waited)
		}
		f.failNext(failure{status: 429, code: "rate_limited", message: limited, header: http.Header{"Retry-After": {"3"}}},
			failure{status: 429, code: "rate_limited", message: limited, header: http.Header{"Retry-After": {"3"}}},
			failure{status: 429, code: "rate_limited", message: limited, header: http.Header{"Retry-After": {"3"}}})
		_, _, err = c.ReadFlag(ctx, "new-dashboard")
		if err == nil || !strings.Contains(err.Error(), "429 Too Many Requests: rate_limited: "+limited) || !strings.Contains(err.Error(), "retry after 3s") {
			t.Errorf("three 429s in a row: %v", err)
		}
	})
	if c, _ := launchdarkly.New(launchdarkly.Config{Token: "t", Project: "p", Environment: "e"}); c.String() != "LaunchDarkly at https://app.launchdarkly.com (project p, environment e)" {
		t.Errorf("String() = %q", c.String())
	}
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}
