package spec_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine/spec"
)

// withAlerts is goodSpec with an alerts block; its first line is line 20.
func withAlerts(block string) string { return goodSpec + "alerts:\n" + block }

// wantError asserts that err holds one error at file:line:col whose message contains msg.
func wantError(t *testing.T, err error, file string, line, col int, msg string) {
	t.Helper()
	var errs spec.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v, want spec.Errors with %s:%d:%d: %s", err, file, line, col, msg)
	}
	for _, e := range errs {
		if e.File == file && e.Line == line && e.Col == col && strings.Contains(e.Msg, msg) {
			return
		}
	}
	t.Errorf("want %s:%d:%d: %s\ngot:\n%v", file, line, col, msg, err)
}

// An unauthenticated receiver reachable from other machines would let anyone who reaches the
// port roll the release back: such a file does not validate.
func TestAlertsOffLoopbackNeedAuthentication(t *testing.T) {
	refused := []struct {
		name, block string
		line, col   int
		msg         string
	}{
		{"all interfaces", "  listen: 0.0.0.0:9095\n  rollbackOn: [{severity: page}]\n", 21, 11,
			"alerts.listen: 0.0.0.0:9095 is not a loopback address, so the receiver must authenticate Alertmanager: set alerts.bearerToken or alerts.basicAuth"},
		{"no host", "  listen: \":9095\"\n  rollbackOn: [{severity: page}]\n", 21, 11, "alerts.listen: :9095 is not a loopback address"},
		{"a host name", "  listen: perch.internal:9095\n  rollbackOn: [{severity: page}]\n", 21, 11, "is not a loopback address"},
		{"TLS without client certificates", "  listen: 10.0.0.5:9095\n  tls: {cert: c.pem, key: k.pem}\n  rollbackOn: [{severity: page}]\n", 21, 11, "is not a loopback address"},
		{"both kinds of auth", "  listen: 10.0.0.5:9095\n  bearerToken: \"${T}\"\n  basicAuth: {username: am, password: \"${P}\"}\n  rollbackOn: [{severity: page}]\n", 23, 14,
			"alerts.basicAuth: set bearerToken or basicAuth, not both"},
		{"basic auth without password", "  listen: 10.0.0.5:9095\n  basicAuth: {username: am}\n  rollbackOn: [{severity: page}]\n", 22, 14, "alerts.basicAuth.password: missing"},
		{"TLS without key", "  listen: 127.0.0.1:9095\n  tls: {cert: c.pem}\n  rollbackOn: [{severity: page}]\n", 22, 8, "alerts.tls.key: missing"},
		{"the journal's placeholder as token", "  listen: 10.0.0.5:9095\n  bearerToken: \"(redacted)\"\n  rollbackOn: [{severity: page}]\n", 22, 16,
			`alerts.bearerToken: "(redacted)" is what journals record in place of a secret`},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := spec.Parse("web.yaml", []byte(withAlerts(tc.block)))
			wantError(t, err, "web.yaml", tc.line, tc.col, tc.msg)
		})
	}
	accepted := map[string]string{
		"loopback IPv4":           "  listen: 127.0.0.1:9095\n",
		"loopback IPv6":           "  listen: \"[::1]:9095\"\n",
		"localhost":               "  listen: localhost:9095\n",
		"bearer token":            "  listen: 0.0.0.0:9095\n  bearerToken: \"${ALERTS_TOKEN}\"\n",
		"basic auth":              "  listen: 0.0.0.0:9095\n  basicAuth: {username: alertmanager, password: \"${ALERTS_PASSWORD}\"}\n",
		"client certificates":     "  listen: 0.0.0.0:9095\n  tls: {cert: /etc/perch/tls.crt, key: /etc/perch/tls.key, clientCA: /etc/perch/ca.crt}\n",
		"token over TLS":          "  listen: 10.0.0.5:9095\n  bearerToken: \"${ALERTS_TOKEN}\"\n  tls: {cert: c.pem, key: k.pem}\n",
		"token written literally": "  listen: 10.0.0.5:9095\n  bearerToken: 0123456789abcdef0123456789abcdef\n",
	}
	for name, block := range accepted {
		t.Run(name, func(t *testing.T) {
			if _, err := spec.Parse("web.yaml", []byte(withAlerts(block+"  rollbackOn: [{severity: page}]\n"))); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
}

// A journal header records the rollout file, and a journal is a recording people share:
// secrets written in the file are recorded redacted; ${NAME} references as they are.
func TestSecretsAreRedactedInJournals(t *testing.T) {
	text := withAlerts("  listen: 0.0.0.0:9095\n  basicAuth: {username: am, password: hunter2-is-not-a-password}\n  rollbackOn: [{severity: page}]\n")
	r, err := spec.Parse("web.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	header, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(header), "hunter2") || !strings.Contains(string(header), `"password":"(redacted)"`) {
		t.Errorf("the password is recorded: %s", header)
	}
	var back spec.Rollout
	if err := json.Unmarshal(header, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Recheck(); err != nil {
		t.Errorf("a redacted header does not recheck: %v", err)
	}
	again, _ := json.Marshal(&back)
	if string(again) != string(header) {
		t.Errorf("the header does not read back to itself (a resume compares them):\n%s\n%s", header, again)
	}

	r, err = spec.Parse("web.yaml", []byte(withAlerts("  listen: 0.0.0.0:9095\n  bearerToken: \"${ALERTS_TOKEN}\"\n  rollbackOn: [{severity: page}]\n")))
	if err != nil {
		t.Fatal(err)
	}
	if header, _ := json.Marshal(r.Alerts); !strings.Contains(string(header), `"bearerToken":"${ALERTS_TOKEN}"`) {
		t.Errorf("a reference is recorded as %s, want it as written", header)
	}
}

// Journals written before receivers had to authenticate still read: the header records a
// rollout that was checked when it ran.
func TestOldJournalHeaderWithOpenReceiverRechecks(t *testing.T) {
	r, err := spec.Parse("web.yaml", []byte(withAlerts("  listen: 127.0.0.1:9095\n  rollbackOn: [{severity: page}]\n")))
	if err != nil {
		t.Fatal(err)
	}
	r.Alerts.Listen = "0.0.0.0:9095"
	header, _ := json.Marshal(r)
	var back spec.Rollout
	if err := json.Unmarshal(header, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Recheck(); err != nil {
		t.Errorf("recheck: %v", err)
	}
	if err := r.Validate(); err == nil {
		t.Error("Validate accepted an open receiver on 0.0.0.0")
	}
}

// A rollout file may not sample faster than once a second: each look is journaled and
// fsynced, and 1ns made perch write thousands of events a second.
func TestIntervalFloorForFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		interval string
		msg      string
	}{
		{"1ns", "analysis.interval: 1ns is below the 1s floor"},
		{"999ms", "analysis.interval: 999ms is below the 1s floor"},
		{"1s", ""},
	} {
		path := filepath.Join(dir, tc.interval+".yaml")
		text := strings.Replace(goodSpec, "  judge: threshold\n", "  judge: threshold\n  interval: "+tc.interval+"\n", 1)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := spec.Load(path)
		if tc.msg == "" {
			if err != nil {
				t.Errorf("interval %s: %v", tc.interval, err)
			}
			continue
		}
		wantError(t, err, path, 8, 13, tc.msg)
	}
}

// Rollouts a program vouches for (Parse's bytes, a Rollout built in code such as the demo's,
// whose intervals shrink with --speed) may go faster than files.
func TestIntervalFloorSparesPrograms(t *testing.T) {
	fast := strings.Replace(goodSpec, "  judge: threshold\n", "  judge: threshold\n  interval: 250ms\n", 1)
	fast = strings.ReplaceAll(fast, "analyze: 5m", "analyze: 1s")
	r, err := spec.Parse("web.yaml", []byte(fast))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
