package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Journals, of runs and of demo recordings alike, are readable by their owner only.
func TestJournalsArePrivate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCLI(t, &memBackend{})
		if code := c.run(t.Context(), "run", "DIR/web.yaml", "--headless", "--socket", "none", "--journal", "DIR/j.jsonl"); code != exitOK {
			t.Fatalf("exit %d: %s", code, c.stderr.String())
		}
		wantPrivate(t, filepath.Join(c.dir, "j.jsonl"))
	})

	record := filepath.Join(t.TempDir(), "demo.jsonl")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a, _, stderr := testApp()
	done := make(chan int)
	go func() {
		done <- a.main(ctx, []string{"demo", "--headless", "--socket", "none", "--speed", "8", "--record", record})
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(record); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no recording after 30s; stderr:\n%s", stderr)
		}
	}
	cancel()
	<-done
	wantPrivate(t, record)
}

func wantPrivate(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("%s has mode %o, want 600", filepath.Base(path), mode)
	}
}

// perch run refuses a file that samples faster than once a second, and an open receiver off
// loopback, each at its line; the receiver's token comes from the environment and a request
// without it is refused.
func TestRunAlertsSecurity(t *testing.T) {
	c := newCLI(t, &memBackend{})
	for _, tc := range []struct{ name, edit, want string }{
		{"interval below the floor", "analysis: {interval: 1ns, stabilization: 10s, judge: threshold}\n",
			"x.yaml:4:22: analysis.interval: 1ns is below the 1s floor"},
		{"open receiver", "alerts: {listen: \"0.0.0.0:9095\", rollbackOn: [{severity: page}]}\n",
			"x.yaml:15:18: alerts.listen: 0.0.0.0:9095 is not a loopback address, so the receiver must authenticate Alertmanager"},
		{"unset token", "alerts: {listen: \"127.0.0.1:0\", bearerToken: \"${ALERTS_TOKEN}\", rollbackOn: [{severity: page}]}\n",
			"perch: alerts.bearerToken: environment variable ALERTS_TOKEN is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := rolloutYAML + tc.edit
			if strings.HasPrefix(tc.edit, "analysis:") {
				yaml = strings.Replace(rolloutYAML, "analysis: {interval: 10s, stabilization: 10s, judge: threshold}\n", tc.edit, 1)
			}
			os.WriteFile(filepath.Join(c.dir, "x.yaml"), []byte(yaml), 0o600)
			code := c.run(t.Context(), "run", "DIR/x.yaml", "--headless", "--socket", "none", "--journal", "DIR/"+strings.ReplaceAll(tc.name, " ", "-")+".jsonl")
			if code != exitBadInput || !strings.Contains(c.stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, c.stderr.String(), tc.want)
			}
		})
	}

	addr := freeAddr(t)
	c.app.getenv = withEnv(map[string]string{"ALERTS_TOKEN": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"})
	yaml := strings.Replace(fastRollout(""), "analyze: 4s", "analyze: 1h", 1) +
		fmt.Sprintf("alerts: {listen: %q, bearerToken: \"${ALERTS_TOKEN}\", rollbackOn: [{alertname: HighErrorRate}]}\n", addr)
	os.WriteFile(filepath.Join(c.dir, "alerts.yaml"), []byte(yaml), 0o600)
	answers := make(chan string, 1)
	go func() {
		body := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate"}}]}`
		post := func(token string) string {
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return ""
			}
			defer res.Body.Close()
			answer, _ := io.ReadAll(res.Body)
			return fmt.Sprintf("%d %s", res.StatusCode, answer)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if forged := post(""); forged != "" {
				answers <- forged + post("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
				return
			}
		}
		answers <- "perch never listened on " + addr
	}()
	code := c.run(t.Context(), "run", "DIR/alerts.yaml", "--headless", "--socket", "none", "--journal", "DIR/alerts.jsonl")
	if got, want := <-answers, "401 unauthorized\n200 rolled back for HighErrorRate; 0 noted\n"; got != want {
		t.Errorf("answers %q, want %q", got, want)
	}
	if code != exitRolledBack {
		t.Errorf("exit %d, want 1 (rolled back by the authenticated alert); stderr:\n%s", code, c.stderr.String())
	}
}
