package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	client "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// countingService is an instrumented app with three versions: each 50 ms, stable and the good
// canary serve 10 requests with one error every 10th tick (1%), the bad canary 5 requests with
// one error (20%).
func countingService(t *testing.T) (target string) {
	t.Helper()
	reg := client.NewRegistry()
	requests := client.NewCounterVec(client.CounterOpts{Name: "http_requests_total", Help: "Requests served."}, []string{"version", "code"})
	reg.MustRegister(requests)
	serve := func(version string, n int, oneError bool) {
		errs := 0
		if oneError {
			errs = 1
		}
		requests.WithLabelValues(version, "500").Add(float64(errs))
		requests.WithLabelValues(version, "200").Add(float64(n - errs))
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		began, n := time.Now(), 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for due := int(time.Since(began) / (50 * time.Millisecond)); n < due; n++ {
				serve("stable", 10, n%10 == 0)
				serve("good", 10, n%10 == 0)
				serve("bad", 5, true)
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait(); srv.Close() })
	return strings.TrimPrefix(srv.URL, "http://")
}

// realPrometheus runs Debian's prometheus scraping target every 500 ms and returns its URL
// once it has scraped; without the binary the test fails in CI and skips elsewhere.
func realPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus is not installed: .ci/run installs the Debian package prometheus")
		}
		t.Skip("prometheus is not installed; apt-get install -y prometheus to run this test")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	yml := fmt.Sprintf("global: {scrape_interval: 500ms}\nscrape_configs:\n  - job_name: judge\n    static_configs: [{targets: ['%s']}]\n", target)
	if err := os.WriteFile(config, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen, "--log.level=warn")
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	addr := "http://" + listen
	query := addr + `/api/v1/query?query=sum(http_requests_total{version="bad"})`
	deadline := time.Now().Add(40 * time.Second)
	for {
		resp, err := http.Get(query)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"value"`) {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("prometheus did not scrape the service in 40s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const judgesYAML = `metrics:
  prometheus: {address: "PROM"}
analysis:
  interval: 2s
analyses:
  bad:
    checks:
      - name: errors
        events:
          canary: sum(increase(http_requests_total{version="bad",code="500"}[2s]))
          baseline: sum(increase(http_requests_total{version="stable",code="500"}[2s]))
        total:
          canary: sum(increase(http_requests_total{version="bad"}[2s]))
          baseline: sum(increase(http_requests_total{version="stable"}[2s]))
        direction: lower_is_better
        maxIncrease: 0.02
  good:
    checks:
      - name: errors
        events:
          canary: sum(increase(http_requests_total{version="good",code="500"}[2s]))
          baseline: sum(increase(http_requests_total{version="stable",code="500"}[2s]))
        total:
          canary: sum(increase(http_requests_total{version="good"}[2s]))
          baseline: sum(increase(http_requests_total{version="stable"}[2s]))
        direction: lower_is_better
        maxIncrease: 0.02
`

// startJudge runs perch judge serve in this process and returns its base URL.
func startJudge(t *testing.T, args ...string) (base string, stderr *lockedBuffer) {
	t.Helper()
	stderr = &lockedBuffer{}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, registry: defaultRegistry(), getenv: testEnv}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- a.main(ctx, append([]string{"judge", "serve", "--listen", "127.0.0.1:0"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("judge serve exited %d after the signal; stderr:\n%s", code, stderr.String())
		}
	})
	at := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := at.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], stderr
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("judge serve exited %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("judge serve did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestJudgeServeAgainstRealPrometheus replays what Argo Rollouts' web metric provider and
// Flagger's webhooks send against perch judge serve reading a real Prometheus: the bad canary
// fails (Argo's failureCondition, Flagger's rollback hook answered 200), the good one passes
// (Flagger's confirm-promotion answered 200), both after asks that were too early to judge.
func TestJudgeServeAgainstRealPrometheus(t *testing.T) {
	prom := realPrometheus(t, countingService(t))
	dir := t.TempDir()
	file := filepath.Join(dir, "judges.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(judgesYAML, "PROM", prom, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, stderr := startJudge(t, "--config", file, "--token-file", tokenFile)

	// Argo Rollouts' web provider: GET with the template's headers, JSON back
	// (https://argo-rollouts.readthedocs.io/en/stable/analysis/web/).
	argo := func(token string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/analyses/bad/verdict?run=checkout-6c9bd8675b", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		return resp.StatusCode, v
	}
	// Flagger: POST of its webhook payload, the token in the webhook's metadata
	// (https://docs.flagger.app/usage/webhooks).
	flagger := func(analysis, hook string) (int, string) {
		body := `{"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "6d9b8f8c7d", "metadata": {"token": "s3cret"}}`
		resp, err := http.Post(base+"/v1/flagger/"+analysis+"?hook="+hook, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, v := argo("wrong"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %d %v", code, v)
	}
	code, v := argo("s3cret")
	if code != http.StatusOK || v["verdict"] != "inconclusive" || v["reason"] == "" || v["checks"] == nil {
		t.Fatalf("first ask: %d %v", code, v)
	}
	if code, body := flagger("bad", "rollback"); code != http.StatusForbidden || !strings.HasPrefix(body, "inconclusive") {
		t.Fatalf("flagger's first rollback hook: %d %q", code, body)
	}
	if code, body := flagger("good", "confirm-promotion"); code != http.StatusForbidden || !strings.HasPrefix(body, "inconclusive") {
		t.Fatalf("flagger's first promotion gate: %d %q", code, body)
	}
	var argoFailed, rolledBack, promoted bool
	deadline := time.Now().Add(60 * time.Second)
	for !(argoFailed && rolledBack && promoted) {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: argo failed %v, flagger rolled back %v, promoted %v; last verdict %v; log:\n%s", argoFailed, rolledBack, promoted, v, stderr.String())
		}
		time.Sleep(2 * time.Second)
		if !argoFailed {
			_, v = argo("s3cret")
			switch v["verdict"] {
			case "fail":
				argoFailed = true
			case "pass":
				t.Fatalf("the bad canary passed: %v", v)
			}
		}
		if !rolledBack {
			code, body := flagger("bad", "rollback")
			rolledBack = code == http.StatusOK
			if rolledBack && !strings.HasPrefix(body, "fail: errors failed") {
				t.Fatalf("rollback hook: %d %q", code, body)
			}
		}
		if !promoted {
			code, body := flagger("good", "confirm-promotion")
			promoted = code == http.StatusOK
			if strings.HasPrefix(body, "fail") {
				t.Fatalf("the good canary failed: %q", body)
			}
		}
	}
	checks := v["checks"].([]any)
	if c := checks[0].(map[string]any); c["check"] != "errors" || c["verdict"] != "fail" || c["pValue"] == nil {
		t.Errorf("the failing check: %v", c)
	}
	// The bad canary still fails for the gates, and a healthy server says so.
	if code, _ := flagger("bad", "confirm-promotion"); code != http.StatusForbidden {
		t.Errorf("promotion gate of the bad canary: %d", code)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %v %v", resp, err)
	}
	if !strings.Contains(stderr.String(), "bad test/podinfo/6d9b8f8c7d: fail") {
		t.Errorf("no verdict logged:\n%s", stderr.String())
	}
}

func TestJudgeServeRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "judges.yaml")
	bad := strings.Replace(judgesYAML, "PROM", "http://127.0.0.1:9090", 1)
	bad = strings.Replace(bad, "        maxIncrease: 0.02\n  good:", "  good:", 1)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	a, stdout, stderr := testApp()
	if code := a.main(context.Background(), []string{"judge", "serve", "--config", file}); code != exitBadInput {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr)
	}
	if want := file + ":8:9: analyses.bad.checks[0]: no tolerance"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	good := strings.Replace(judgesYAML, "PROM", "http://127.0.0.1:9090", 1)
	if err := os.WriteFile(file, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := a.main(context.Background(), []string{"judge", "serve", "--config", file, "--check"}); code != exitOK || !strings.Contains(stdout.String(), "ok — prometheus source, analyses bad, good") {
		t.Errorf("--check: exit %d, %q %q", code, stdout, stderr)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if code := a.main(context.Background(), []string{"judge", "serve", "--config", file, "--token-file", empty}); code != exitBadInput || !strings.Contains(stderr.String(), "is empty") {
		t.Errorf("empty token file: exit %d, %q", code, stderr)
	}
}
