package spec

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/newrelic"
)

// Defaults of the analysis block.
const (
	DefaultInterval      = 30 * time.Second
	DefaultStabilization = time.Minute
	DefaultJudge         = "sequential"
	DefaultMaxOutage     = 5 * time.Minute
)

// Builtin check names and what they measure on the proxy.
const (
	BuiltinErrorRate  = "error_rate"
	BuiltinLatencyP50 = "latency_p50"
	BuiltinLatencyP95 = "latency_p95"
	BuiltinLatencyP99 = "latency_p99"
	BuiltinThroughput = "throughput"
	// BuiltinLatencyHistogram compares the whole latency distributions, a histogram check of
	// the proxy's sketch: no quantile is estimated on either side.
	BuiltinLatencyHistogram = "latency_histogram"
)

var builtinChecks = []string{BuiltinErrorRate, BuiltinLatencyP50, BuiltinLatencyP95, BuiltinLatencyP99, BuiltinThroughput, BuiltinLatencyHistogram}

// Validate applies defaults to a Rollout built in code (to fields left zero) and checks it as a
// file would be checked.
func (s *Rollout) Validate() error {
	d := newDecoder("rollout")
	if s.file != "" {
		d.File = s.file
	}
	if s.pos == nil {
		s.pos = d.Pos
	} else {
		d.Pos = s.pos
	}
	if s.origins != nil {
		d.Origins = s.origins
	}
	d.validate(s)
	return d.Err()
}

