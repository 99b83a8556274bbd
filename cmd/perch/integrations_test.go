package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastRollout is rolloutYAML at real-time speed: the integrations use real sockets, so these
// tests run outside synctest.
func fastRollout(extra string) string {
	return strings.NewReplacer(
		"interval: 10s, stabilization: 10s", "interval: 1s, stabilization: 20ms",
		"analyze: 1m", "analyze: 4s",
	).Replace(rolloutYAML) + extra
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestRunNotifies(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var doc map[string]any
		json.NewDecoder(req.Body).Decode(&doc)
		mu.Lock()
		defer mu.Unlock()
		if req.Header.Get("Authorization") == "Bearer tok" {
			got = append(got, doc)
		}
	}))
	defer hook.Close()
	c := newCLI(t, &memBackend{failAt: 50})
	c.app.getenv = withEnv(map[string]string{"HOOK_TOKEN": "tok"})
	yaml := fastRollout(fmt.Sprintf("notify:\n  - webhook: {url: %q, headers: {Authorization: \"Bearer ${HOOK_TOKEN}\"}}\n", hook.URL))
	os.WriteFile(filepath.Join(c.dir, "notify.yaml"), []byte(yaml), 0o644)
	if code := c.run(t.Context(), "run", "DIR/notify.yaml", "--headless", "--journal", "DIR/j.jsonl"); code != exitRolledBack {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, c.stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	// Every notification is out by the time perch exits.
	if len(got) != 4 || got[3]["phase"] != "rolled_back" || !strings.Contains(got[3]["message"].(string), "errors (critical): fail: canary 30% vs baseline 0%") {
		t.Errorf("the webhook got %d notifications, the last %v; want 4 ending with the rollback and its numbers", len(got), got[len(got)-1])
	}
}

func TestRunRollsBackOnAlert(t *testing.T) {
	addr := freeAddr(t)
	c := newCLI(t, &memBackend{})
	yaml := strings.Replace(fastRollout(""), "analyze: 4s", "analyze: 1h", 1) +
		fmt.Sprintf("alerts: {listen: %q, rollbackOn: [{alertname: HighErrorRate}]}\n", addr)
	os.WriteFile(filepath.Join(c.dir, "alerts.yaml"), []byte(yaml), 0o644)
	posted := make(chan string, 1)
	go func() {
		// Alertmanager's part: post once perch listens.
		body := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate"},"annotations":{"summary":"5xx at 7%"}}]}`
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			res, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(body))
			if err != nil {
				continue
			}
			answer, _ := io.ReadAll(res.Body)
			res.Body.Close()
			posted <- fmt.Sprintf("%d %s", res.StatusCode, answer)
			return
		}
		posted <- "perch never listened on " + addr
	}()
	code := c.run(t.Context(), "run", "DIR/alerts.yaml", "--headless", "--journal", "DIR/j.jsonl")
	if answer := <-posted; answer != "200 rolled back for HighErrorRate; 0 noted\n" {
		t.Errorf("perch answered %q", answer)
	}
	if code != exitRolledBack || !strings.Contains(c.stdout.String(), "ROLLING BACK by alertmanager/HighErrorRate (alertmanager): HighErrorRate firing: 5xx at 7%") {
		t.Errorf("exit %d, stdout:\n%s\nwant exit 1 and the rollback by the alert", code, c.stdout.String())
	}
	if !strings.Contains(c.stderr.String(), "perch: receiving Alertmanager webhooks on http://"+addr+"/") {
		t.Errorf("stderr %q does not say where alerts are received", c.stderr.String())
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the alerts receiver still listens after perch returned")
	}
}

func TestRunIntegrationErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name  string
		extra string
		code  int
		want  string
	}{
		{"unset variable", "notify: [{slack: {webhookURL: \"https://hooks.slack.com/services/${SLACK_PATH}\"}}]\n",
			exitBadInput, "perch: notify[0].slack.webhookURL: environment variable SLACK_PATH is not set"},
		{"address in use", fmt.Sprintf("alerts: {listen: %q, rollbackOn: [{severity: page}]}\n", busy.Addr()),
			exitRuntime, "perch: alerts: listen on " + busy.Addr().String()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &memBackend{}
			c := newCLI(t, m)
			os.WriteFile(filepath.Join(c.dir, "x.yaml"), []byte(fastRollout(tc.extra)), 0o644)
			code := c.run(t.Context(), "run", "DIR/x.yaml", "--headless", "--journal", "DIR/j.jsonl")
			if code != tc.code || !strings.Contains(c.stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, c.stderr.String(), tc.code, tc.want)
			}
			if len(m.sets) != 0 {
				t.Errorf("traffic was moved (%v) although perch could not start", m.sets)
			}
		})
	}
}
