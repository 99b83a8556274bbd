package notify

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/envexpand"
)

// target is where one notify entry posts, with its environment references expanded.
type target struct {
	name    string // for messages about it: "notify[1] (webhook to hooks.example.com)"; never the URL, which may hold a token
	slack   bool
	url     string
	headers map[string]string
}

// Problem is a notify field that cannot be used as written (an unset ${NAME}, say), with the
// path where the rollout file wrote it. Its message never shows the value, which may hold a
// secret.
type Problem struct {
	Path string // as "notify[0].webhook.headers.Authorization"
	Msg  string
}

func (p Problem) Error() string { return p.Path + ": " + p.Msg }

// Check expands every notify entry with getenv as New does and returns every problem, in file
// order (headers by name), rather than stopping at the first.
func Check(spec *spec.Rollout, getenv func(string) string) []Problem {
	_, problems := targets(spec, getenv)
	return problems
}

// targets expands and checks every notify entry of the rollout file.
func targets(spec *spec.Rollout, getenv func(string) string) ([]target, []Problem) {
	var out []target
	var problems []Problem
	for i, n := range spec.Notify {
		path := fmt.Sprintf("notify[%d]", i)
		var t target
		var ps []Problem
		switch {
		case n.Slack != nil:
			t.slack = true
			t.url, ps = expandURL(path+".slack.webhookURL", n.Slack.WebhookURL, getenv)
		case n.Webhook != nil:
			t.url, ps = expandURL(path+".webhook.url", n.Webhook.URL, getenv)
			var hps []Problem
			t.headers, hps = expandHeaders(path+".webhook.headers", n.Webhook.Headers, getenv)
			ps = append(ps, hps...)
		default:
			ps = []Problem{{Path: path, Msg: "name exactly one of slack or webhook"}}
		}
		if len(ps) > 0 {
			problems = append(problems, ps...)
			continue
		}
		u, _ := url.Parse(t.url)
		kind := "webhook to " + u.Hostname()
		if t.slack {
			kind = "slack"
		}
		t.name = fmt.Sprintf("%s (%s)", path, kind)
		out = append(out, t)
	}
	return out, problems
}

func expandURL(path, raw string, getenv func(string) string) (string, []Problem) {
	v, err := envexpand.Expand(raw, getenv)
	if err != nil {
		return "", []Problem{{Path: path, Msg: err.Error()}}
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The value is not shown: it may hold a secret token.
		return "", []Problem{{Path: path, Msg: raw + " is not an http:// or https:// URL once expanded"}}
	}
	return v, nil
}

func expandHeaders(path string, headers map[string]string, getenv func(string) string) (map[string]string, []Problem) {
	out := make(map[string]string, len(headers))
	var problems []Problem
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		if !headerName.MatchString(name) {
			problems = append(problems, Problem{Path: path, Msg: fmt.Sprintf("%q is not a valid header name", name)})
			continue
		}
		v, err := envexpand.Expand(headers[name], getenv)
		switch {
		case err != nil:
			problems = append(problems, Problem{Path: path + "." + name, Msg: err.Error()})
		case strings.ContainsAny(v, "\r\n\x00"):
			problems = append(problems, Problem{Path: path + "." + name, Msg: "the value holds a line break once expanded"})
		default:
			out[name] = v
		}
	}
	return out, problems
}

var (
	headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$") // RFC 9110 token
)
