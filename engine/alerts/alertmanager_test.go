package alerts_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/alerts"
)

var update = flag.Bool("update", false, "rewrite testdata/ with the payloads the real Alertmanager sent")

// TestAlertmanagerRollsBack runs Debian's real Alertmanager with a route to the receiver,
// authenticating as its webhook_configs http_config says, posts alerts to it as Prometheus
// would, and watches a real engine react. A request without the credentials, as anyone on
// the network could send, is refused.
func TestAlertmanagerRollsBack(t *testing.T) {
	bin := alertmanagerBinary(t)
	dir := t.TempDir()
	ca := newAuthority(t, "perch test CA")
	cert, key, caFile := tlsFiles(t, dir, ca)
	amCert, amKey := ca.issue(t, "alertmanager", x509.ExtKeyUsageClientAuth)
	amCertFile, amKeyFile := filepath.Join(dir, "am.crt"), filepath.Join(dir, "am.key")
	os.WriteFile(amCertFile, amCert, 0o600)
	os.WriteFile(amKeyFile, amKey, 0o600)
	tests := []struct {
		name       string
		alerts     string // lines of the rollout file's alerts block
		httpConfig string // Alertmanager's webhook http_config
	}{
		{"bearer token", "  bearerToken: \"${ALERTS_TOKEN}\"\n",
			fmt.Sprintf("authorization: {credentials: %q}", token)},
		{"basic auth", "  basicAuth: {username: alertmanager, password: \"${ALERTS_TOKEN}\"}\n",
			fmt.Sprintf("basic_auth: {username: alertmanager, password: %q}", token)},
		{"bearer token over mutual TLS", fmt.Sprintf("  bearerToken: \"${ALERTS_TOKEN}\"\n  tls: {cert: %q, key: %q, clientCA: %q}\n", cert, key, caFile),
			fmt.Sprintf("authorization: {credentials: %q}\ntls_config: {ca_file: %q, cert_file: %q, key_file: %q}", token, caFile, amCertFile, amKeyFile)},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			alertmanagerRollsBack(t, bin, tc.alerts, tc.httpConfig, *update && i == 0)
		})
	}
}

func alertmanagerRollsBack(t *testing.T, bin, alertsBlock, httpConfig string, save bool) {
	spec := parseSpec(t, authYAML(alertsBlock))
	r := startEngine(t, spec, &world{})
	bodies := &capture{}
	rcv := newReceiver(t, r.eng, spec.Alerts, alerts.Options{Logf: t.Logf, Getenv: env(map[string]string{"ALERTS_TOKEN": token})})
	srv, err := alerts.ListenHandler(t.Context(), "127.0.0.1:0", bodies.wrap(rcv), rcv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	am := startAlertmanager(t, bin, srv.URL()+"alerts", httpConfig)
	r.waitFor(10*time.Second, "the rollout to run", func(st engine.State) bool { return st.Phase == engine.PhaseRunning })

	// What anyone who reaches the port could send: refused, and nothing journaled.
	forged := payload(firing("alertname", "HighErrorRate", "service", "web"))
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if res, err := insecure.Post(srv.URL(), "application/json", strings.NewReader(forged)); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("a forged alert without credentials: %s, want 401 Unauthorized", res.Status)
		}
	}
	if st := r.eng.Snapshot(); st.Phase != engine.PhaseRunning || len(r.notes()) > 0 {
		t.Fatalf("after a forged alert: phase %s, notes %q; want running and nothing noted", st.Phase, r.notes())
	}

	// An alert that matches no rollbackOn entry is noted; the rollout goes on.
	am.post(t, amAlert{Labels: map[string]string{"alertname": "DiskFull", "severity": "ticket"}, Annotations: map[string]string{"summary": "disk 91% full"}})
	r.waitFor(30*time.Second, "DiskFull noted", func(engine.State) bool {
		return slices.Contains(r.notes(), "alertmanager/DiskFull: DiskFull firing: disk 91% full (matches no alerts.rollbackOn entry)")
	})
	if st := r.eng.Snapshot(); st.Phase != engine.PhaseRunning {
		t.Fatalf("phase %s after a non-matching alert, want running", st.Phase)
	}

	// A matching alert rolls back, by the alert's name.
	highErrors := amAlert{
		Labels:      map[string]string{"alertname": "HighErrorRate", "service": "web", "severity": "critical"},
		Annotations: map[string]string{"summary": "5xx above 5% for 2m"},
		StartsAt:    time.Now().UTC(),
	}
	am.post(t, highErrors)
	st := r.waitFor(30*time.Second, "the rollback", func(st engine.State) bool { return st.Phase == engine.PhaseRolledBack })
	if rb := r.journal.ofType(engine.EventRollbackStarted); len(rb) == 1 {
		t.Logf("alert posted to Alertmanager → rollback started: %s (group_wait 100ms)", rb[0].Time.Sub(highErrors.StartsAt).Round(time.Millisecond))
	}
	if st.EndedBy == nil || st.EndedBy.Name != "alertmanager/HighErrorRate" || st.EndedBy.Source != "alertmanager" || st.EndReason != "HighErrorRate firing: 5xx above 5% for 2m" {
		t.Errorf("rolled back by %+v: %q; want alertmanager/HighErrorRate with the alert's summary", st.EndedBy, st.EndReason)
	}

	// Resolving it is noted.
	highErrors.EndsAt = time.Now().UTC()
	am.post(t, highErrors)
	r.waitFor(30*time.Second, "the resolution noted", func(engine.State) bool {
		return slices.Contains(r.notes(), "alertmanager/HighErrorRate: HighErrorRate resolved")
	})
	if refused := r.journal.ofType(engine.EventCommandRefused); len(refused) > 0 {
		t.Errorf("the engine refused %+v", refused)
	}
	if save {
		bodies.save(t)
	}
}

