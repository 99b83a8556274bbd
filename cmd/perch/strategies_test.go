package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perchhq/perch/providers/alb/albtest"
)

const flagsFile = `{"flags": {"new-dashboard": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
  "targeting": {"fractional": [["on", 15], ["off", 85]]}}}}`

// TestTrafficShowsSegmentsAndFlags: perch traffic reads the segments perch routes and the
// flags the steps set, beside the weight.
func TestTrafficShowsSegmentsAndFlags(t *testing.T) {
	fake := albtest.New()
	file := albFile(t, fake, "")
	flagd := filepath.Join(t.TempDir(), "flags.json")
	if err := os.WriteFile(flagd, []byte(flagsFile), 0o644); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(file)
	withStrategies := strings.Replace(strings.Replace(string(text), "    ruleArn: \n", "", 1), "steps:\n", `steps:
  - segment: {name: employees, match: {header: {name: X-Employee, value: "true"}}}
  - setFlag: {flag: new-dashboard, percent: 20}
`, 1) + "flags: {flagd: {file: " + flagd + "}}\n"
	os.WriteFile(file, []byte(withStrategies), 0o644)
	code, out, errOut := perchRun(t, defaultRegistry(), "traffic", file)
	want := "canary 0%, stable 100%\nsegments routed to canary: none\nflags: flagd file " + flagd + "\nflag new-dashboard: on for 15% of users\n"
	if code != exitOK || !strings.HasSuffix(out, want) {
		t.Fatalf("exit %d\nstdout:\n%s\nwant it to end\n%s\nstderr:\n%s", code, out, want, errOut)
	}
}

// TestValidateReportsStrategyErrors: perch validate names the line of a segment the provider
// cannot route and of a setFlag with no flags: block.
func TestValidateReportsStrategyErrors(t *testing.T) {
	fake := albtest.New()
	file := albFile(t, fake, albtest.WeightedRule)
	text, _ := os.ReadFile(file)
	bad := strings.Replace(string(text), "steps:\n", `steps:
  - segment: {name: beta, match: {cookie: {name: beta, value: "1"}}}
  - setFlag: {flag: new-dashboard, percent: 20}
`, 1)
	os.WriteFile(file, []byte(bad), 0o644)
	code, _, errOut := perchRun(t, defaultRegistry(), "validate", file)
	for _, want := range []string{
		file + ":26:34: steps[0].segment.match: traffic.alb cannot route this segment",
		file + ":27:14: steps[1].setFlag: no flags: block",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code != exitBadInput {
		t.Errorf("exit %d, want %d", code, exitBadInput)
	}
}

// TestCheckAccessReadsSegmentsAndFlags: validate --check-access reads the segments and each
// flag as a run would, and names an unreadable flag system at its line.
func TestCheckAccessReadsSegmentsAndFlags(t *testing.T) {
	fake := albtest.New()
	file := albFile(t, fake, "")
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:1") // the queries fail here, at once
	flagd := filepath.Join(t.TempDir(), "flags.json")
	os.WriteFile(flagd, []byte(flagsFile), 0o644)
	text, _ := os.ReadFile(file)
	with := strings.Replace(strings.Replace(string(text), "    ruleArn: \n", "", 1), "steps:\n", `steps:
  - segment: {name: employees, match: {header: {name: X-Employee, value: "true"}}}
  - setFlag: {flag: new-dashboard, percent: 20}
`, 1) + "flags: {flagd: {file: FLAGS}}\n"
	os.WriteFile(file, []byte(strings.Replace(with, "FLAGS", flagd, 1)), 0o644)
	_, out, _ := perchRun(t, defaultRegistry(), "validate", file, "--check-access")
	for _, want := range []string{"segments: 0 routed to canary now\n", "flag new-dashboard: readable, on for 15% of users\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	os.WriteFile(file, []byte(strings.Replace(with, "FLAGS", flagd+".missing", 1)), 0o644)
	code, _, errOut := perchRun(t, defaultRegistry(), "validate", file, "--check-access")
	if want := file + ":29:16: flags.flagd: flag new-dashboard: flagd: open " + flagd + ".missing: no such file or directory"; code != exitRuntime || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant %q", code, errOut, want)
	}
}
