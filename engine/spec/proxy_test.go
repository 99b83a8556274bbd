package spec_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine/spec"
)

// standaloneSpec drives a standalone proxy through its admin API; broken ones edit its
// traffic line.
const standaloneSpec = `name: web
traffic:
  proxy: {admin: "unix:///run/perch/web.sock"}
metrics: {builtin: {}}
analysis: {judge: threshold}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.01, critical: true}
steps:
  - {setWeight: 10, analyze: 1m}
`

func TestStandaloneProxy(t *testing.T) {
	r, err := spec.Parse("web.yaml", []byte(standaloneSpec))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Traffic.Proxy; !p.Standalone() || p.Admin != "unix:///run/perch/web.sock" || r.Traffic.Kind() != "proxy" {
		t.Errorf("traffic %+v: want the standalone proxy at its admin socket", p)
	}
	// A journal carries the spec as JSON; read back, it validates unchanged.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back spec.Rollout
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil || back.Traffic.Proxy.Admin != r.Traffic.Proxy.Admin {
		t.Errorf("journaled spec: %v, admin %q", err, back.Traffic.Proxy.Admin)
	}
	http := strings.Replace(standaloneSpec, `{admin: "unix:///run/perch/web.sock"}`, `{admin: "http://127.0.0.1:9901", adminToken: "${PERCH_ADMIN_TOKEN}"}`, 1)
	if _, err := spec.Parse("web.yaml", []byte(http)); err != nil {
		t.Errorf("http admin with a token: %v", err)
	}
}

func TestStandaloneProxyErrors(t *testing.T) {
	tests := []struct {
		name, traffic string
		line, col     int
		msg           string
	}{
		{"in-process settings too", `{admin: "unix:///run/perch/web.sock", listen: "0.0.0.0:8080"}`, 3, 56,
			"traffic.proxy.listen: set with admin"},
		{"override too", `{admin: "unix:///run/perch/web.sock", override: {header: X-Canary}}`, 3, 58,
			"traffic.proxy.override: set with admin"},
		{"http without a token", `{admin: "http://127.0.0.1:9901"}`, 3, 10, "traffic.proxy.adminToken: missing: an HTTP admin API needs its token"},
		{"relative socket", `{admin: "unix://run/perch/web.sock"}`, 3, 18, "traffic.proxy.admin: want unix:///ABSOLUTE/PATH"},
		{"other scheme", `{admin: "tcp://127.0.0.1:9901"}`, 3, 18, "traffic.proxy.admin: want unix:///PATH or http://127.0.0.1:PORT"},
		{"no port", `{admin: "http://127.0.0.1"}`, 3, 18, "traffic.proxy.admin: want http://HOST:PORT"},
		{"token without admin", `{listen: "127.0.0.1:8080", stable: "http://127.0.0.1:9001", canary: "http://127.0.0.1:9002", adminToken: x}`, 3, 115,
			"traffic.proxy.adminToken: set without admin"},
		{"neither", `{}`, 3, 10, "traffic.proxy.listen: missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(standaloneSpec, `{admin: "unix:///run/perch/web.sock"}`, tc.traffic, 1)
			_, err := spec.Parse("web.yaml", []byte(text))
			var errs spec.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want spec.Errors", err)
			}
			for _, e := range errs {
				if e.Line == tc.line && e.Col == tc.col && strings.Contains(e.Msg, tc.msg) {
					return
				}
			}
			t.Errorf("want web.yaml:%d:%d: %s\ngot:\n%v", tc.line, tc.col, tc.msg, err)
		})
	}
}
