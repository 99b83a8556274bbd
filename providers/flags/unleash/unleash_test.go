package unleash_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/providers/flags/unleash"
)

const token = "*:production.4f1e2d3c4b5a69788796a5b4c3d2e1f0"

// withRollout is the environment of a flag with a flexibleRollout strategy at 10% beside a
// disabled one, as GET answers it.
const withRollout = `{
  "name": "production", "environment": "production", "featureName": "new-dashboard", "type": "production",
  "enabled": true, "sortOrder": 1, "variantCount": 0,
  "strategies": [
    {"id": "6b5157cb-343a-41e7-bfa3-7b4ec3044840", "name": "flexibleRollout", "title": "Gradual rollout", "disabled": false,
     "featureName": "new-dashboard", "sortOrder": 0, "segments": [1],
     "constraints": [{"contextName": "appName", "operator": "IN", "values": ["checkout"], "caseInsensitive": false, "inverted": false}],
     "parameters": {"rollout": "10", "stickiness": "userId", "groupId": "new-dashboard"}, "variants": []},
    {"id": "1a2b3c4d-0000-4000-8000-000000000001", "name": "default", "title": null, "disabled": true,
     "featureName": "new-dashboard", "sortOrder": 1, "segments": [], "constraints": [], "parameters": {}}
  ]
}`

