package proxyd

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/internal/yamlpos"
)

// goodFile is a valid proxy file; broken ones are made by editing one line of it.
const goodFile = `listen: 0.0.0.0:8080
admin: unix:///run/perch/checkout.sock
stable: http://10.0.0.1:8080
canary: http://10.0.0.2:8080
state: /var/lib/perch/checkout.state
sticky: {header: X-User-Id}
override: {header: X-Perch-Version, token: "${PERCH_OVERRIDE_TOKEN}"}
timeouts: {responseHeader: 30s, idle: 75s, body: 60s}
maxConnections: 10000
metrics: 127.0.0.1:9100
`

var testEnv = map[string]string{"PERCH_OVERRIDE_TOKEN": "override-0123456789", "PERCH_ADMIN_TOKEN": "admin-token-0123456789"}

func getenv(k string) string { return testEnv[k] }

func TestParseGoodFile(t *testing.T) {
	c, err := Parse("proxy.yaml", []byte(goodFile), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:8080" || c.Stable != "http://10.0.0.1:8080" || c.Canary != "http://10.0.0.2:8080" ||
		c.State != "/var/lib/perch/checkout.state" || c.Sticky.Header != "X-User-Id" || c.Metrics != "127.0.0.1:9100" {
		t.Errorf("parsed %+v", c)
	}
	if c.Override.Token != "override-0123456789" {
		t.Errorf("override token %q: want ${PERCH_OVERRIDE_TOKEN} read from the environment", c.Override.Token)
	}
	if !c.AdminAddress().IsUnix() || c.AdminAddress().Path != "/run/perch/checkout.sock" {
		t.Errorf("admin address %+v", c.AdminAddress())
	}
	if c.Timeouts != (Timeouts{ResponseHeader: 30 * time.Second, Idle: 75 * time.Second, Body: 60 * time.Second}) || c.MaxConnections != 10000 {
		t.Errorf("timeouts %+v, maxConnections %d", c.Timeouts, c.MaxConnections)
	}
}

func TestDefaultsAndRelativeState(t *testing.T) {
	text := "listen: 127.0.0.1:8080\nadmin: unix:///tmp/p.sock\nstable: http://a:1\ncanary: http://b:1\nstate: checkout.state\n"
	c, err := Parse(filepath.Join("/etc", "perch", "proxy.yaml"), []byte(text), getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := Timeouts{ResponseHeader: DefaultResponseHeaderTimeout, Idle: DefaultIdleTimeout, Body: DefaultBodyTimeout}
	if c.Timeouts != want || c.MaxConnections != DefaultMaxConnections {
		t.Errorf("defaults: timeouts %+v, maxConnections %d", c.Timeouts, c.MaxConnections)
	}
	if c.Observations != (Observations{Resolution: DefaultResolution, Retention: DefaultRetention}) {
		t.Errorf("observations %+v", c.Observations)
	}
	if c.State != "/etc/perch/checkout.state" {
		t.Errorf("state %q: want it beside the file", c.State)
	}
	if c.Override != nil || c.Sticky != nil || c.Metrics != "" {
		t.Errorf("unset blocks came back set: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name      string
		old, new  string // edit of goodFile
		line, col int
		msg       string
	}{
		{"unknown field", "maxConnections: 10000", "maxConnection: 10000", 9, 1, `unknown field "maxConnection" (did you mean "maxConnections"?)`},
		{"unknown nested field", "{responseHeader: 30s,", "{responseHeaders: 30s,", 8, 12, `timeouts: unknown field "responseHeaders" (did you mean "responseHeader"?)`},
		{"unset variable", "${PERCH_OVERRIDE_TOKEN}", "${NOT_SET}", 7, 44, "override.token: environment variable NOT_SET is not set"},
		{"override without token", `, token: "${PERCH_OVERRIDE_TOKEN}"}`, "}", 7, 11, "override.token: missing"},
		{"short override token", "${PERCH_OVERRIDE_TOKEN}", "short", 7, 44, "override.token: want at least 16 characters"},
		{"bad duration", "idle: 75s", "idle: 75", 8, 39, `timeouts.idle: want a duration like 30s or 5m, got "75" (add a unit`},
		{"zero timeout", "body: 60s", "body: 0s", 8, 50, "timeouts.body: want a positive duration"},
		{"bad backend", "canary: http://10.0.0.2:8080", "canary: 10.0.0.2:8080", 4, 9, `canary: want an http:// or https:// URL`},
		{"same backends", "canary: http://10.0.0.2:8080", "canary: http://10.0.0.1:8080", 4, 9, "canary: the canary backend is the stable one"},
		{"missing listen", "listen: 0.0.0.0:8080\n", "", 1, 1, "listen: missing"},
		{"bad listen", "listen: 0.0.0.0:8080", "listen: 8080", 1, 9, `listen: want HOST:PORT, got "8080"`},
		{"http admin off loopback", "admin: unix:///run/perch/checkout.sock", "admin: http://0.0.0.0:9901", 2, 8, "admin: an HTTP admin API listens on loopback only"},
		{"http admin without token", "admin: unix:///run/perch/checkout.sock", "admin: http://127.0.0.1:9901", 2, 8, "adminToken: missing: an HTTP admin API needs a token"},
		{"relative socket", "admin: unix:///run/perch/checkout.sock", "admin: unix://run/perch/checkout.sock", 2, 8, "admin: want unix:///ABSOLUTE/PATH"},
		{"sticky both", "sticky: {header: X-User-Id}", "sticky: {header: X-User-Id, cookie: s}", 6, 9, "sticky: name exactly one of header or cookie"},
		{"cap", "maxConnections: 10000", "maxConnections: 0", 9, 17, "maxConnections: want 1 to"},
		{"text where number", "maxConnections: 10000", "maxConnections: many", 9, 17, `maxConnections: want a whole number, got "many"`},
		{"set twice", "metrics: 127.0.0.1:9100\n", "metrics: 127.0.0.1:9100\nmetrics: 127.0.0.1:9101\n", 11, 1, "metrics: set twice"},
		{"not YAML", "sticky: {header: X-User-Id}", "sticky: {header: X-User-Id", 5, 1, "not valid YAML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(goodFile, tc.old) {
				t.Fatalf("edit %q does not apply", tc.old)
			}
			_, err := Parse("proxy.yaml", []byte(strings.Replace(goodFile, tc.old, tc.new, 1)), getenv)
			var errs yamlpos.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want yamlpos.Errors", err)
			}
			for _, e := range errs {
				if e.File == "proxy.yaml" && e.Line == tc.line && e.Col == tc.col && strings.Contains(e.Msg, tc.msg) {
					return
				}
			}
			t.Errorf("want proxy.yaml:%d:%d: %s\ngot:\n%v", tc.line, tc.col, tc.msg, err)
		})
	}
}

