// Package spec is the rollout file: its schema, the defaults it leaves out, and loading it
// from YAML with every problem reported at its FILE:LINE:COL. The engine runs what it holds;
// journals carry it in their header.
package spec

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/perchhq/perch/engine/schedule"
	"github.com/perchhq/perch/internal/envexpand"
	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/internal/yamlpos"
	"github.com/perchhq/perch/metrics"
)

// Rollout is a rollout file: where traffic goes, where metrics come from, how they are judged
// and the steps of the rollout. Load one with Load or Parse, which apply defaults and validate
// it; a Rollout built by hand should go through Validate.
type Rollout struct {
	Name string `yaml:"name" json:"name"`
	// Templates are the directories check templates are looked up in (see Check templates in
	// the package's templates.go); the checks that used one are expanded when the file is read,
	// so journals record plain checks and not these.
	Templates []string `yaml:"templates" json:"-"`
	// DependsOn names the rollouts that must promote before this one starts, when several run
	// in one perch (a wave: one region after another). Empty: it starts at once.
	DependsOn []string `yaml:"dependsOn" json:"dependsOn,omitempty"`
	// Canary says what is being released, for people (optional).
	Canary   *Canary  `yaml:"canary" json:"canary,omitempty"`
	Traffic  Traffic  `yaml:"traffic" json:"traffic"`
	Metrics  Metrics  `yaml:"metrics" json:"metrics"`
	Analysis Analysis `yaml:"analysis" json:"analysis"`
	Checks   []Check  `yaml:"checks" json:"checks"`
	Steps    []Step   `yaml:"steps" json:"steps"`
	Alerts   *Alerts  `yaml:"alerts" json:"alerts,omitempty"`
	Notify   []Notify `yaml:"notify" json:"notify,omitempty"`
	// Schedule holds the steps' advances to release windows; nil: any time.
	Schedule *schedule.Config `yaml:"schedule" json:"schedule,omitempty"`
	// Flags is the feature-flag system setFlag steps set flags in.
	Flags *Flags `yaml:"flags" json:"flags,omitempty"`
	// Hooks are webhooks and commands run before and after steps, and load tests during them.
	Hooks []Hook `yaml:"hooks" json:"hooks,omitempty"`

	file string                 // the file it was read from, for messages
	pos  map[string]yamlpos.Pos // where each field was written, by path ("checks[1].name")
	// origins are the parts written in another file (a template's checks), by path.
	origins map[string]yamlpos.Origin
	// templateOf names the template each check that came from one used, by index.
	templateOf map[int]string
}

// CheckTemplate is the name of the template check i came from, or "" for a check written in
// the rollout file itself.
func (s *Rollout) CheckTemplate(i int) string { return s.templateOf[i] }

// Canary is the identity of the version being released: shown in the TUI's header, in the
// rollout_started line of the event log and headless output, in perch status and in
// notifications, and kept in the journal's header with the rest of the file. Every field is
// optional and changes nothing about how the rollout runs.
type Canary struct {
	Version string `yaml:"version" json:"version,omitempty"` // v2.4.0
	Image   string `yaml:"image" json:"image,omitempty"`     // ghcr.io/acme/checkout:v2.4.0
	Commit  string `yaml:"commit" json:"commit,omitempty"`   // 1a2b3c4
}

// Short names the canary in a few characters: its version, else its commit, else its image.
func (c *Canary) Short() string {
	switch {
	case c == nil:
		return ""
	case c.Version != "":
		return c.Version
	case c.Commit != "":
		return c.Commit
	}
	return c.Image
}

// String is the whole identity in a line: "v2.4.0 (image ghcr.io/acme/checkout:v2.4.0, commit
// 1a2b3c4)"; empty when nothing is set.
func (c *Canary) String() string {
	if c == nil {
		return ""
	}
	var more []string
	if c.Image != "" && c.Image != c.Short() {
		more = append(more, "image "+c.Image)
	}
	if c.Commit != "" && c.Commit != c.Short() {
		more = append(more, "commit "+c.Commit)
	}
	if len(more) == 0 {
		return c.Short()
	}
	return c.Short() + " (" + strings.Join(more, ", ") + ")"
}