func newClient(t *testing.T, f *fake, tok string) *unleash.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := unleash.New(unleash.Config{Address: srv.URL + "/api", Token: tok, Project: "checkout", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// canonical is JSON text with sorted keys, for comparing whole documents.
func canonical(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSetAndRestoreTheRolloutParameter(t *testing.T) {
	f := newFake(token)
	f.put("checkout", "new-dashboard", "production", withRollout)
	c := newClient(t, f, token)
	ctx := context.Background()

	p, saved, err := c.ReadFlag(ctx, "new-dashboard")
	if err != nil || p != 10 {
		t.Fatalf("ReadFlag = %d, %v; want 10%%", p, err)
	}
	if err := c.SetFlagPercent(ctx, "new-dashboard", 20); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(withRollout, `"rollout": "10"`, `"rollout": "20"`, 1)
	if got := f.get("checkout", "new-dashboard", "production"); got != canonical(t, want) {
		t.Errorf("after SetFlagPercent(20) the environment is\n%s\nwant only the rollout changed:\n%s", got, canonical(t, want))
	}
	if p, _, err := c.ReadFlag(ctx, "new-dashboard"); err != nil || p != 20 {
		t.Errorf("read back %d, %v", p, err)
	}
	if err := c.RestoreFlag(ctx, "new-dashboard", saved); err != nil {
		t.Fatal(err)
	}
	if got := f.get("checkout", "new-dashboard", "production"); got != canonical(t, withRollout) {
		t.Errorf("restored environment\n%s\nwant it as it was\n%s", got, canonical(t, withRollout))
	}
	path := "/api/admin/projects/checkout/features/new-dashboard/environments/production"
	patch := func(v string) any {
		return []any{map[string]any{"op": "replace", "path": "/parameters/rollout", "value": v}}
	}
	wantReqs := []request{
		{Method: "GET", Path: path, Auth: token},
		{Method: "GET", Path: path, Auth: token},
		{Method: "PATCH", Path: path + "/strategies/6b5157cb-343a-41e7-bfa3-7b4ec3044840", Auth: token, ContentType: "application/json", Body: patch("20")},
		{Method: "GET", Path: path, Auth: token},
		{Method: "PATCH", Path: path + "/strategies/6b5157cb-343a-41e7-bfa3-7b4ec3044840", Auth: token, ContentType: "application/json", Body: patch("10")},
	}
	if got := f.log(); !reflect.DeepEqual(got, wantReqs) {
		t.Errorf("requests\n%+v\nwant\n%+v", got, wantReqs)
	}
}

func TestAFlagWithoutStrategiesGetsOneAndLosesIt(t *testing.T) {
	const bare = `{"name": "production", "environment": "production", "featureName": "new-dashboard", "type": "production",
	  "enabled": true, "sortOrder": 1, "variantCount": 0, "strategies": []}`
	f := newFake(token)
	f.put("checkout", "new-dashboard", "production", bare)
	c := newClient(t, f, token)
	ctx := context.Background()
	p, saved, err := c.ReadFlag(ctx, "new-dashboard")
	if err != nil || p != -1 {
		t.Fatalf("ReadFlag = %d, %v; want -1 (no percentage rollout)", p, err)
	}
	if err := c.SetFlagPercent(ctx, "new-dashboard", 25); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(bare, `"strategies": []`, `"strategies": [{"id": "00000000-0000-4000-8000-000000000001",
	  "name": "flexibleRollout", "title": "perch canary rollout", "disabled": false, "featureName": "new-dashboard", "sortOrder": 0,
	  "segments": [], "constraints": [], "parameters": {"rollout": "25", "stickiness": "default", "groupId": "new-dashboard"}}]`, 1)
	if got := f.get("checkout", "new-dashboard", "production"); got != canonical(t, want) {
		t.Errorf("after SetFlagPercent(25)\n%s\nwant\n%s", got, canonical(t, want))
	}
	if p, _, _ := c.ReadFlag(ctx, "new-dashboard"); p != 25 {
		t.Errorf("read back %d%%", p)
	}
	if err := c.SetFlagPercent(ctx, "new-dashboard", 50); err != nil {
		t.Fatal(err)
	}
	if err := c.RestoreFlag(ctx, "new-dashboard", saved); err != nil {
		t.Fatal(err)
	}
	if got := f.get("checkout", "new-dashboard", "production"); got != canonical(t, bare) {
		t.Errorf("restored\n%s\nwant\n%s", got, canonical(t, bare))
	}
	// Restoring again finds nothing of perch's to remove.
	if err := c.RestoreFlag(ctx, "new-dashboard", saved); err != nil {
		t.Errorf("second restore: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"off in the environment", strings.Replace(withRollout, `"enabled": true`, `"enabled": false`, 1), "flag new-dashboard is off in environment production"},
		{"other strategies", `{"name": "production", "enabled": true, "strategies": [{"id": "a", "name": "default", "parameters": {}},
		   {"id": "b", "name": "userWithId", "parameters": {"userIds": "1"}}]}`, "has strategies default, userWithId in production and no flexibleRollout"},
		{"two rollouts", `{"name": "production", "enabled": true, "strategies": [{"id": "a", "name": "flexibleRollout", "parameters": {"rollout": "5"}},
		   {"id": "b", "name": "flexibleRollout", "parameters": {"rollout": "7"}}]}`, "more than one flexibleRollout strategy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(token)
			f.put("checkout", "new-dashboard", "production", tc.doc)
			before := f.get("checkout", "new-dashboard", "production")
			err := newClient(t, f, token).SetFlagPercent(context.Background(), "new-dashboard", 20)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SetFlagPercent: %v, want %q", err, tc.want)
			}
			if after := f.get("checkout", "new-dashboard", "production"); after != before {
				t.Errorf("a refused change wrote %s", after)
			}
		})
	}
}

func TestErrorAnswers(t *testing.T) {
	f := newFake(token)
	f.put("checkout", "new-dashboard", "production", withRollout)
	_, _, err := newClient(t, f, "*:production.wrong").ReadFlag(context.Background(), "new-dashboard")
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized: AuthenticationRequired: You must log in to use Unleash") ||
		!strings.Contains(err.Error(), "check flags.unleash.token") {
		t.Errorf("wrong token: %v", err)
	}
	c := newClient(t, f, token)
	_, _, err = c.ReadFlag(context.Background(), "old-dashboard")
	if err == nil || !strings.Contains(err.Error(), "404 Not Found: NotFoundError: Could not find feature flag old-dashboard in project checkout, environment production") ||
		!strings.Contains(err.Error(), "check the flag's name, flags.unleash.project (checkout)") {
		t.Errorf("unknown flag: %v", err)
	}
	f.failNext(failure{status: 403, name: "NoAccessError", message: "You need permission=UPDATE_FEATURE_STRATEGY to perform this action"})
	if err := c.SetFlagPercent(context.Background(), "new-dashboard", 20); err == nil ||
		!strings.Contains(err.Error(), "403 Forbidden: NoAccessError: You need permission=UPDATE_FEATURE_STRATEGY") ||
		!strings.Contains(err.Error(), "may not change strategies in project checkout") {
		t.Errorf("no access: %v", err)
	}
}

// TestRateLimits: a 429 waits its Retry-After and tries again when the call's deadline
// allows; otherwise it fails saying how long to wait.
func TestRateLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(token)
		f.put("checkout", "new-dashboard", "production", withRollout)
		c, err := unleash.New(unleash.Config{Address: "https://unleash.example", Token: token, Project: "checkout", Environment: "production",
			HTTP: &http.Client{Transport: handlerTransport{f}}})
		if err != nil {
			t.Fatal(err)
		}
		f.failNext(failure{status: 429, name: "RateLimitError", message: "We're currently receiving too much traffic. Please try again later.", header: http.Header{"Retry-After": {"7"}}})
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if p, _, err := c.ReadFlag(ctx, "new-dashboard"); err != nil || p != 10 {
			t.Fatalf("ReadFlag after a 429: %d, %v", p, err)
		}
		if waited := time.Since(start); waited != 7*time.Second {
			t.Errorf("waited %s, want Retry-After's 7s", waited)
		}
		if n := len(f.log()); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
		f.failNext(failure{status: 429, name: "RateLimitError", message: "We're currently receiving too much traffic. Please try again later.", header: http.Header{"Retry-After": {"120"}}})
		_, _, err = c.ReadFlag(ctx, "new-dashboard")
		if err == nil || !strings.Contains(err.Error(), "429 Too Many Requests: RateLimitError: We're currently receiving too much traffic") ||
			!strings.Contains(err.Error(), "retry after 2m0s") {
			t.Errorf("a wait past the deadline: %v", err)
		}
	})
}

func TestAddressGetsAPI(t *testing.T) {
	c, err := unleash.New(unleash.Config{Address: "https://unleash.example/", Token: "t", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.String(); got != "Unleash at https://unleash.example/api (project default, environment production)" {
		t.Errorf("String() = %q", got)
	}
	for _, cfg := range []unleash.Config{{Address: "unleash.example", Token: "t", Environment: "e"}, {Address: "https://u", Environment: "e"}, {Address: "https://u", Token: "t"}} {
		if _, err := unleash.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// handlerTransport answers requests with a handler, no network: for tests inside a synctest
// bubble.
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
