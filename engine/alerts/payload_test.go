package alerts_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine/alerts"
)

func TestParseRealPayloads(t *testing.T) {
	tests := []struct {
		file   string
		status string
	}{
		{"alertmanager-firing.json", alerts.StatusFiring},
		{"alertmanager-resolved.json", alerts.StatusResolved},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			p, err := alerts.ParsePayload(body)
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != tc.status || len(p.Alerts) != 1 {
				t.Fatalf("status %q with %d alerts, want %q with 1", p.Status, len(p.Alerts), tc.status)
			}
			a := p.Alerts[0]
			if a.Status != tc.status || a.Name() != "HighErrorRate" || a.Labels["service"] != "web" ||
				a.Annotations["summary"] != "5xx above 5% for 2m" || a.StartsAt.IsZero() || a.Fingerprint == "" {
				t.Errorf("alert %+v", a)
			}
		})
	}
}

func TestParsePayloadRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"empty", "", "invalid JSON: EOF"},
		{"null", "null", `unsupported payload version ""`},
		{"array", `[{"version":"4"}]`, "invalid JSON: json: cannot unmarshal array"},
		{"truncated", `{"version":"4","alerts":[`, "invalid JSON: unexpected EOF"},
		{"two objects", `{"version":"4"} {"version":"4"}`, "more than one value"},
		{"trailing garbage", `{"version":"4"} ]`, "invalid JSON after the payload"},
		{"no version", `{"alerts":[]}`, `unsupported payload version "": perch reads Alertmanager's webhook payload version "4"`},
		{"version as number", `{"version":4}`, "invalid JSON: json: cannot unmarshal number into Go struct field Payload.version of type string"},
		{"old version", `{"version":"3"}`, `unsupported payload version "3"`},
		{"alert without status", `{"version":"4","alerts":[{"labels":{"alertname":"X"}}]}`, `alerts[0]: status "": want "firing" or "resolved"`},
		{"label value not a string", `{"version":"4","alerts":[{"status":"firing","labels":{"code":500}}]}`, "cannot unmarshal number"},
		{"bad time", `{"version":"4","alerts":[{"status":"firing","startsAt":"yesterday"}]}`, "invalid JSON: parsing time"},
		{"newline in version", "{\"version\":\"4\\n\"}", `unsupported payload version "4\n"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := alerts.ParsePayload([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	labels := map[string]string{"alertname": "HighErrorRate", "service": "web", "severity": "page"}
	tests := []struct {
		name string
		rule map[string]string
		want bool
	}{
		{"one label", map[string]string{"severity": "page"}, true},
		{"every label", map[string]string{"alertname": "HighErrorRate", "service": "web", "severity": "page"}, true},
		{"a subset", map[string]string{"alertname": "HighErrorRate", "service": "web"}, true},
		{"another value", map[string]string{"severity": "ticket"}, false},
		{"one of two differs", map[string]string{"alertname": "HighErrorRate", "service": "api"}, false},
		{"a label the alert lacks", map[string]string{"team": "payments"}, false},
		{"an empty value is not an absent label", map[string]string{"team": ""}, false},
		{"values are case sensitive", map[string]string{"severity": "Page"}, false},
		{"names are case sensitive", map[string]string{"Severity": "page"}, false},
		{"no regexes", map[string]string{"alertname": "High.*"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := (alerts.Alert{Labels: labels}).Matches(tc.rule); got != tc.want {
				t.Errorf("Matches(%v) = %v, want %v", tc.rule, got, tc.want)
			}
		})
	}
	rules := []map[string]string{{"severity": "ticket"}, {"service": "web"}}
	if !(alerts.Alert{Labels: labels}).MatchesAny(rules) || (alerts.Alert{Labels: labels}).MatchesAny(rules[:1]) {
		t.Error("MatchesAny must match when any one rule matches, and only then")
	}
	if (alerts.Alert{}).MatchesAny(rules) {
		t.Error("an alert without labels matched")
	}
}

func TestAlertName(t *testing.T) {
	tests := []struct {
		name  string
		alert alerts.Alert
		want  string
	}{
		{"alertname", alerts.Alert{Labels: map[string]string{"alertname": "X"}, Fingerprint: "f1"}, "X"},
		{"fingerprint", alerts.Alert{Fingerprint: "d41df9aad0ec62f7"}, "d41df9aad0ec62f7"},
		{"nothing", alerts.Alert{}, "unnamed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.alert.Name(); got != tc.want {
				t.Errorf("Name() = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzParsePayload: the parser never panics, its errors are one line, and what it accepts is
// a version 4 payload whose alerts are firing or resolved, and survives a round trip.
// Seeds: testdata/fuzz/FuzzParsePayload (real Alertmanager payloads and edge cases).
func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := alerts.ParsePayload(body)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		if p.Version != alerts.PayloadVersion {
			t.Fatalf("accepted version %q", p.Version)
		}
		for _, a := range p.Alerts {
			if a.Status != alerts.StatusFiring && a.Status != alerts.StatusResolved {
				t.Fatalf("accepted status %q", a.Status)
			}
			_ = a.Name()
			_ = a.MatchesAny([]map[string]string{{"alertname": "A"}})
		}
		again, err := json.Marshal(p)
		if err != nil {
			if strings.Contains(err.Error(), "year outside of range") {
				return // a time JSON can read but not write (year 10000): nothing perch relies on
			}
			t.Fatalf("re-encode: %v", err)
		}
		q, err := alerts.ParsePayload(again)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", again, err)
		}
		if len(q.Alerts) != len(p.Alerts) {
			t.Fatalf("round trip changed the alerts: %d, then %d", len(p.Alerts), len(q.Alerts))
		}
		for i := range p.Alerts {
			a, b := p.Alerts[i], q.Alerts[i]
			if a.Name() != b.Name() || a.Status != b.Status || len(a.Labels) != len(b.Labels) || !a.StartsAt.Equal(b.StartsAt) {
				t.Fatalf("round trip changed alert %d: %+v, then %+v", i, a, b)
			}
		}
	})
}
