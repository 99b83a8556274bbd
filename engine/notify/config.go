package notify

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/envvar"
)

// target is where one notify entry posts, with its environment references expanded.
type target struct {
	name    string // for messages about it: "notify[1] (webhook to hooks.example.com)"; never the URL, which may hold a token
	slack   bool
	url     string
	headers map[string]string
}

// targets expands and checks every notify entry of the rollout file.
func targets(spec *spec.Rollout, getenv func(string) string) ([]target, error) {
	var out []target
	for i, n := range spec.Notify {
		path := fmt.Sprintf("notify[%d]", i)
		var t target
		var err error
		switch {
		case n.Slack != nil:
			t.slack = true
			t.url, err = expandURL(path+".slack.webhookURL", n.Slack.WebhookURL, getenv)
		case n.Webhook != nil:
			t.url, err = expandURL(path+".webhook.url", n.Webhook.URL, getenv)
			if err == nil {
				t.headers, err = expandHeaders(path+".webhook.headers", n.Webhook.Headers, getenv)
			}
		default:
			err = fmt.Errorf("%s: name exactly one of slack or webhook", path)
		}
		if err != nil {
			return nil, err
		}
		u, _ := url.Parse(t.url)
		kind := "webhook to " + u.Hostname()
		if t.slack {
			kind = "slack"
		}
		t.name = fmt.Sprintf("%s (%s)", path, kind)
		out = append(out, t)
	}
	return out, nil
}

func expandURL(path, raw string, getenv func(string) string) (string, error) {
	v, err := envvar.Expand(raw, getenv)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The value is not shown: it may hold a secret token.
		return "", fmt.Errorf("%s: %s is not an http:// or https:// URL once expanded", path, raw)
	}
	return v, nil
}

func expandHeaders(path string, headers map[string]string, getenv func(string) string) (map[string]string, error) {
	out := make(map[string]string, len(headers))
	for name, raw := range headers {
		if !headerName.MatchString(name) {
			return nil, fmt.Errorf("%s: %q is not a valid header name", path, name)
		}
		v, err := envvar.Expand(raw, getenv)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", path, name, err)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("%s.%s: the value holds a line break once expanded", path, name)
		}
		out[name] = v
	}
	return out, nil
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$") // RFC 9110 token