// Traffic names the one provider that moves traffic.
type Traffic struct {
	ALB        *ALBTraffic        `yaml:"alb" json:"alb,omitempty"`
	Istio      *IstioTraffic      `yaml:"istio" json:"istio,omitempty"`
	GatewayAPI *GatewayAPITraffic `yaml:"gatewayAPI" json:"gatewayAPI,omitempty"`
	Proxy      *ProxyTraffic      `yaml:"proxy" json:"proxy,omitempty"`
}

// Kind is the name of the configured provider ("alb", "istio", "gatewayAPI", "proxy"), or "".
func (t Traffic) Kind() string {
	switch {
	case t.ALB != nil:
		return "alb"
	case t.Istio != nil:
		return "istio"
	case t.GatewayAPI != nil:
		return "gatewayAPI"
	case t.Proxy != nil:
		return "proxy"
	}
	return ""
}

// ALBTraffic shifts traffic between two target groups of an AWS Application Load Balancer rule.
type ALBTraffic struct {
	Region               string         `yaml:"region" json:"region,omitempty"`
	ListenerARN          string         `yaml:"listenerArn" json:"listenerArn"`
	RuleARN              string         `yaml:"ruleArn" json:"ruleArn,omitempty"` // empty: the listener's default action
	StableTargetGroupARN string         `yaml:"stableTargetGroupArn" json:"stableTargetGroupArn"`
	CanaryTargetGroupARN string         `yaml:"canaryTargetGroupArn" json:"canaryTargetGroupArn"`
	Stickiness           *ALBStickiness `yaml:"stickiness" json:"stickiness,omitempty"`
}

// ALBStickiness is the target-group stickiness of the forward action.
type ALBStickiness struct {
	Duration Duration `yaml:"duration" json:"duration"`
}

// IstioTraffic shifts traffic between two destinations of one HTTP route of a VirtualService.
type IstioTraffic struct {
	Namespace      string           `yaml:"namespace" json:"namespace,omitempty"`
	VirtualService string           `yaml:"virtualService" json:"virtualService"`
	Route          string           `yaml:"route" json:"route,omitempty"` // empty: the only route
	Stable         IstioDestination `yaml:"stable" json:"stable"`
	Canary         IstioDestination `yaml:"canary" json:"canary"`
}

// IstioDestination is a VirtualService destination: a host and an optional subset.
type IstioDestination struct {
	Host   string `yaml:"host" json:"host"`
	Subset string `yaml:"subset" json:"subset,omitempty"`
}

// GatewayAPITraffic shifts traffic between two backendRefs of the rule of an HTTPRoute that
// references both.
type GatewayAPITraffic struct {
	Namespace     string `yaml:"namespace" json:"namespace,omitempty"`
	HTTPRoute     string `yaml:"httpRoute" json:"httpRoute"`
	StableBackend string `yaml:"stableBackend" json:"stableBackend"`
	CanaryBackend string `yaml:"canaryBackend" json:"canaryBackend"`
}

// ProxyTraffic is perch's own weighted reverse proxy in front of two backends: either a
// standalone one (`perch proxy`) driven through its admin API (Admin), or one perch runs itself
// for the length of the rollout (Listen, Stable, Canary).
type ProxyTraffic struct {
	Listen   string         `yaml:"listen" json:"listen"`
	Stable   string         `yaml:"stable" json:"stable"`
	Canary   string         `yaml:"canary" json:"canary"`
	Sticky   *ProxySticky   `yaml:"sticky" json:"sticky,omitempty"`
	Override *ProxyOverride `yaml:"override" json:"override,omitempty"`
	// Timeouts and MaxConnections: absent or zero take the proxy's defaults (30s, 75s, 60s;
	// 10,000 connections).
	Timeouts       *ProxyTimeouts `yaml:"timeouts" json:"timeouts,omitempty"`
	MaxConnections int            `yaml:"maxConnections" json:"maxConnections,omitempty"`
	// Admin is a standalone proxy's admin API: unix:///PATH or http://HOST:PORT.
	Admin string `yaml:"admin" json:"admin,omitempty"`
	// AdminToken is the bearer token of an HTTP admin API; ${NAME} is read from the
	// environment when perch connects.
	AdminToken string `yaml:"adminToken" json:"adminToken,omitempty"`
}

