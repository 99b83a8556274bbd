package spec

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/perchhq/perch/internal/jsonpath"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/web"
)

// place records in each of the check's queries where it is written (the check and the side),
// for sources that ask by name.
func (c *Check) place() {
	mark := func(q *metrics.Query, side string) { q.Check, q.Side = c.Name, side }
	mark(&c.Canary, "canary")
	mark(&c.Baseline, "baseline")
	for _, p := range []*QueryPair{c.Events, c.Total} {
		if p != nil {
			mark(&p.Canary, "canary")
			mark(&p.Baseline, "baseline")
		}
	}
}

// validateHostedMetrics checks the datadog, newRelic and web blocks.
func (d *decoder) validateHostedMetrics(s *Rollout) {
	m := s.Metrics
	switch {
	case m.Datadog != nil:
		dd, p := m.Datadog, "metrics.datadog"
		if strings.ContainsAny(dd.Site, "/:") {
			d.Fail(p+".site", "%q: want a site name such as datadoghq.com or datadoghq.eu; an endpoint goes in address", dd.Site)
		}
		d.key(p+".apiKey", dd.APIKey)
		d.key(p+".appKey", dd.AppKey)
		d.flagURL(p+".address", dd.Address, false)
	case m.NewRelic != nil:
		nr, p := m.NewRelic, "metrics.newRelic"
		if nr.AccountID <= 0 {
			d.Fail(p+".accountId", "missing: the New Relic account's id (a positive number)")
		}
		d.key(p+".apiKey", nr.APIKey)
		if nr.Region != "" && nr.Region != "US" && nr.Region != "EU" {
			d.Fail(p+".region", "want US or EU, got %q", nr.Region)
		}
		d.flagURL(p+".address", nr.Address, false)
		if iv := time.Duration(s.Analysis.Interval); iv%time.Second != 0 {
			d.Fail("analysis.interval", "%s: with metrics.newRelic the interval is a TIMESERIES bucket, whole seconds", s.Analysis.Interval)
		}
	case m.Web != nil:
		w, p := m.Web, "metrics.web"
		if d.required(p+".url", w.URL) {
			d.webURL(p+".url", w.URL)
		}
		if d.required(p+".jsonPath", w.JSONPath) {
			if _, err := jsonpath.Parse(w.JSONPath); err != nil {
				d.Fail(p+".jsonPath", "%v", err)
			}
		}
		for name, v := range w.Headers {
			d.secret(p+".headers."+name, v)
		}
		d.flagURL(p+".address", w.Address, false)
	}
}

// key checks a hosted source's credential: present, and not a journal's placeholder.
func (d *decoder) key(path string, v Secret) {
	if d.required(path, string(v)) {
		d.secret(path, v)
	}
}

// envRef matches a ${NAME} reference.
var envRef = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)

// webURL checks a web source's URL template: it parses, names only the fields perch fills in,
// and makes an http(s) URL. ${NAME} references stand for text known when perch connects.
func (d *decoder) webURL(path, text string) {
	tmpl, err := web.ParseURL(envRef.ReplaceAllString(text, "x"))
	if err != nil {
		d.Fail(path, "%v", err)
		return
	}
	var b strings.Builder
	if tmpl.Execute(&b, struct{ Check, Side, Query, Start, End string }{"c", "canary", "q", "0", "1"}) != nil {
		return
	}
	if strings.Contains(text, "${") && !strings.Contains(strings.SplitN(text, "?", 2)[0], "://") {
		return
	}
	if u, err := url.Parse(b.String()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.Fail(path, "want an http:// or https:// URL template, got %q", text)
	}
}
