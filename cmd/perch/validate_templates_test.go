package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const exampleRollout = "../../engine/spec/testdata/templates/checkout.yaml"

// TestValidateShowsExpandedChecks: validate names the checks a template gave and marks dry
// runs.
func TestValidateShowsExpandedChecks(t *testing.T) {
	code, out, errOut := perchRun(t, defaultRegistry(), "validate", exampleRollout)
	want := "checks: checkout-p99-latency (from golden-signals), checkout-errors (from golden-signals), conversion (dry run)"
	if code != exitOK || !strings.Contains(out, want) {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant the line %q", code, out, errOut, want)
	}
}

// TestValidateMissingTemplateArgument: a use without an argument its template needs is a
// problem in the file, said at the use and at the template's line, exit 2.
func TestValidateMissingTemplateArgument(t *testing.T) {
	rollout, err := os.ReadFile(exampleRollout)
	if err != nil {
		t.Fatal(err)
	}
	template, err := os.ReadFile("../../engine/spec/testdata/templates/checks/golden-signals.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if err := os.Mkdir("checks", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("checks", "golden-signals.yaml"), template, 0o644); err != nil {
		t.Fatal(err)
	}
	rollout = []byte(strings.Replace(string(rollout), "service: checkout, ", "", 1))
	if err := os.WriteFile("checkout.yaml", rollout, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := perchRun(t, defaultRegistry(), "validate", "checkout.yaml")
	want := "checkout.yaml:10:10: checks[0].use: golden-signals: missing argument service (used at checks/golden-signals.yaml:5:11)"
	if code != exitBadInput || !strings.Contains(errOut, want) {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant %q", code, out, errOut, want)
	}
}
