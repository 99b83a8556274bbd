package spec_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine/spec"
)

// strategies is the rollout file additions' example: a segment step, a flag step, a
// weighted step, release windows and the flag system.
const strategies = `name: checkout
traffic:
  proxy: {admin: unix:///run/perch/checkout.sock}
metrics: {builtin: {}}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.01, critical: true}
steps:
  - segment: {name: employees, match: {header: {name: X-Employee, value: "true"}}}
  - setFlag: {flag: new-dashboard, percent: 20}
  - setWeight: 10
    analyze: 10m
schedule:
  timezone: Europe/Berlin
  advance: [{days: Mon-Thu, hours: "09:00-16:00"}]
  freeze: [{from: 2026-12-20T00:00:00Z, to: 2027-01-04T00:00:00Z}]
flags:
  unleash: {address: https://unleash.example/api, token: "${UNLEASH_TOKEN}", project: default, environment: production}
`

func TestStrategiesParse(t *testing.T) {
	r, err := spec.Parse("checkout.yaml", []byte(strategies))
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{r.Steps[0].String(), r.Steps[1].String(), r.Steps[2].String()}; strings.Join(got, "|") != "segment employees|flag new-dashboard 20%|10% for 10m" {
		t.Errorf("steps %q", got)
	}
	if s := r.Steps[0].Segment; s == nil || s.Match.Header == nil || s.Match.Header.Name != "X-Employee" || s.Match.Header.Value != "true" {
		t.Errorf("segment %+v", s)
	}
	if r.Steps[0].Weight() != -1 || r.Steps[1].Weight() != -1 {
		t.Error("a segment or flag step reports a weight")
	}
	if r.Flags.Kind() != "unleash" || r.Flags.Unleash.Environment != "production" {
		t.Errorf("flags %+v", r.Flags)
	}
	if r.Schedule == nil || r.Schedule.Timezone != "Europe/Berlin" || r.Schedule.Freeze[0].To != "2027-01-04T00:00:00Z" {
		t.Errorf("schedule %+v", r.Schedule)
	}
	if got := r.FlagNames(); len(got) != 1 || got[0] != "new-dashboard" {
		t.Errorf("FlagNames = %q", got)
	}
	if got := r.Segments(); len(got) != 1 || got[0].Name != "employees" {
		t.Errorf("Segments = %v", got)
	}
	// A journal header records it and reads back to itself.
	header, _ := json.Marshal(r)
	var back spec.Rollout
	if err := json.Unmarshal(header, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Recheck(); err != nil {
		t.Errorf("the header does not recheck: %v", err)
	}
	if again, _ := json.Marshal(&back); string(again) != string(header) {
		t.Errorf("the header does not read back to itself:\n%s\n%s", header, again)
	}
}

// TestFlagTokensAreRedacted: a token written in the file is a secret a journal must not keep.
func TestFlagTokensAreRedacted(t *testing.T) {
	text := strings.Replace(strategies, `token: "${UNLEASH_TOKEN}"`, `token: "*:production.9f8e7d6c"`, 1)
	r, err := spec.Parse("checkout.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if header, _ := json.Marshal(r); strings.Contains(string(header), "9f8e7d6c") || !strings.Contains(string(header), `"token":"(redacted)"`) {
		t.Errorf("the token is recorded: %s", header)
	}
}

// TestFamilyCountsCanaryTraffic: a pause after a segment watches the segment's requests.
func TestFamilyCountsCanaryTraffic(t *testing.T) {
	text := strings.Replace(strategies, "  - setFlag: {flag: new-dashboard, percent: 20}\n", "  - pause: {duration: 10m}\n  - setFlag: {flag: new-dashboard, percent: 20}\n    analyze: 5m\n", 1)
	r, err := spec.Parse("checkout.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Family(); got != 3 {
		t.Errorf("family %d, want 3: the pause after the segment, the flag step and the weighted step", got)
	}
}

func TestStrategyErrors(t *testing.T) {
	const albTraffic = `  alb: {listenerArn: "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/b/c", stableTargetGroupArn: "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/s/1", canaryTargetGroupArn: "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/c/2"}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
checks:
  - {name: errors, canary: e, baseline: b, direction: lower_is_better, maxIncrease: 0.01}
`
	tests := []struct {
		name, old, new string
		line, col      int
		msg            string
	}{
		{"setFlag without flags", "flags:\n  unleash: {address: https://unleash.example/api, token: \"${UNLEASH_TOKEN}\", project: default, environment: production}\n", "", 9, 14,
			"steps[1].setFlag: no flags: block: name the feature-flag system the flag is in"},
		{"segment on a provider that cannot route it", "  proxy: {admin: unix:///run/perch/checkout.sock}\nmetrics: {builtin: {}}\nchecks:\n  - {name: errors, builtin: error_rate, maxIncrease: 0.01, critical: true}\nsteps:\n  - segment: {name: employees, match: {header: {name: X-Employee, value: \"true\"}}}\n",
			albTraffic + "steps:\n  - segment: {name: employees, match: {cookie: {name: staff, value: \"1\"}}}\n", 8, 39,
			"steps[0].segment.match: traffic.alb cannot route this segment: an ALB rule matches a header's value (with * and ? as wildcards), not a regular expression or a cookie"},
		{"percent over 100", "percent: 20", "percent: 120", 9, 45, "steps[1].setFlag.percent: 120 is outside 0..100"},
		{"no percent", ", percent: 20}", "}", 9, 14, "steps[1].setFlag.percent: missing"},
		{"no flag name", "flag: new-dashboard, ", "", 9, 14, "steps[1].setFlag.flag: missing"},
		{"bad segment name", "name: employees", "name: Employees", 8, 21, `steps[0].segment.name: "Employees": use 1 to 40 lower-case letters`},
		{"bad regex", `value: "true"`, `regex: "(true"`, 8, 74, "steps[0].segment.match.header.regex: error parsing regexp"},
		{"segment twice", "  - setWeight: 10\n", "  - segment: {name: employees, match: {cookie: {name: staff, value: \"1\"}}}\n  - setWeight: 10\n", 10, 21,
			`steps[2].segment.name: segment "employees" is already set at steps[0]`},
		{"two kinds in one step", "  - setFlag: {flag: new-dashboard, percent: 20}\n", "  - setFlag: {flag: new-dashboard, percent: 20}\n    setWeight: 5\n", 9, 5,
			"steps[1]: a step does one thing: it sets a weight, pauses, sets a segment or sets a flag (got setWeight and setFlag)"},
		{"bad days", "days: Mon-Thu", "days: Mon-Thr", 14, 20, `schedule.advance[0].days: "Thr" is not a day`},
		{"bad hours", `hours: "09:00-16:00"`, `hours: "9-16"`, 14, 36, `schedule.advance[0].hours: "9-16": "9" is not a time of day HH:MM`},
		{"bad timezone", "timezone: Europe/Berlin", "timezone: Europe/Berlim", 13, 13, `schedule.timezone: "Europe/Berlim" is not a time zone of the tz database`},
		{"no timezone", "  timezone: Europe/Berlin\n", "", 13, 3, "schedule.timezone: missing"},
		{"freeze backwards", "to: 2027-01-04T00:00:00Z", "to: 2026-01-04T00:00:00Z", 15, 45, "schedule.freeze[0].to: 2026-01-04T00:00:00Z is not after from"},
		{"two flag systems", "environment: production}\n", "environment: production}\n  flagd: {file: /etc/flagd/flags.json}\n", 18, 10, "flags.flagd: only one feature-flag system may be set (got unleash and flagd)"},
		{"unleash without environment", ", environment: production}", "}", 17, 12, "flags.unleash.environment: missing"},
		{"unleash address", "address: https://unleash.example/api", "address: unleash.example", 17, 22, `flags.unleash.address: want an http:// or https:// URL, got "unleash.example"`},
		{"launchDarkly without project", "  unleash: {address: https://unleash.example/api, token: \"${UNLEASH_TOKEN}\", project: default, environment: production}\n",
			"  launchDarkly: {token: \"${LD_TOKEN}\", environment: production}\n", 17, 17, "flags.launchDarkly.project: missing"},
		{"flagd without file", "  unleash: {address: https://unleash.example/api, token: \"${UNLEASH_TOKEN}\", project: default, environment: production}\n",
			"  flagd: {}\n", 17, 10, "flags.flagd.file: missing"},
		{"the journal's placeholder as token", `token: "${UNLEASH_TOKEN}"`, `token: "(redacted)"`, 17, 58, `flags.unleash.token: "(redacted)" is what journals record in place of a secret`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(strategies, tc.old) {
				t.Fatalf("edit %q does not apply", tc.old)
			}
			_, err := spec.Parse("checkout.yaml", []byte(strings.Replace(strategies, tc.old, tc.new, 1)))
			wantError(t, err, "checkout.yaml", tc.line, tc.col, tc.msg)
		})
	}
}
