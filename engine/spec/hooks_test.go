package spec_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/engine/spec"
)

// hooked is the rollout file additions' example of hooks.
const hooked = `name: checkout
traffic:
  proxy: {admin: unix:///run/perch/checkout.sock}
metrics: {builtin: {}}
steps:
  - setWeight: 10
hooks:
  - on: before-step
    webhook: {url: "https://ci.example/smoke?weight={{.Weight}}", headers: {Authorization: "Bearer ${CI_TOKEN}"}, timeout: 2m}
    onFailure: hold
  - on: before-step
    exec: {command: ["./smoke.sh", "{{.Weight}}"], timeout: 2m}
  - on: during-step
    loadTest: {url: http://checkout-canary:8080/health, rps: 20}
  - on: after-promote
    exec: {command: [./notify.sh]}
`

func TestHooksParse(t *testing.T) {
	r, err := spec.Parse("checkout.yaml", []byte(hooked))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Hooks) != 4 {
		t.Fatalf("hooks %+v", r.Hooks)
	}
	h := r.Hooks
	if h[0].Kind() != "webhook" || h[0].Webhook.Headers["Authorization"] != "Bearer ${CI_TOKEN}" || h[0].Timeout() != 2*time.Minute || h[0].OnFailure != spec.HookHold {
		t.Errorf("webhook %+v", h[0])
	}
	if h[1].Kind() != "exec" || h[1].OnFailure != spec.HookHold || h[1].Target() != "smoke.sh" {
		t.Errorf("exec %+v: onFailure defaults to hold", h[1])
	}
	if h[2].Kind() != "loadTest" || h[2].LoadTest.RPS != 20 || time.Duration(h[2].LoadTest.Timeout) != spec.DefaultLoadTimeout {
		t.Errorf("loadTest %+v", h[2].LoadTest)
	}
	if h[3].Timeout() != spec.DefaultHookTimeout || h[3].OnFailure != "" {
		t.Errorf("after-promote %+v: default timeout, no onFailure", h[3])
	}
	if got := r.HooksAt(spec.HookBeforeStep); len(got) != 2 || got[1] != 1 {
		t.Errorf("HooksAt(before-step) = %v", got)
	}
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

func TestHookExpand(t *testing.T) {
	v := spec.HookVars{Rollout: "checkout", Step: 2, Weight: 10, Canary: "v2 &x=/y"}
	got, err := v.Expand("https://ci.example/{{.Canary}}/smoke?c={{.Canary}}&w={{.Weight}}&s={{.Step}}&r={{.Rollout}}", true)
	if err != nil || got != "https://ci.example/v2%20%26x%3D%2Fy/smoke?c=v2%20%26x%3D%2Fy&w=10&s=2&r=checkout" {
		t.Errorf("Expand = %q, %v", got, err)
	}
	if got, _ := v.Expand("{{.Canary}}", false); got != "v2 &x=/y" {
		t.Errorf("an argument is not escaped: %q", got)
	}
	if _, err := v.Expand("{{.Wieght}}", false); err == nil {
		t.Error("a misspelled value expands")
	}
}

func TestHookErrors(t *testing.T) {
	tests := []struct {
		name, old, new string
		line, col      int
		msg            string
	}{
		{"unknown on", "on: after-promote", "on: after-promotion", 15, 9, `hooks[3].on: "after-promotion": want before-rollout`},
		{"no on", "  - on: after-promote\n    exec", "  - exec", 15, 5, "hooks[3].on: missing"},
		{"template does not parse", `weight={{.Weight}}`, `weight={{.Weight}`, 9, 20, "hooks[0].webhook.url: template:"},
		{"unknown template value", `"{{.Weight}}"]`, `"{{.Wieght}}"]`, 12, 36, `hooks[1].exec.command[1]: template:`},
		{"rps over the cap", "rps: 20", "rps: 5000", 14, 62, "hooks[2].loadTest.rps: want 1 to 1000 requests a second, got 5000"},
		{"rps zero", "rps: 20", "rps: 0", 14, 62, "hooks[2].loadTest.rps: want 1 to 1000"},
		{"two kinds", "    exec: {command: [./notify.sh]}\n", "    exec: {command: [./notify.sh]}\n    webhook: {url: https://x.example}\n", 17, 14,
			"hooks[3].webhook: give exactly one of webhook, exec or loadTest (got webhook and exec)"},
		{"no kind", "    exec: {command: [./notify.sh]}\n", "", 15, 5, "hooks[3]: give exactly one of webhook, exec or loadTest"},
		{"loadTest before a step", "on: during-step", "on: before-step", 14, 15, "hooks[2].loadTest: a load test runs during a step: set on: during-step"},
		{"exec during a step", "on: after-promote", "on: during-step", 15, 9, "hooks[3].on: during-step takes a loadTest"},
		{"bad onFailure", "onFailure: hold", "onFailure: retry", 10, 16, `hooks[0].onFailure: want hold or rollback, got "retry"`},
		{"onFailure on an after hook", "    exec: {command: [./notify.sh]}\n", "    exec: {command: [./notify.sh]}\n    onFailure: rollback\n", 17, 16, "hooks[3].onFailure: only before-rollout and before-step hooks gate"},
		{"no command", "command: [./notify.sh]", "command: []", 16, 21, "hooks[3].exec.command: missing"},
		{"timeout too long", "timeout: 2m}\n    onFailure", "timeout: 2h}\n    onFailure", 9, 124, "hooks[0].webhook.timeout: want a positive duration up to 1h, got 2h"},
		{"not a URL", "url: http://checkout-canary:8080/health", "url: checkout-canary:8080/health", 14, 21, "hooks[2].loadTest.url: want an http:// or https:// URL"},
		{"header with a line break", `Authorization: "Bearer ${CI_TOKEN}"`, `Authorization: "Bearer\nX-Evil: 1"`, 9, 92, "hooks[0].webhook.headers.Authorization: a header may not hold a line break"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(hooked, tc.old) {
				t.Fatalf("edit %q does not apply", tc.old)
			}
			_, err := spec.Parse("checkout.yaml", []byte(strings.Replace(hooked, tc.old, tc.new, 1)))
			wantError(t, err, "checkout.yaml", tc.line, tc.col, tc.msg)
		})
	}
}
