package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/perchhq/perch/providers/alb/albtest"
)

// TestRunFailsBeforeStartingWithoutAWSAccess: with no AWS credentials, or an endpoint that
// refuses connections, run (and serve, which starts the same way) exits 3 with one line
// saying what it could not reach, before any event: no journal, nothing printed on stdout.
func TestRunFailsBeforeStartingWithoutAWSAccess(t *testing.T) {
	tests := []struct {
		name string
		env  func(t *testing.T)
		want string
	}{
		{"no credentials", func(t *testing.T) {
			for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
		}, "no usable AWS credentials"},
		{"endpoint refuses", func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL", "http://"+freeAddr(t))
			t.Setenv("AWS_MAX_ATTEMPTS", "1")
		}, "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			albtest.IsolateAWS(t)
			tc.env(t)
			file := writeFile(t, "rollout.yaml", strings.Replace(albRollout, "RULE", albtest.WeightedRule, 1))
			journal := filepath.Join(filepath.Dir(file), "j.jsonl")
			keys := writeFile(t, "ops.keys", operatorKey(t))
			for _, verb := range [][]string{{"run", file, "--headless"}, {"serve", file, "--ssh", "127.0.0.1:0", "--operator-keys", keys}} {
				code, out, errOut := perchRunWithin(t, 20*time.Second, append(verb, "--socket", "none", "--journal", journal)...)
				lines := strings.Split(strings.TrimSpace(errOut), "\n")
				if code != exitRuntime || len(lines) != 1 || !strings.HasPrefix(lines[0], "perch: cannot start: "+file+":4:5: traffic.alb: ") ||
					!strings.Contains(lines[0], tc.want) {
					t.Errorf("%s: exit %d, stderr:\n%s\nwant exit 3 and one line saying %q", verb[0], code, errOut, tc.want)
				}
				if out != "" {
					t.Errorf("%s: events were printed before the start failed:\n%s", verb[0], out)
				}
				if _, err := os.Stat(journal); !os.IsNotExist(err) {
					t.Errorf("%s: a journal was left behind (%v)", verb[0], err)
				}
			}
		})
	}
}

// TestProxyBackendsMustAnswer: validate --check-access and run reach both of the proxy's
// backends. Any HTTP answer counts (the stable one answers 500); the canary's refused
// connection is named, where the file wrote it.
func TestProxyBackendsMustAnswer(t *testing.T) {
	stable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken, but answering", http.StatusInternalServerError)
	}))
	defer stable.Close()
	canary := "http://" + freeAddr(t)
	rollout := func(canary string) string {
		return writeFile(t, "proxy.yaml", fmt.Sprintf(`name: web
traffic:
  proxy:
    listen: 127.0.0.1:0
    stable: %s
    canary: %s
metrics: {builtin: {}}
analysis: {interval: 1s}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.05}
steps: [{setWeight: 10, analyze: 1m}]
`, stable.URL, canary))
	}
	file := rollout(canary)
	code, out, errOut := perchRun(t, defaultRegistry(), "validate", file, "--check-access")
	want := file + ":6:13: traffic.proxy.canary: the canary backend " + canary + " does not answer: dial tcp "
	if code != exitRuntime || !strings.Contains(errOut, want) || !strings.Contains(errOut, "connection refused") ||
		strings.Contains(errOut, "traffic.proxy.stable") || strings.Contains(out, "reachable") {
		t.Errorf("validate --check-access: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 3 and %q", code, out, errOut, want)
	}
	journal := filepath.Join(t.TempDir(), "j.jsonl")
	code, _, errOut = perchRunWithin(t, 20*time.Second, "run", file, "--headless", "--socket", "none", "--journal", journal)
	if _, err := os.Stat(journal); code != exitRuntime || !strings.Contains(errOut, "perch: cannot start: "+want) || !os.IsNotExist(err) {
		t.Errorf("run: exit %d, journal %v, stderr:\n%s\nwant exit 3, no journal, and %q", code, err, errOut, want)
	}

	up := httptest.NewServer(http.NotFoundHandler())
	defer up.Close()
	code, out, errOut = perchRun(t, defaultRegistry(), "validate", rollout(up.URL), "--check-access")
	if code != exitOK || !strings.Contains(out, "(stable "+stable.URL+" and canary "+up.URL+" answering): reachable, canary at 0%") {
		t.Errorf("both backends answering: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// operatorKey is an authorized_keys line for a fresh ed25519 key.
func operatorKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + " alice\n"
}

// perchRunWithin runs perch with the default registry, stopping it (as a signal would) after
// d: a run that started when it should not have ends then, and the test says why.
func perchRunWithin(t *testing.T, d time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut lockedBuffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, registry: defaultRegistry(), getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	code = a.main(ctx, args)
	return code, out.String(), errOut.String()
}
