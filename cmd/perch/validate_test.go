package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateReportsUnsetVariablesWhereWritten: validate expands the notify entries' ${NAME}
// references with this environment, as run does, and reports each unset one at the line and
// column of the value that names it (exit 2).
func TestValidateReportsUnsetVariablesWhereWritten(t *testing.T) {
	c := newCLI(t, &memBackend{})
	c.app.getenv = func(name string) string { return map[string]string{"HOOK_HOST": "hooks.example.com"}[name] }
	yaml := rolloutYAML + `notify:
  - slack: {webhookURL: "https://hooks.slack.com/services/${SLACK_PATH}"}
  - webhook:
      url: https://${HOOK_HOST}/perch
      headers:
        Authorization: "Bearer ${HOOK_TOKEN}"
`
	os.WriteFile(filepath.Join(c.dir, "env.yaml"), []byte(yaml), 0o644)
	code := c.run(t.Context(), "validate", "DIR/env.yaml")
	file := filepath.Join(c.dir, "env.yaml")
	for _, want := range []string{
		file + ":16:25: notify[0].slack.webhookURL: environment variable SLACK_PATH is not set",
		file + ":20:24: notify[1].webhook.headers.Authorization: environment variable HOOK_TOKEN is not set",
		"2 problem(s) in " + file,
	} {
		if !strings.Contains(c.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, c.stderr.String())
		}
	}
	if code != exitBadInput || strings.Contains(c.stdout.String(), "ok —") {
		t.Errorf("exit %d, stdout %q: want exit 2 and no ok", code, c.stdout.String())
	}
	c.app.getenv = func(name string) string {
		return map[string]string{"HOOK_HOST": "hooks.example.com", "SLACK_PATH": "T0/B0/x", "HOOK_TOKEN": "t"}[name]
	}
	if code := c.run(t.Context(), "validate", "DIR/env.yaml"); code != exitOK {
		t.Errorf("with every variable set: exit %d\n%s", code, c.stderr.String())
	}
}