// ProxyTimeouts bound the proxy's waits: for a backend to start answering, for a client's
// next request on a kept-alive connection, and for the next piece of a streaming body.
type ProxyTimeouts struct {
	ResponseHeader Duration `yaml:"responseHeader" json:"responseHeader,omitempty"`
	Idle           Duration `yaml:"idle" json:"idle,omitempty"`
	Body           Duration `yaml:"body" json:"body,omitempty"`
}

// Standalone reports whether the proxy is a `perch proxy` driven through its admin API, which
// keeps routing whatever happens to perch, rather than one inside perch.
func (p *ProxyTraffic) Standalone() bool { return p.Admin != "" }

// ProxySticky keeps a user on one side by hashing a header's or a cookie's value.
type ProxySticky struct {
	Header string `yaml:"header" json:"header,omitempty"`
	Cookie string `yaml:"cookie" json:"cookie,omitempty"`
}

// ProxyOverride names the header that pins a request to "canary" or "stable", for requests
// that also carry Token in X-Perch-Token. Token may name environment variables as ${NAME}.
type ProxyOverride struct {
	Header string `yaml:"header" json:"header"`
	Token  Secret `yaml:"token" json:"token"`
}

// Metrics names the one source checks are measured from.
type Metrics struct {
	Prometheus *PrometheusMetrics `yaml:"prometheus" json:"prometheus,omitempty"`
	CloudWatch *CloudWatchMetrics `yaml:"cloudwatch" json:"cloudwatch,omitempty"`
	Builtin    *BuiltinMetrics    `yaml:"builtin" json:"builtin,omitempty"`
	Datadog    *DatadogMetrics    `yaml:"datadog" json:"datadog,omitempty"`
	NewRelic   *NewRelicMetrics   `yaml:"newRelic" json:"newRelic,omitempty"`
	Web        *WebMetrics        `yaml:"web" json:"web,omitempty"`
}

// Kind is the name of the configured source ("prometheus", "cloudwatch", "builtin",
// "datadog", "newRelic", "web"), or "".
func (m Metrics) Kind() string {
	switch {
	case m.Prometheus != nil:
		return "prometheus"
	case m.CloudWatch != nil:
		return "cloudwatch"
	case m.Builtin != nil:
		return "builtin"
	case m.Datadog != nil:
		return "datadog"
	case m.NewRelic != nil:
		return "newRelic"
	case m.Web != nil:
		return "web"
	}
	return ""
}

// DatadogMetrics is Datadog's metrics API: checks' queries are Datadog metric queries. The
// keys (and the address) may name environment variables as ${NAME}.
type DatadogMetrics struct {
	Site   string `yaml:"site" json:"site,omitempty"` // empty: datadoghq.com
	APIKey Secret `yaml:"apiKey" json:"apiKey"`
	AppKey Secret `yaml:"appKey" json:"appKey"`
	// Address replaces https://api.SITE: a proxy, a regional endpoint or a test server.
	Address string `yaml:"address" json:"address,omitempty"`
}

// NewRelicMetrics is New Relic's NerdGraph API in one account: checks' queries are NRQL. The
// user key (and the address) may name environment variables as ${NAME}.
type NewRelicMetrics struct {
	AccountID int    `yaml:"accountId" json:"accountId"`
	APIKey    Secret `yaml:"apiKey" json:"apiKey"`
	Region    string `yaml:"region" json:"region,omitempty"` // US or EU; empty: US
	// Address replaces the region's endpoint: a proxy or a test server.
	Address string `yaml:"address" json:"address,omitempty"`
}

