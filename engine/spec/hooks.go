package spec

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// HookOn is the moment of a rollout a hook runs at.
type HookOn string

// The moments hooks run at. Before-* hooks gate: the rollout goes on only once they pass.
const (
	HookBeforeRollout HookOn = "before-rollout" // once per attempt, before the first step that changes traffic
	HookBeforeStep    HookOn = "before-step"    // before each step that changes traffic, before it changes it
	HookDuringStep    HookOn = "during-step"    // while a step's traffic is in place (loadTest only)
	HookAfterStep     HookOn = "after-step"     // once a step has passed
	HookAfterPromote  HookOn = "after-promote"  // once the canary has all traffic
	HookAfterRollback HookOn = "after-rollback" // once the stable has all traffic
)

// HookOns lists every moment, in the order a rollout meets them.
var HookOns = []HookOn{HookBeforeRollout, HookBeforeStep, HookDuringStep, HookAfterStep, HookAfterPromote, HookAfterRollback}

// Gates reports whether a failing hook at this moment holds or rolls back the rollout.
func (o HookOn) Gates() bool { return o == HookBeforeRollout || o == HookBeforeStep }

// HookFailure is what a failing before-* hook does to the rollout.
type HookFailure string

// The two actions on a failing gate.
const (
	HookHold     HookFailure = "hold"
	HookRollback HookFailure = "rollback"
)

// Limits of hooks.
const (
	DefaultHookTimeout = time.Minute
	MaxHookTimeout     = time.Hour
	MaxLoadRPS         = 1000
	DefaultLoadTimeout = 10 * time.Second // one load-test request
)

// Hook is one thing perch runs at a moment of the rollout: a webhook, a command, or (during a
// step) a load test. Exactly one of Webhook, Exec and LoadTest is set.
type Hook struct {
	On       HookOn        `yaml:"on" json:"on"`
	Webhook  *WebhookHook  `yaml:"webhook" json:"webhook,omitempty"`
	Exec     *ExecHook     `yaml:"exec" json:"exec,omitempty"`
	LoadTest *LoadTestHook `yaml:"loadTest" json:"loadTest,omitempty"`
	// OnFailure is what a failing before-* hook does: hold (the default) or rollback.
	OnFailure HookFailure `yaml:"onFailure" json:"onFailure,omitempty"`
}

// WebhookHook POSTs a JSON document describing the rollout and step to URL; a 2xx answer
// passes. URL is a template ({{.Weight}}…, each value URL-escaped); URL and header values may
// name environment variables as ${NAME}.
type WebhookHook struct {
	URL     string            `yaml:"url" json:"url"`
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	Timeout Duration          `yaml:"timeout" json:"timeout"`
}