func TestHTTPAdminWithToken(t *testing.T) {
	text := strings.Replace(goodFile, "admin: unix:///run/perch/checkout.sock", "admin: http://127.0.0.1:9901\nadminToken: \"${PERCH_ADMIN_TOKEN}\"", 1)
	c, err := Parse("proxy.yaml", []byte(text), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminAddress().HostPort != "127.0.0.1:9901" || c.AdminToken != "admin-token-0123456789" {
		t.Errorf("admin %+v, token %q", c.AdminAddress(), c.AdminToken)
	}
}

func TestEmptyFile(t *testing.T) {
	for _, text := range []string{"", "# nothing\n"} {
		if _, err := Parse("p.yaml", []byte(text), getenv); err == nil || !strings.Contains(err.Error(), "p.yaml:1:1: empty proxy file") {
			t.Errorf("%q: %v", text, err)
		}
	}
}

func TestRestartOnly(t *testing.T) {
	old, err := Parse("proxy.yaml", []byte(goodFile), getenv)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.NewReplacer("canary: http://10.0.0.2:8080", "canary: http://10.0.0.3:8080", "idle: 75s", "idle: 10s",
		"listen: 0.0.0.0:8080", "listen: 0.0.0.0:8081").Replace(goodFile)
	next, err := Parse("proxy.yaml", []byte(edited), getenv)
	if err != nil {
		t.Fatal(err)
	}
	got := next.restartOnly(old)
	if len(got) != 1 || !strings.HasPrefix(got[0], "listen") {
		t.Errorf("restart-only changes %q: want only listen (backends and timeouts reload)", got)
	}
}