// WebMetrics is any HTTP endpoint that answers JSON: checks' queries are names filled into
// the URL template as {{.Query}}, with {{.Check}}, {{.Side}}, {{.Start}} and {{.End}}. The URL,
// the header values and the address may name environment variables as ${NAME}.
type WebMetrics struct {
	URL      string            `yaml:"url" json:"url"`
	JSONPath string            `yaml:"jsonPath" json:"jsonPath"`
	Headers  map[string]Secret `yaml:"headers" json:"headers,omitempty"`
	// Address replaces the URL's scheme and host: a proxy or a test server.
	Address string `yaml:"address" json:"address,omitempty"`
}

// PrometheusMetrics is a Prometheus server's HTTP API.
type PrometheusMetrics struct {
	Address string `yaml:"address" json:"address"`
}

// CloudWatchMetrics is Amazon CloudWatch in a region (the default chain's region when empty).
type CloudWatchMetrics struct {
	Region string `yaml:"region" json:"region,omitempty"`
}

// BuiltinMetrics is the proxy's own observations; it takes no settings.
type BuiltinMetrics struct{}

// InconclusiveAction is what a step does when its analysis ends without a conclusive verdict.
type InconclusiveAction string

// The two inconclusive actions.
const (
	InconclusiveHold InconclusiveAction = "hold"
	InconclusiveFail InconclusiveAction = "fail"
)

// Analysis says how often checks are sampled and how verdicts become decisions.
type Analysis struct {
	Interval      Duration           `yaml:"interval" json:"interval"`
	Stabilization Duration           `yaml:"stabilization" json:"stabilization"`
	Judge         string             `yaml:"judge" json:"judge"`
	Inconclusive  InconclusiveAction `yaml:"inconclusive" json:"inconclusive"`
	FailureLimit  int                `yaml:"failureLimit" json:"failureLimit"`
	// MaxOutage is how long the metrics source may fail before the inconclusive action
	// applies; until then the rollout holds and continues by itself when data returns.
	MaxOutage Duration `yaml:"maxOutage" json:"maxOutage"`
}

// Alerts is the Alertmanager webhook receiver: a firing alert matching any RollbackOn entry
// rolls the canary back at once. Whoever can post to it can roll the release back, so off
// loopback it must authenticate its sender: by a bearer token, basic auth, or client
// certificates (TLS.ClientCA). Credentials and file names may name environment variables as
// ${NAME}.
type Alerts struct {
	Listen      string           `yaml:"listen" json:"listen"`
	BearerToken Secret           `yaml:"bearerToken" json:"bearerToken,omitempty"`
	BasicAuth   *AlertsBasicAuth `yaml:"basicAuth" json:"basicAuth,omitempty"`
	TLS         *AlertsTLS       `yaml:"tls" json:"tls,omitempty"`
	// RollbackOn lists label sets; an alert matches one when it has every label with that value.
	RollbackOn []map[string]string `yaml:"rollbackOn" json:"rollbackOn"`
}

// Authenticated reports whether the receiver checks who posts to it: a bearer token, basic
// auth, or a client certificate signed by TLS.ClientCA.
func (a *Alerts) Authenticated() bool {
	return a.BearerToken != "" || a.BasicAuth != nil || (a.TLS != nil && a.TLS.ClientCA != "")
}

// Loopback reports whether Listen is reachable from this machine only: a loopback IP or
// localhost.
func (a *Alerts) Loopback() bool {
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AlertsBasicAuth is the user name and password Alertmanager's basic_auth sends.
type AlertsBasicAuth struct {
	Username string `yaml:"username" json:"username"`
	Password Secret `yaml:"password" json:"password"`
}

// AlertsTLS serves the receiver over HTTPS with the certificate and key in PEM files. With
// ClientCA (a PEM bundle) every client must present a certificate it signed.
type AlertsTLS struct {
	Cert     string `yaml:"cert" json:"cert"`
	Key      string `yaml:"key" json:"key"`
	ClientCA string `yaml:"clientCA" json:"clientCA,omitempty"`
}

// RedactedSecret is what a journal records in place of a Secret written as its value.
const RedactedSecret = "(redacted)"

// Secret is a credential in a rollout file: best written as ${NAME} references, read from the
// environment when perch starts, but it may be the value itself. Journals record their rollout
// file in the header and double as shareable recordings, so a Secret that is anything but
// references is recorded as RedactedSecret.
type Secret string

// MarshalJSON writes the secret's references as they are, and anything else as
// RedactedSecret.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" || envexpand.OnlyRefs(string(s)) {
		return json.Marshal(string(s))
	}
	return json.Marshal(RedactedSecret)
}