// ExecHook runs a command (never through a shell); exit status 0 passes. Each argument is a
// template ({{.Weight}}…).
type ExecHook struct {
	Command []string `yaml:"command" json:"command"`
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// LoadTestHook sends RPS GET requests a second to URL while a step's traffic is in place.
type LoadTestHook struct {
	URL string `yaml:"url" json:"url"`
	RPS int    `yaml:"rps" json:"rps"`
	// Timeout bounds each request (DefaultLoadTimeout when absent).
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// Kind is "webhook", "exec" or "loadTest" (or "" when none is set).
func (h Hook) Kind() string {
	switch {
	case h.Webhook != nil:
		return "webhook"
	case h.Exec != nil:
		return "exec"
	case h.LoadTest != nil:
		return "loadTest"
	}
	return ""
}

// Timeout is how long the hook may run (a load test runs until its step ends).
func (h Hook) Timeout() time.Duration {
	switch {
	case h.Webhook != nil:
		return time.Duration(h.Webhook.Timeout)
	case h.Exec != nil:
		return time.Duration(h.Exec.Timeout)
	}
	return 0
}

// Target names what the hook calls, for people: the command's program, or the URL's host and
// path (never its query, which may hold a secret).
func (h Hook) Target() string {
	raw := ""
	switch {
	case h.Exec != nil && len(h.Exec.Command) > 0:
		return filepath.Base(h.Exec.Command[0])
	case h.Webhook != nil:
		raw = h.Webhook.URL
	case h.LoadTest != nil:
		raw = h.LoadTest.URL
	}
	if u, err := url.Parse(raw); err == nil && u.Host != "" && !strings.Contains(u.Host, "${") {
		return u.Host + u.Path
	}
	return "(url)"
}

// HookVars are the values a hook's templates are filled with.
type HookVars struct {
	Rollout string // the rollout's name
	Step    int    // the step's number, 1 for the first
	Weight  int    // the canary's weight at the step (0 after a rollback, 100 after promotion)
	Canary  string // the canary's identity (its version, else commit, else image), or ""
}

// Env is the variables an exec hook gets beside perch's own environment.
func (v HookVars) Env() []string {
	return []string{"PERCH_ROLLOUT=" + v.Rollout, "PERCH_STEP=" + strconv.Itoa(v.Step), "PERCH_WEIGHT=" + strconv.Itoa(v.Weight),
		"PERCH_CANARY=" + v.Canary}
}

// Expand fills text's template ({{.Rollout}}, {{.Step}}, {{.Weight}}, {{.Canary}}) with v;
// with inURL each value is escaped so it cannot change the URL's shape (a "/" or "&" in a
// canary's name stays data).
func (v HookVars) Expand(text string, inURL bool) (string, error) {
	t, err := parseHookTemplate(text)
	if err != nil {
		return "", err
	}
	data := map[string]string{"Rollout": v.Rollout, "Step": strconv.Itoa(v.Step), "Weight": strconv.Itoa(v.Weight), "Canary": v.Canary}
	if inURL {
		for k, s := range data {
			data[k] = strings.ReplaceAll(url.QueryEscape(s), "+", "%20") // valid in a path and a query alike
		}
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

func parseHookTemplate(text string) (*template.Template, error) {
	return template.New("hook").Option("missingkey=error").Parse(text)
}

// HooksAt is the rollout's hooks at moment on, by their index in the file's hooks list.
func (s *Rollout) HooksAt(on HookOn) []int {
	var out []int
	for i, h := range s.Hooks {
		if h.On == on {
			out = append(out, i)
		}
	}
	return out
}

func (d *decoder) validateHooks(s *Rollout) {
	sample := HookVars{Rollout: s.Name, Step: 1, Weight: 1, Canary: s.Canary.Short()}
	for i := range s.Hooks {
		h := &s.Hooks[i]
		p := fmt.Sprintf("hooks[%d]", i)
		known := false
		for _, on := range HookOns {
			known = known || h.On == on
		}
		switch {
		case h.On == "":
			d.Fail(p+".on", "missing: give before-rollout, before-step, during-step, after-step, after-promote or after-rollback")
		case !known:
			d.Fail(p+".on", "%q: want before-rollout, before-step, during-step, after-step, after-promote or after-rollback", h.On)
		}
		var kinds []string
		for _, k := range []struct {
			name string
			on   bool
		}{{"webhook", h.Webhook != nil}, {"exec", h.Exec != nil}, {"loadTest", h.LoadTest != nil}} {
			if k.on {
				kinds = append(kinds, k.name)
			}
		}
		switch {
		case len(kinds) == 0:
			d.Fail(p, "give exactly one of webhook, exec or loadTest")
			continue
		case len(kinds) > 1:
			d.Fail(d.later(p+".", kinds), "give exactly one of webhook, exec or loadTest (got %s)", strings.Join(kinds, " and "))
			continue
		}
		switch {
		case h.LoadTest != nil && known && h.On != HookDuringStep:
			d.Fail(p+".loadTest", "a load test runs during a step: set on: during-step")
		case h.LoadTest == nil && h.On == HookDuringStep:
			d.Fail(p+".on", "during-step takes a loadTest; a webhook or exec runs before-step or after-step")
		}
		switch h.OnFailure {
		case "":
			if h.On.Gates() && !d.checked {
				h.OnFailure = HookHold
			}
		case HookHold, HookRollback:
			if known && !h.On.Gates() {
				d.Fail(p+".onFailure", "only before-rollout and before-step hooks gate; a failing %s hook is journaled and notified", h.On)
			}
		default:
			d.Fail(p+".onFailure", "want hold or rollback, got %q", h.OnFailure)
		}
		switch {
		case h.Webhook != nil:
			w := h.Webhook
			d.hookTimeout(p+".webhook.timeout", &w.Timeout)
			if d.hookTemplate(p+".webhook.url", w.URL, sample, true) && !strings.Contains(w.URL, "${") {
				u, _ := sample.Expand(w.URL, true)
				d.httpURL(p+".webhook.url", u)
			}
			for name, v := range w.Headers {
				if strings.ContainsAny(name+v, "\r\n") {
					d.Fail(p+".webhook.headers."+name, "a header may not hold a line break")
				}
			}
		case h.Exec != nil:
			x := h.Exec
			d.hookTimeout(p+".exec.timeout", &x.Timeout)
			if len(x.Command) == 0 || x.Command[0] == "" {
				d.Fail(p+".exec.command", "missing: give the program and its arguments as a list (it is not run through a shell)")
			}
			for j, arg := range x.Command {
				d.hookTemplate(fmt.Sprintf("%s.exec.command[%d]", p, j), arg, sample, false)
			}
		case h.LoadTest != nil:
			l := h.LoadTest
			if d.hookTemplate(p+".loadTest.url", l.URL, sample, true) {
				u, _ := sample.Expand(l.URL, true)
				d.httpURL(p+".loadTest.url", u)
			}
			if l.RPS < 1 || l.RPS > MaxLoadRPS {
				d.Fail(p+".loadTest.rps", "want 1 to %d requests a second, got %d", MaxLoadRPS, l.RPS)
			}
			if !d.Written(p+".loadTest.timeout") && l.Timeout == 0 && !d.checked {
				l.Timeout = Duration(DefaultLoadTimeout)
			}
			if l.Timeout <= 0 || time.Duration(l.Timeout) > time.Minute {
				d.Fail(p+".loadTest.timeout", "want a positive duration up to 1m, got %s", l.Timeout)
			}
		}
	}
}

func (d *decoder) hookTimeout(path string, t *Duration) {
	if !d.Written(path) && *t == 0 && !d.checked {
		*t = Duration(DefaultHookTimeout)
	}
	if *t <= 0 || time.Duration(*t) > MaxHookTimeout {
		d.Fail(path, "want a positive duration up to %s, got %s", Duration(MaxHookTimeout), *t)
	}
}

// hookTemplate checks that text parses as a template and fills with the hook's values (a
// misspelled {{.Wieght}} is found here, not at the step it would run at).
func (d *decoder) hookTemplate(path, text string, sample HookVars, inURL bool) bool {
	if !d.required(path, text) {
		return false
	}
	if _, err := parseHookTemplate(text); err != nil {
		d.Fail(path, "template: %v", strings.TrimPrefix(err.Error(), "template: hook:"))
		return false
	}
	if _, err := sample.Expand(text, inURL); err != nil {
		d.Fail(path, "template: %v (it may use {{.Rollout}}, {{.Step}}, {{.Weight}} and {{.Canary}})", strings.TrimPrefix(err.Error(), "template: hook:"))
		return false
	}
	return true
}