// Recheck validates a rollout perch itself wrote (a journal header), applying no defaults over
// its zeros: they were applied when the file was first loaded, and a zero there is deliberate.
func (s *Rollout) Recheck() error {
	d := newDecoder("journal header")
	d.checked = true
	s.pos = d.Pos
	d.validate(s)
	return d.Err()
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (d *decoder) validate(s *Rollout) {
	switch {
	case s.Name == "":
		d.Fail("name", "missing: give the rollout a name")
	case !namePattern.MatchString(s.Name):
		d.Fail("name", "%q: use letters, digits, '.', '_' and '-' only (it names journal files)", s.Name)
	}
	d.validateDependsOn(s)
	d.validateTraffic(s)
	d.validateMetrics(s)
	d.validateAnalysis(s)
	d.validateChecks(s)
	d.validateSteps(s)
	d.validateAlerts(s)
	d.validateNotify(s)
	d.validateFlags(s)
	d.validateSchedule(s)
	d.validateHooks(s)
}

// validateDependsOn checks what the file alone can tell: each entry is a rollout name, named
// once, and not the rollout itself. Whether the names exist, and form no cycle, depends on the
// other rollouts running beside it (engine/fleet checks that).
func (d *decoder) validateDependsOn(s *Rollout) {
	for i, dep := range s.DependsOn {
		p := fmt.Sprintf("dependsOn[%d]", i)
		switch {
		case dep == "":
			d.Fail(p, "missing: name the rollout this one waits for")
		case !namePattern.MatchString(dep):
			d.Fail(p, "%q is not a rollout name (letters, digits, '.', '_' and '-')", dep)
		case dep == s.Name:
			d.Fail(p, "%q is this rollout: a rollout cannot wait for itself", dep)
		case slices.Contains(s.DependsOn[:i], dep):
			d.Fail(p, "%q is named twice", dep)
		}
	}
}

func (d *decoder) validateAlerts(s *Rollout) {
	a := s.Alerts
	if a == nil {
		return
	}
	if d.required("alerts.listen", a.Listen) {
		_, _, err := net.SplitHostPort(a.Listen)
		switch {
		case err != nil:
			d.Fail("alerts.listen", "want HOST:PORT, got %q", a.Listen)
		case !a.Loopback() && !a.Authenticated() && !d.checked:
			// Anyone who reaches the port could roll the release back. A journal header is
			// exempt: it records a rollout that was already checked, perhaps by an older perch.
			d.Fail("alerts.listen", "%s is not a loopback address, so the receiver must authenticate "+
				"Alertmanager: set alerts.bearerToken or alerts.basicAuth (or tls.clientCA), or listen on 127.0.0.1", a.Listen)
		}
	}
	if a.BearerToken != "" && a.BasicAuth != nil {
		d.Fail(d.later("alerts.", []string{"bearerToken", "basicAuth"}), "set bearerToken or basicAuth, not both")
	}
	d.secret("alerts.bearerToken", a.BearerToken)
	if b := a.BasicAuth; b != nil {
		d.required("alerts.basicAuth.username", b.Username)
		if d.required("alerts.basicAuth.password", string(b.Password)) {
			d.secret("alerts.basicAuth.password", b.Password)
		}
	}
	if t := a.TLS; t != nil {
		d.required("alerts.tls.cert", t.Cert)
		d.required("alerts.tls.key", t.Key)
	}
	if len(a.RollbackOn) == 0 {
		d.Fail("alerts.rollbackOn", "missing: list the label sets of alerts that roll back (e.g. {alertname: HighErrorRate})")
	}
	for i, m := range a.RollbackOn {
		if len(m) == 0 {
			d.Fail(fmt.Sprintf("alerts.rollbackOn[%d]", i), "empty label set: it would match every alert")
		}
	}
}

// secret refuses the placeholder a journal records in place of a secret: a rollout carrying
// it came out of a journal, and the receiver would accept that well-known text as a password.
func (d *decoder) secret(path string, v Secret) {
	if v == RedactedSecret && !d.checked {
		d.Fail(path, "%q is what journals record in place of a secret; give the secret, or ${NAME} to read it from the environment", v)
	}
}

func (d *decoder) validateNotify(s *Rollout) {
	for i, n := range s.Notify {
		p := fmt.Sprintf("notify[%d]", i)
		switch {
		case (n.Slack == nil) == (n.Webhook == nil):
			d.Fail(p, "name exactly one of slack or webhook")
		case n.Slack != nil:
			d.notifyURL(p+".slack.webhookURL", n.Slack.WebhookURL)
		default:
			d.notifyURL(p+".webhook.url", n.Webhook.URL)
		}
	}
}

// notifyURL checks a notification URL unless it names environment variables, which are only
// known when the rollout runs.
func (d *decoder) notifyURL(path, value string) {
	if value != "" && strings.Contains(value, "${") {
		return
	}
	d.httpURL(path, value)
}

func (d *decoder) validateTraffic(s *Rollout) {
	t := s.Traffic
	var set []string
	for _, p := range []struct {
		name string
		on   bool
	}{{"alb", t.ALB != nil}, {"istio", t.Istio != nil}, {"gatewayAPI", t.GatewayAPI != nil}, {"proxy", t.Proxy != nil}} {
		if p.on {
			set = append(set, p.name)
		}
	}
	switch {
	case len(set) == 0:
		d.Fail("traffic", "missing: name exactly one provider (alb, istio, gatewayAPI or proxy)")
		return
	case len(set) > 1:
		d.Fail(d.later("traffic.", set), "only one traffic provider may be set (got %s)", strings.Join(set, " and "))
		return
	}
	switch {
	case t.ALB != nil:
		a, p := t.ALB, "traffic.alb"
		d.arn(p+".listenerArn", a.ListenerARN, ":listener/", true)
		d.arn(p+".ruleArn", a.RuleARN, ":listener-rule/", false)
		d.arn(p+".stableTargetGroupArn", a.StableTargetGroupARN, ":targetgroup/", true)
		d.arn(p+".canaryTargetGroupArn", a.CanaryTargetGroupARN, ":targetgroup/", true)
		if a.StableTargetGroupARN != "" && a.StableTargetGroupARN == a.CanaryTargetGroupARN {
			d.Fail(p+".canaryTargetGroupArn", "the canary target group is the stable one")
		}
		if a.Stickiness != nil {
			if dur := time.Duration(a.Stickiness.Duration); dur < time.Second || dur > 7*24*time.Hour {
				d.Fail(p+".stickiness.duration", "want 1s to 7d (the ALB's limits), got %s", a.Stickiness.Duration)
			}
		}
	case t.Istio != nil:
		v, p := t.Istio, "traffic.istio"
		d.required(p+".virtualService", v.VirtualService)
		d.required(p+".stable.host", v.Stable.Host)
		d.required(p+".canary.host", v.Canary.Host)
		if v.Stable.Host != "" && v.Stable == v.Canary {
			d.Fail(p+".canary", "the canary destination is the stable one")
		}
	case t.GatewayAPI != nil:
		g, p := t.GatewayAPI, "traffic.gatewayAPI"
		d.required(p+".httpRoute", g.HTTPRoute)
		d.required(p+".stableBackend", g.StableBackend)
		d.required(p+".canaryBackend", g.CanaryBackend)
		if g.StableBackend != "" && g.StableBackend == g.CanaryBackend {
			d.Fail(p+".canaryBackend", "the canary backend is the stable one")
		}
	case t.Proxy != nil && t.Proxy.Standalone():
		d.validateStandaloneProxy(t.Proxy)
	case t.Proxy != nil:
		x, p := t.Proxy, "traffic.proxy"
		if x.AdminToken != "" {
			d.Fail(p+".adminToken", "set without admin: the token is for a standalone proxy's admin API")
		}
		if d.required(p+".listen", x.Listen) {
			if _, _, err := net.SplitHostPort(x.Listen); err != nil {
				d.Fail(p+".listen", "want HOST:PORT, got %q", x.Listen)
			}
		}
		d.httpURL(p+".stable", x.Stable)
		d.httpURL(p+".canary", x.Canary)
		if x.Sticky != nil && (x.Sticky.Header == "") == (x.Sticky.Cookie == "") {
			d.Fail(p+".sticky", "name exactly one of header or cookie")
		}
		if x.Override != nil {
			d.required(p+".override.header", x.Override.Header)
			if !d.checked { // journals of older perch pinned without a token: they replay, unpinned
				d.required(p+".override.token", string(x.Override.Token))
			}
			d.secret(p+".override.token", x.Override.Token)
		}
		if x.Timeouts != nil {
			for _, tm := range []struct {
				name string
				d    Duration
			}{{"responseHeader", x.Timeouts.ResponseHeader}, {"idle", x.Timeouts.Idle}, {"body", x.Timeouts.Body}} {
				if tm.d < 0 {
					d.Fail(p+".timeouts."+tm.name, "want a positive duration, got %s", tm.d)
				}
			}
		}
		if x.MaxConnections < 0 {
			d.Fail(p+".maxConnections", "want a positive number, got %d", x.MaxConnections)
		}
	}
}

// validateStandaloneProxy checks the admin form of traffic.proxy: the admin API's address, and
// none of the settings of a proxy inside perch (the standalone proxy has them in its own file).
func (d *decoder) validateStandaloneProxy(x *ProxyTraffic) {
	p := "traffic.proxy"
	for _, f := range []struct {
		name string
		set  bool
	}{{"listen", x.Listen != ""}, {"stable", x.Stable != ""}, {"canary", x.Canary != ""}, {"sticky", x.Sticky != nil}, {"override", x.Override != nil},
		{"timeouts", x.Timeouts != nil}, {"maxConnections", x.MaxConnections != 0}} {
		if f.set {
			d.Fail(p+"."+f.name, "set with admin: a standalone proxy (perch proxy PROXY.yaml) has its %s in its own file; name either admin or listen, stable and canary", f.name)
		}
	}
	if strings.Contains(x.Admin, "${") {
		return // known when perch connects
	}
	u, err := url.Parse(x.Admin)
	switch {
	case err != nil || (u.Scheme != "unix" && u.Scheme != "http"):
		d.Fail(p+".admin", "want unix:///PATH or http://127.0.0.1:PORT, got %q", x.Admin)
	case u.Scheme == "unix" && (u.Host != "" || !strings.HasPrefix(u.Path, "/")):
		d.Fail(p+".admin", "want unix:///ABSOLUTE/PATH (three slashes), got %q", x.Admin)
	case u.Scheme == "http" && u.Port() == "":
		d.Fail(p+".admin", "want http://HOST:PORT, got %q", x.Admin)
	case u.Scheme == "http" && x.AdminToken == "":
		d.Fail(p+".adminToken", "missing: an HTTP admin API needs its token (adminToken: \"${PERCH_ADMIN_TOKEN}\")")
	}
}

// later is the path of whichever of the fields was written last in the file: the one to
// point at when only one may be set.
func (d *decoder) later(prefix string, fields []string) string {
	best := prefix + fields[len(fields)-1]
	for _, f := range fields {
		p, q := d.Pos[prefix+f], d.Pos[best]
		if p.Line > q.Line || p.Line == q.Line && p.Col > q.Col {
			best = prefix + f
		}
	}
	return best
}

func (d *decoder) required(path, value string) bool {
	if value == "" {
		d.Fail(path, "missing")
		return false
	}
	return true
}

func (d *decoder) arn(path, value, kind string, required bool) {
	if value == "" {
		if required {
			d.Fail(path, "missing")
		}
		return
	}
	if !strings.HasPrefix(value, "arn:") || !strings.Contains(value, kind) {
		d.Fail(path, "%q is not an ARN of a%s", value, strings.Trim(kind, ":/"))
	}
}

func (d *decoder) httpURL(path, value string) {
	if !d.required(path, value) {
		return
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.Fail(path, "want an http:// or https:// URL, got %q", value)
	}
}

func (d *decoder) validateMetrics(s *Rollout) {
	m := s.Metrics
	var set []string
	for _, p := range []struct {
		name string
		on   bool
	}{{"prometheus", m.Prometheus != nil}, {"cloudwatch", m.CloudWatch != nil}, {"builtin", m.Builtin != nil},
		{"datadog", m.Datadog != nil}, {"newRelic", m.NewRelic != nil}, {"web", m.Web != nil}} {
		if p.on {
			set = append(set, p.name)
		}
	}
	switch {
	case len(set) == 0:
		d.Fail("metrics", "missing: name exactly one source (prometheus, cloudwatch, builtin, datadog, newRelic or web)")
	case len(set) > 1:
		d.Fail(d.later("metrics.", set), "only one metrics source may be set (got %s)", strings.Join(set, " and "))
	case m.Prometheus != nil:
		d.httpURL("metrics.prometheus.address", m.Prometheus.Address)
	case m.CloudWatch != nil && !cloudWatchPeriod(time.Duration(s.Analysis.Interval)) && s.Analysis.Interval != 0:
		d.Fail("analysis.interval", "%s is not a CloudWatch period: with metrics.cloudwatch use 1s, 5s, 10s, 20s, 30s or whole minutes", s.Analysis.Interval)
	case m.Builtin != nil && s.Traffic.Proxy == nil && s.Traffic.Kind() != "":
		d.Fail("metrics.builtin", "the builtin source is the proxy's own observations: it needs traffic.proxy")
	default:
		d.validateHostedMetrics(s)
	}
}

func (d *decoder) validateAnalysis(s *Rollout) {
	a := &s.Analysis
	if !d.Written("analysis.interval") && a.Interval == 0 {
		a.Interval = Duration(DefaultInterval)
	}
	if !d.Written("analysis.stabilization") && a.Stabilization == 0 && !d.checked {
		a.Stabilization = Duration(DefaultStabilization)
	}
	if a.Judge == "" {
		a.Judge = DefaultJudge
	}
	if a.Inconclusive == "" {
		a.Inconclusive = InconclusiveHold
	}
	if !d.Written("analysis.maxOutage") && a.MaxOutage == 0 {
		a.MaxOutage = Duration(DefaultMaxOutage)
	}
	if a.MaxOutage <= 0 {
		d.Fail("analysis.maxOutage", "want a positive duration, got %s", a.MaxOutage)
	}
	switch {
	case a.Interval <= 0:
		d.Fail("analysis.interval", "want a positive duration, got %s", a.Interval)
	case d.floors && time.Duration(a.Interval) < MinInterval:
		d.Fail("analysis.interval", "%s is below the %s floor: each interval journals a look at every check", a.Interval, Duration(MinInterval))
	}
	if a.Stabilization < 0 {
		d.Fail("analysis.stabilization", "want zero or a positive duration, got %s", a.Stabilization)
	}
	if _, err := metrics.New(a.Judge, nil); err != nil {
		d.Fail("analysis.judge", "%v", err)
	}
	if a.Inconclusive != InconclusiveHold && a.Inconclusive != InconclusiveFail {
		d.Fail("analysis.inconclusive", "want hold or fail, got %q", a.Inconclusive)
	}
	if a.FailureLimit < 0 {
		d.Fail("analysis.failureLimit", "want zero or more, got %d", a.FailureLimit)
	}
}

func (d *decoder) validateChecks(s *Rollout) {
	names := map[string]string{}
	for i := range s.Checks {
		c := &s.Checks[i]
		p := fmt.Sprintf("checks[%d]", i)
		switch {
		case c.Name == "":
			d.Fail(p+".name", "missing: every check needs a name")
		case names[c.Name] != "":
			d.Fail(p+".name", "%q is already the name of %s", c.Name, names[c.Name])
		default:
			names[c.Name] = p
		}
		if c.Builtin != "" || s.Metrics.Builtin != nil {
			d.builtinCheck(s, c, p)
		} else {
			d.queryCheck(s, c, p)
			c.place()
		}
		switch c.Direction {
		case metrics.LowerIsBetter, metrics.HigherIsBetter:
		case "":
			d.Fail(p+".direction", "missing: lower_is_better or higher_is_better")
		default:
			d.Fail(p+".direction", "unknown direction %q (want lower_is_better or higher_is_better)", c.Direction)
		}
		switch {
		case c.MaxDeviationPercent == nil && c.MaxIncrease == nil:
			d.Fail(p, "no tolerance: set maxDeviationPercent, maxIncrease or both")
		case c.MaxDeviationPercent != nil && *c.MaxDeviationPercent < 0:
			d.Fail(p+".maxDeviationPercent", "want zero or more, got %v", *c.MaxDeviationPercent)
		case c.MaxIncrease != nil && *c.MaxIncrease < 0:
			d.Fail(p+".maxIncrease", "want zero or more, got %v", *c.MaxIncrease)
		}
		judge := c.Judge
		if judge == "" {
			judge = s.Analysis.Judge
		} else if _, err := metrics.New(judge, nil); err != nil {
			d.Fail(p+".judge", "%v", err)
			continue
		}
		if _, err := metrics.New(judge, c.JudgeOptions); err != nil && len(c.JudgeOptions) > 0 {
			d.Fail(p+".judgeOptions", "%s: %v", judge, err)
		}
		if c.IsHistogram() && judge != histogramJudge {
			at := p + ".judge"
			if c.Judge == "" {
				at = p + ".histogram"
				if c.Builtin != "" {
					at = p + ".builtin"
				}
			}
			d.Fail(at, "a histogram check needs the %s judge (%s judges sample values and counts, not histograms): set judge: %s on the check",
				histogramJudge, judge, histogramJudge)
		}
	}
}

// histogramJudge is the judge that compares histograms.
const histogramJudge = "sequential"

// builtinCheck fills in the proxy queries behind a builtin check.
func (d *decoder) builtinCheck(s *Rollout, c *Check, p string) {
	switch {
	case c.Builtin == "":
		d.Fail(p+".builtin", "missing: with metrics.builtin a check names a measure (%s)", strings.Join(builtinChecks, ", "))
		return
	case s.Metrics.Builtin == nil && s.Metrics.Kind() != "":
		d.Fail(p+".builtin", "needs metrics.builtin (the proxy's own observations)")
		return
	}
	given := *c
	side := func(measure string) (metrics.Query, metrics.Query) {
		return metrics.BuiltinQuery(measure, metrics.VersionCanary), metrics.BuiltinQuery(measure, metrics.VersionStable)
	}
	defaultDirection := metrics.LowerIsBetter
	switch c.Builtin {
	case BuiltinErrorRate:
		c.Events, c.Total = &QueryPair{}, &QueryPair{}
		c.Events.Canary, c.Events.Baseline = side(metrics.MeasureErrors)
		c.Total.Canary, c.Total.Baseline = side(metrics.MeasureRequests)
		if c.Unit == "" {
			c.Unit = "%"
		}
	case BuiltinLatencyP50, BuiltinLatencyP95, BuiltinLatencyP99:
		c.Canary, c.Baseline = side(c.Builtin)
		if c.Unit == "" {
			c.Unit = "s"
		}
	case BuiltinLatencyHistogram:
		c.Histogram = &QueryPair{}
		c.Histogram.Canary, c.Histogram.Baseline = side(metrics.MeasureLatencyHistogram)
		if c.Unit == "" {
			c.Unit = "s"
		}
	case BuiltinThroughput:
		c.Canary, c.Baseline = side(metrics.MeasureThroughput)
		defaultDirection = metrics.HigherIsBetter
		if c.Unit == "" {
			c.Unit = "req/s"
		}
	default:
		d.Fail(p+".builtin", "unknown measure %q (want one of %s)", c.Builtin, strings.Join(builtinChecks, ", "))
		return
	}
	if c.Direction == "" {
		c.Direction = defaultDirection
	}
	// A spec read back from a journal carries its expansion already; anything else is a mix-up.
	if !sameQueries(given, *c) && (!given.Canary.IsZero() || !given.Baseline.IsZero() || given.Events != nil || given.Total != nil || given.Histogram != nil) {
		d.Fail(p+".builtin", "a builtin check takes no canary, baseline, events, total or histogram queries")
	}
}

func sameQueries(a, b Check) bool {
	pair := func(p *QueryPair) QueryPair {
		if p == nil {
			return QueryPair{}
		}
		return *p
	}
	eq := func(x, y metrics.Query) bool { return x.Expr == y.Expr && x.Metric == nil && y.Metric == nil }
	ae, be, at, bt := pair(a.Events), pair(b.Events), pair(a.Total), pair(b.Total)
	ah, bh := pair(a.Histogram), pair(b.Histogram)
	return eq(a.Canary, b.Canary) && eq(a.Baseline, b.Baseline) &&
		eq(ae.Canary, be.Canary) && eq(ae.Baseline, be.Baseline) && eq(at.Canary, bt.Canary) && eq(at.Baseline, bt.Baseline) &&
		eq(ah.Canary, bh.Canary) && eq(ah.Baseline, bh.Baseline) &&
		(a.Events == nil) == (b.Events == nil) && (a.Histogram == nil) == (b.Histogram == nil)
}

func (d *decoder) queryCheck(s *Rollout, c *Check, p string) {
	hasSamples := !c.Canary.IsZero() || !c.Baseline.IsZero()
	switch {
	case c.Histogram != nil && (hasSamples || c.Events != nil || c.Total != nil):
		d.Fail(p+".histogram", "a check has one kind of query: a histogram, canary and baseline values, or events and total counts")
		return
	case c.Histogram != nil:
		d.histogramCheck(s, c, p+".histogram")
		return
	case hasSamples && (c.Events != nil || c.Total != nil):
		d.Fail(p, "give canary and baseline queries, or events and total counts, not both")
		return
	case c.Events != nil && c.Total == nil:
		d.Fail(p+".events", "events need total: the judge compares events out of total requests")
		return
	case c.Total != nil && c.Events == nil:
		d.Fail(p+".total", "total needs events: the judge compares events out of total requests")
		return
	case !hasSamples && c.Events == nil:
		d.Fail(p, "no queries: give canary and baseline, events and total, or histogram")
		return
	}
	pairs := map[string]*QueryPair{}
	if hasSamples {
		pairs[p] = &QueryPair{Canary: c.Canary, Baseline: c.Baseline}
	} else {
		pairs[p+".events"], pairs[p+".total"] = c.Events, c.Total
	}
	for at, pair := range pairs {
		d.checkQuery(s, at+".canary", pair.Canary)
		d.checkQuery(s, at+".baseline", pair.Baseline)
	}
}

// histogramCheck checks a histogram check's bucket query pair: a source that answers bucket
// queries, and a query for each side.
func (d *decoder) histogramCheck(s *Rollout, c *Check, p string) {
	if s.Metrics.CloudWatch != nil {
		d.Fail(p, "a histogram check needs a source that answers bucket queries (prometheus, or builtin's latency_histogram); CloudWatch has no buckets")
		return
	}
	d.checkQuery(s, p+".canary", c.Histogram.Canary)
	d.checkQuery(s, p+".baseline", c.Histogram.Baseline)
}

func (d *decoder) checkQuery(s *Rollout, path string, q metrics.Query) {
	switch {
	case q.IsZero():
		d.Fail(path, "missing query")
	case q.Metric != nil && s.Metrics.CloudWatch == nil:
		d.Fail(path, "a CloudWatch metric needs metrics.cloudwatch")
	case q.Metric != nil && (q.Metric.Namespace == "" || q.Metric.MetricName == "" || q.Metric.Stat == ""):
		d.Fail(path, "a CloudWatch metric needs namespace, metricName and stat")
	case s.Metrics.NewRelic != nil && newrelic.CheckQuery(q.Expr) != "":
		d.Fail(path, "%s", newrelic.CheckQuery(q.Expr))
	}
}

func (d *decoder) validateSteps(s *Rollout) {
	if len(s.Steps) == 0 {
		d.Fail("steps", "missing: a rollout needs at least one step")
		return
	}
	last, lastPath := 0, ""
	segments := map[string]string{}
	for i, st := range s.Steps {
		p := fmt.Sprintf("steps[%d]", i)
		var kinds []string
		for _, k := range []struct {
			name string
			on   bool
		}{{"setWeight", st.SetWeight != nil}, {"pause", st.Pause != nil}, {"segment", st.Segment != nil}, {"setFlag", st.SetFlag != nil}} {
			if k.on {
				kinds = append(kinds, k.name)
			}
		}
		switch {
		case len(kinds) == 2 && st.SetWeight != nil && st.Pause != nil:
			d.Fail(p, "a step either sets a weight or pauses, not both")
			continue
		case len(kinds) > 1:
			d.Fail(p, "a step does one thing: it sets a weight, pauses, sets a segment or sets a flag (got %s)", strings.Join(kinds, " and "))
			continue
		case len(kinds) == 0:
			d.Fail(p, "empty step: give setWeight, pause, segment or setFlag")
			continue
		case st.Segment != nil || st.SetFlag != nil:
			d.validateStrategyStep(s, st, p, segments)
			d.validateAnalyze(s, st, p)
			continue
		case st.Pause != nil:
			if d.Written(p+".analyze") || st.Analyze != 0 {
				d.Fail(p+".analyze", "a pause step does not analyze; put analyze on a setWeight step")
			}
			if (d.Written(p+".pause.duration") || st.Pause.Duration != 0) && st.Pause.Duration <= 0 {
				d.Fail(p+".pause.duration", "want a positive duration, got %s", st.Pause.Duration)
			}
			continue
		}
		w := *st.SetWeight
		switch {
		case w < 1 || w > 100:
			d.Fail(p+".setWeight", "weight %d is outside 1..100", w)
		case w <= last:
			d.Fail(p+".setWeight", "weight %d must be greater than %d set at %s", w, last, lastPath)
		default:
			last, lastPath = w, p
		}
		d.validateAnalyze(s, st, p)
	}
}

// validateAnalyze checks a step's analyze, if it has one.
func (d *decoder) validateAnalyze(s *Rollout, st Step, p string) {
	if !d.Written(p+".analyze") && st.Analyze == 0 {
		return
	}
	switch {
	case st.Analyze <= 0:
		d.Fail(p+".analyze", "want a positive duration, got %s", st.Analyze)
	case st.Analyze < s.Analysis.Interval:
		d.Fail(p+".analyze", "%s is shorter than analysis.interval (%s): no sample would be taken", st.Analyze, s.Analysis.Interval)
	case len(s.Checks) == 0 && !d.Bad["checks"]: // checks that could not be read were reported
		d.Fail(p+".analyze", "nothing to analyze: the rollout has no checks")
	}
}

// cloudWatchPeriod reports whether d is a period GetMetricData accepts.
func cloudWatchPeriod(d time.Duration) bool {
	switch d {
	case time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second:
		return true
	}
	return d > 0 && d%time.Minute == 0
}