// Notify is one place rollout news is sent: exactly one of Slack or a generic webhook.
// URLs and header values may name environment variables as ${NAME}, so secrets stay out of
// the file.
type Notify struct {
	Slack   *SlackNotify   `yaml:"slack" json:"slack,omitempty"`
	Webhook *WebhookNotify `yaml:"webhook" json:"webhook,omitempty"`
}

// SlackNotify posts to a Slack incoming webhook.
type SlackNotify struct {
	WebhookURL string `yaml:"webhookURL" json:"webhookURL"`
}

// WebhookNotify posts a JSON document per event to a URL.
type WebhookNotify struct {
	URL     string            `yaml:"url" json:"url"`
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
}

// Check is one metric compared between canary and baseline.
type Check struct {
	Name string `yaml:"name" json:"name"`
	// Canary and Baseline are sample queries; Events and Total are count queries; Histogram
	// is a bucket query per side (one series per le bound, counts per interval). A check has
	// one kind of query (Builtin fills them in for the proxy's own measures).
	Canary    metrics.Query `yaml:"canary" json:"canary,omitzero"`
	Baseline  metrics.Query `yaml:"baseline" json:"baseline,omitzero"`
	Events    *QueryPair    `yaml:"events" json:"events,omitempty"`
	Total     *QueryPair    `yaml:"total" json:"total,omitempty"`
	Histogram *QueryPair    `yaml:"histogram" json:"histogram,omitempty"`
	Builtin   string        `yaml:"builtin" json:"builtin,omitempty"`

	Direction           metrics.Direction `yaml:"direction" json:"direction"`
	MaxDeviationPercent *float64          `yaml:"maxDeviationPercent" json:"maxDeviationPercent,omitempty"`
	MaxIncrease         *float64          `yaml:"maxIncrease" json:"maxIncrease,omitempty"`
	Critical            bool              `yaml:"critical" json:"critical,omitempty"`
	Judge               string            `yaml:"judge" json:"judge,omitempty"` // empty: analysis.judge
	JudgeOptions        metrics.Options   `yaml:"judgeOptions" json:"judgeOptions,omitempty"`
	// Unit is how values are shown ("s", "ms", "%", "req/s"); it does not change judging.
	Unit string `yaml:"unit" json:"unit,omitempty"`
	// DryRun checks are judged, shown and journaled like any other, but never hold, fail or
	// roll back the rollout, nor keep a step from passing: a way to watch a new check first.
	DryRun bool `yaml:"dryRun" json:"dryRun,omitempty"`
}

// IsCounts reports whether the check is judged as counts (events out of total).
func (c Check) IsCounts() bool { return c.Events != nil }

// IsHistogram reports whether the check compares histograms (whole distributions).
func (c Check) IsHistogram() bool { return c.Histogram != nil }

// Criteria are the check's tolerances as a judge takes them, with the unit its reasons write
// values in.
func (c Check) Criteria() metrics.Criteria {
	return metrics.Criteria{Direction: c.Direction, MaxDeviationPercent: c.MaxDeviationPercent, MaxIncrease: c.MaxIncrease,
		Unit: c.ValueUnit().Name}
}

// ValueUnit is how the check's values are written: in its unit, and a rate (events out of
// total) without one as a percentage. A histogram check's values are shares of requests (those
// slower than a bound), so always a percentage; its unit is the bounds'.
func (c Check) ValueUnit() metrics.Unit {
	if c.IsHistogram() {
		return metrics.Unit{Name: "%", Rate: true}
	}
	u := metrics.Unit{Name: c.Unit, Rate: c.IsCounts()}
	if u.Rate && u.Name == "" {
		u.Name = "%"
	}
	return u
}

