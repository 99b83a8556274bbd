package notify_test

import (
	"strings"
	"testing"
	"testing/synctest"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/notify"
)

func TestNewRefusesBadNotifyEntries(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cret-token", "NEWLINE": "a\r\nX-Evil: 1"}
	tests := []struct {
		name   string
		notify string
		want   string
	}{
		{"unset variable in a Slack URL", `[{slack: {webhookURL: "https://hooks.slack.com/services/${SLACK_TOKEN}"}}]`,
			"notify[0].slack.webhookURL: environment variable SLACK_TOKEN is not set"},
		{"unset variable in a header", `[{webhook: {url: "https://h.test/", headers: {Authorization: "Bearer ${HOOK_TOKEN}"}}}]`,
			"notify[0].webhook.headers.Authorization: environment variable HOOK_TOKEN is not set"},
		{"second entry", `[{webhook: {url: "https://h.test/"}}, {webhook: {url: "https://h.test/${NOPE}"}}]`,
			"notify[1].webhook.url: environment variable NOPE is not set"},
		{"unterminated reference", `[{webhook: {url: "https://h.test/${TOKEN"}}]`,
			`notify[0].webhook.url: "${TOKEN": ${ without a closing }`},
		{"empty name", `[{webhook: {url: "https://h.test/${}"}}]`,
			"notify[0].webhook.url: ${}: not a variable name (letters, digits and _, not starting with a digit)"},
		{"bad name", `[{webhook: {url: "https://h.test/${1TOKEN}"}}]`,
			"notify[0].webhook.url: ${1TOKEN}: not a variable name (letters, digits and _, not starting with a digit)"},
		{"not a URL once expanded", `[{slack: {webhookURL: "${TOKEN}"}}]`,
			"notify[0].slack.webhookURL: ${TOKEN} is not an http:// or https:// URL once expanded"},
		{"header value with a line break", `[{webhook: {url: "https://h.test/", headers: {X-Token: "${NEWLINE}"}}}]`,
			"notify[0].webhook.headers.X-Token: the value holds a line break once expanded"},
		{"bad header name", `[{webhook: {url: "https://h.test/", headers: {"X Token": "x"}}}]`,
			`notify[0].webhook.headers: "X Token" is not a valid header name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := parseSpec(t, rolloutYAML+"notify: "+tc.notify+"\n")
			_, err := notify.New(spec, func(name string) string { return env[name] }, notify.Options{})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestReferencesAreExpanded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		env := map[string]string{"HOST": "hooks.example.test", "A": "a/b", "T": "tok en"}
		spec := parseSpec(t, rolloutYAML+`notify:
  - webhook:
      url: "https://${HOST}/x/${A}/$B/cost$5/${T}"
      headers: {Authorization: "Bearer ${T}${T}", X-Literal: "$T"}
`)
		n, err := notify.New(spec, func(name string) string { return env[name] }, notify.Options{Client: net.client()})
		if err != nil {
			t.Fatal(err)
		}
		events := make(eventChan, 1)
		events <- pauses(1, 1)[0]
		close(events)
		n.Run(t.Context(), events, engine.State{})
		got := net.attempts("hooks.example.test")
		if len(got) != 1 {
			t.Fatalf("%d requests to the expanded host", len(got))
		}
		if got[0].path != "/x/a/b/$B/cost$5/tok en" {
			t.Errorf("path %q: want ${NAME} expanded and a lone $ kept", got[0].path)
		}
		if h := got[0].header; h.Get("Authorization") != "Bearer tok entok en" || h.Get("X-Literal") != "$T" {
			t.Errorf("headers %v", h)
		}
	})
}

// TestCheckListsEveryProblem: Check reports every field that cannot be used, each at its own
// path, where New stops at the first.
func TestCheckListsEveryProblem(t *testing.T) {
	spec := parseSpec(t, rolloutYAML+`notify:
  - slack: {webhookURL: "https://hooks.slack.com/services/${SLACK_TOKEN}"}
  - webhook:
      url: "https://h.test/${HOST_PATH}"
      headers: {X-B: "${B}", X-A: "${A}", X-Ok: "fine"}
`)
	var got []string
	for _, p := range notify.Check(spec, func(string) string { return "" }) {
		got = append(got, p.Error())
	}
	want := []string{
		"notify[0].slack.webhookURL: environment variable SLACK_TOKEN is not set",
		"notify[1].webhook.url: environment variable HOST_PATH is not set",
		"notify[1].webhook.headers.X-A: environment variable A is not set",
		"notify[1].webhook.headers.X-B: environment variable B is not set",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Check:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
