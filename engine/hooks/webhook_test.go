package hooks_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine/hooks"
	"github.com/perchhq/perch/engine/spec"
)

func webhookHook(url string, timeout time.Duration) spec.Hook {
	return spec.Hook{On: spec.HookBeforeStep, Webhook: &spec.WebhookHook{URL: url, Timeout: spec.Duration(timeout),
		Headers: map[string]string{"Authorization": "Bearer ${CI_TOKEN}"}}}
}

var env = hooks.Runner{Getenv: func(name string) string {
	if name == "CI_TOKEN" {
		return "s3cret"
	}
	return ""
}}

func TestWebhookPasses(t *testing.T) {
	var got hooks.Payload
	var auth, query, method string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, auth, query = r.Method, r.Header.Get("Authorization"), r.URL.RawQuery
		_ = json.NewDecoder(r.Body).Decode(&got)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	v := vars
	v.Canary = "v2 beta&x=1"
	res := env.Run(context.Background(), webhookHook(srv.URL+"/smoke?weight={{.Weight}}&canary={{.Canary}}", 5*time.Second), v)
	if res.Outcome != hooks.OK || res.Status != 200 || res.Output != `{"ok":true}` {
		t.Fatalf("result %+v", res)
	}
	if method != http.MethodPost || auth != "Bearer s3cret" || query != "weight=10&canary=v2%20beta%26x%3D1" {
		t.Errorf("request %s, Authorization %q, query %q", method, auth, query)
	}
	if got != (hooks.Payload{Rollout: "checkout", On: spec.HookBeforeStep, Step: 2, Weight: 10, Canary: "v2 beta&x=1"}) {
		t.Errorf("payload %+v", got)
	}
}

func TestWebhookFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "smoke: 3 failures")
	}))
	defer srv.Close()
	res := env.Run(context.Background(), webhookHook(srv.URL, 5*time.Second), vars)
	if res.Outcome != hooks.Failed || res.Status != 500 || res.Error != "HTTP 500 Internal Server Error" || res.Output != "smoke: 3 failures" {
		t.Fatalf("result %+v", res)
	}
}

func TestWebhookMissingEnv(t *testing.T) {
	res := hooks.Runner{Getenv: func(string) string { return "" }}.Run(context.Background(), webhookHook("http://127.0.0.1:1/", time.Second), vars)
	if res.Outcome != hooks.Failed || !strings.Contains(res.Error, "CI_TOKEN is not set") {
		t.Fatalf("result %+v", res)
	}
}

func TestWebhookTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	res := env.Run(context.Background(), webhookHook(srv.URL, 300*time.Millisecond), vars)
	if res.Outcome != hooks.TimedOut || !strings.Contains(res.Error, "timeout of 300ms") {
		t.Fatalf("result %+v", res)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
}

// TestWebhookBodyBounded: a huge answer is read only as far as MaxOutput.
func TestWebhookBodyBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("x", 64<<10)
		for range 1600 { // 100 MiB, unless the client stops reading
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	res := env.Run(context.Background(), webhookHook(srv.URL, 10*time.Second), vars)
	if res.Outcome != hooks.OK || len(res.Output) != hooks.MaxOutput {
		t.Fatalf("outcome %s, %d bytes of output: want %d", res.Outcome, len(res.Output), hooks.MaxOutput)
	}
}

// TestWebhookRedirects: a redirect within the hook's host is followed; one to another host
// (which would get the hook's credentials) is refused.
func TestWebhookRedirects(t *testing.T) {
	var leaked string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = r.Header.Get("Authorization")
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
		case "/moved":
			http.Redirect(w, r, "/here", http.StatusTemporaryRedirect)
		case "/here":
			io.WriteString(w, "here")
		}
	}))
	defer srv.Close()
	res := env.Run(context.Background(), webhookHook(srv.URL+"/moved", 5*time.Second), vars)
	if res.Outcome != hooks.OK || res.Output != "here" {
		t.Errorf("same-host redirect: %+v", res)
	}
	res = env.Run(context.Background(), webhookHook(srv.URL+"/away", 5*time.Second), vars)
	if res.Outcome != hooks.Failed || !strings.Contains(res.Error, "refused a redirect") {
		t.Errorf("redirect to another host: %+v", res)
	}
	if leaked != "" {
		t.Errorf("the other host got the credentials %q", leaked)
	}
}