// Family is how many tests share the rollout's false-alarm budget (metrics.Criteria.Family):
// every check in every step that is analysed, which is every step with analyze and every pause
// step after a weight or a segment is set (it keeps looking at the canary traffic it holds, in
// a window of its own).
func (s *Rollout) Family() int {
	n, weighted := 0, false
	for _, st := range s.Steps {
		if st.Analyze > 0 || st.Pause != nil && weighted {
			n += len(s.Checks)
		}
		weighted = weighted || st.SetWeight != nil || st.Segment != nil
	}
	return n
}

// QueryPair is a query for each side.
type QueryPair struct {
	Canary   metrics.Query `yaml:"canary" json:"canary"`
	Baseline metrics.Query `yaml:"baseline" json:"baseline"`
}

// Step is one step of the rollout: a weight, a segment or a feature flag's percentage set and
// held for an analysis time, or a pause.
type Step struct {
	SetWeight *int     `yaml:"setWeight" json:"setWeight,omitempty"`
	Analyze   Duration `yaml:"analyze" json:"analyze,omitempty"`
	Pause     *Pause   `yaml:"pause" json:"pause,omitempty"`
	// Segment sends every request the segment matches wholly to the canary, from this step
	// until the rollout is promoted or rolled back.
	Segment *segment.Segment `yaml:"segment" json:"segment,omitempty"`
	// SetFlag sets a feature flag's percentage rollout in the system named under flags.
	SetFlag *SetFlag `yaml:"setFlag" json:"setFlag,omitempty"`
}

// SetFlag is the share of users a feature flag is on for, from this step on.
type SetFlag struct {
	Flag    string `yaml:"flag" json:"flag"`
	Percent *int   `yaml:"percent" json:"percent"`
}

// Pause stops the rollout until an operator resumes it or, with a Duration, until it elapses.
type Pause struct {
	Duration Duration `yaml:"duration" json:"duration,omitempty"`
}

// String describes the step in a few words: "1% for 5m", "pause", "pause 10m", "segment
// employees", "flag new-dashboard 20% for 10m".
func (s Step) String() string {
	var what string
	switch {
	case s.Pause != nil && s.Pause.Duration > 0:
		return "pause " + s.Pause.Duration.String()
	case s.Pause != nil:
		return "pause"
	case s.SetWeight != nil:
		what = fmt.Sprintf("%d%%", *s.SetWeight)
	case s.Segment != nil:
		what = "segment " + s.Segment.Name
	case s.SetFlag != nil && s.SetFlag.Percent != nil:
		what = fmt.Sprintf("flag %s %d%%", s.SetFlag.Flag, *s.SetFlag.Percent)
	default:
		return "?"
	}
	if s.Analyze > 0 {
		what += " for " + s.Analyze.String()
	}
	return what
}

// Duration is a time.Duration written as "30s", "5m", "1h30m" in files and journals.
type Duration time.Duration

// String prints the duration without trailing zero units ("5m", not "5m0s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Weight is the step's canary weight, or -1 for a step that sets none (a pause, a segment, a
// flag).
func (s Step) Weight() int {
	if s.SetWeight == nil {
		return -1
	}
	return *s.SetWeight
}

// File is the file the rollout was read from, or "" when it was built in code.
func (s *Rollout) File() string { return s.file }

// Where is the FILE:LINE:COL where the field at path (as "checks[1].canary") was written, or
// the file name alone when the spec did not come from a file or the field was not written.
func (s *Rollout) Where(path string) string {
	p, ok := s.pos[path]
	if !ok {
		return s.file
	}
	file := s.file
	for q := path; ; q = yamlpos.ParentPath(q) {
		if o, ok := s.origins[q]; ok {
			file = o.File
			break
		}
		if q == "" {
			break
		}
	}
	return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Col)
}