// alertmanagerBinary finds Debian's prometheus-alertmanager: CI must have it; elsewhere the
// test is skipped with what to install.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("prometheus-alertmanager is not installed (CI installs the Debian package prometheus-alertmanager): %v", err)
	}
	t.Skip("install the Debian package prometheus-alertmanager to run this test")
	return ""
}

type alertmanager struct{ url string }

// startAlertmanager runs Alertmanager on a free loopback port, with clustering off, its own
// storage and one route: every alert to webhookURL, with httpConfig (YAML lines of its
// http_config), grouped by name, with short waits.
func startAlertmanager(t *testing.T, bin, webhookURL, httpConfig string) *alertmanager {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf(`route:
  receiver: perch
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: perch
    webhook_configs:
      - url: %q
        send_resolved: true
        http_config:
          %s
`, webhookURL, strings.ReplaceAll(httpConfig, "\n", "\n          "))
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var out bytes.Buffer
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
	)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start alertmanager: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager's output:\n%s", out.String())
		}
	})
	am := &alertmanager{url: "http://" + addr}
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(am.url + "/-/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return am
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready after 15s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
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

// amAlert is an alert as Prometheus posts it to Alertmanager's API v2.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (am *alertmanager) post(t *testing.T, a amAlert) {
	t.Helper()
	a.GeneratorURL = "http://prometheus.test:9090/graph?g0.expr=up"
	body, _ := json.Marshal([]amAlert{a})
	res, err := http.Post(am.url+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("post alert: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("post alert: %s: %s", res.Status, b)
	}
}

// capture keeps the bodies Alertmanager sent, by the payload's status.
type capture struct {
	mu     sync.Mutex
	bodies map[string][]byte
}

func (c *capture) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p struct{ Status string }
		json.Unmarshal(body, &p)
		c.mu.Lock()
		if c.bodies == nil {
			c.bodies = map[string][]byte{}
		}
		c.bodies[p.Status] = body
		c.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, req)
	})
}

// save writes the captured bodies to testdata/, where the parser's tests and fuzz seeds read
// them.
func (c *capture) save(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for status, body := range c.bodies {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, body, "", "  "); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "alertmanager-"+strings.ToLower(status)+".json")
		if err := os.WriteFile(path, append(pretty.Bytes(), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}
