package proxyd

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/perchhq/perch/internal/envexpand"
	"github.com/perchhq/perch/internal/yamlpos"
	"github.com/perchhq/perch/providers/proxy"
	"github.com/perchhq/perch/providers/proxy/admin"
)

// Config is a standalone proxy's file:
//
//	listen: 0.0.0.0:8080
//	admin: unix:///run/perch/checkout.sock     # or http://127.0.0.1:9901 with adminToken
//	adminToken: "${PERCH_ADMIN_TOKEN}"
//	stable: http://10.0.0.1:8080
//	canary: http://10.0.0.2:8080
//	state: /var/lib/perch/checkout.state
//	sticky: {header: X-User-Id}                # or {cookie: session}
//	override: {header: X-Perch-Version, token: "${PERCH_OVERRIDE_TOKEN}"}
//	timeouts: {responseHeader: 60s, idle: 75s, body: 60s}
//	maxConnections: 10000
//	metrics: 127.0.0.1:9100
//	observations: {resolution: 1s, retention: 1h}
//
// ${NAME} in any value is read from the environment. Make one with Load or Parse, which fill in
// the defaults and validate it.
type Config struct {
	// Listen is where clients' requests arrive (HOST:PORT).
	Listen string `yaml:"listen"`
	// Admin is where the admin API listens: unix:///PATH or http://LOOPBACK:PORT.
	Admin string `yaml:"admin"`
	// AdminToken is the bearer token the admin API wants; required over HTTP.
	AdminToken string `yaml:"adminToken"`
	// Stable and Canary are the backends' URLs.
	Stable string `yaml:"stable"`
	Canary string `yaml:"canary"`
	// State is the file the weight and segments are kept in, so a restart comes back at the
	// same weight; empty: kept in memory only. A relative path is the config file's directory's.
	State string `yaml:"state"`
	// Sticky keeps a user on one side.
	Sticky *Sticky `yaml:"sticky"`
	// Override lets a client that knows the token pin a request to one side.
	Override *Override `yaml:"override"`
	// Timeouts bound how long the proxy waits on backends and clients.
	Timeouts Timeouts `yaml:"timeouts"`
	// MaxConnections caps client connections open at once; more wait to be accepted.
	MaxConnections int `yaml:"maxConnections"`
	// Metrics is where Prometheus /metrics is served (HOST:PORT); empty: not served.
	Metrics string `yaml:"metrics"`
	// Observations sizes what the builtin metrics source keeps.
	Observations Observations `yaml:"observations"`

	file  string
	admin admin.Address
}

// Sticky names the header or the cookie whose value keeps a user on one side.
type Sticky struct {
	Header string `yaml:"header"`
	Cookie string `yaml:"cookie"`
}

// Override names the header that pins a request to "canary" or "stable", and the token a
// client must send in OverrideTokenHeader for the proxy to heed it.
type Override struct {
	Header string `yaml:"header"`
	Token  string `yaml:"token"`
}

// OverrideTokenHeader carries the override token in a client's request; the proxy removes it
// before forwarding.
const OverrideTokenHeader = proxy.TokenHeader

// Timeouts bound the waits of a request, as nginx's proxy_read_timeout, keepalive_timeout and
// client_body_timeout do.
type Timeouts struct {
	// ResponseHeader is how long a backend may take to answer a request it was sent.
	ResponseHeader time.Duration `yaml:"responseHeader"`
	// Idle is how long a client's keep-alive connection may wait for its next request.
	Idle time.Duration `yaml:"idle"`
	// Body is how long a body may stall (no byte arriving): a client's request body, given up
	// as a 408, or a backend's response body, cut and counted as its 504.
	Body time.Duration `yaml:"body"`
}

// Observations are the resolution and retention of the builtin metrics source: a rollout's
// analysis.interval must be at least the resolution, and its longest analysis fit in the
// retention.
type Observations struct {
	Resolution time.Duration `yaml:"resolution"`
	Retention  time.Duration `yaml:"retention"`
}

// Defaults of what the file leaves out.
const (
	DefaultResponseHeaderTimeout = proxy.DefaultResponseHeaderTimeout
	DefaultIdleTimeout           = proxy.DefaultIdleTimeout
	DefaultBodyTimeout           = proxy.DefaultBodyTimeout
	DefaultMaxConnections        = 10000
	DefaultResolution            = time.Second
	DefaultRetention             = time.Hour
	maxMaxConnections            = 1_000_000
	minTokenLength               = 16
)

// File is the file the config was read from.
func (c *Config) File() string { return c.file }

// AdminAddress is the admin API's address, parsed.
func (c *Config) AdminAddress() admin.Address { return c.admin }

// Load reads, defaults and validates a proxy file; getenv reads ${NAME}. Problems in the file
// come back as yamlpos.Errors; a file that cannot be read as a plain error.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, getenv)
}

// Parse reads, defaults and validates a proxy file's bytes; file names it in messages and
// anchors a relative state path.
func Parse(file string, data []byte, getenv func(string) string) (*Config, error) {
	doc, err := yamlpos.Document(file, "proxy file", data)
	if err != nil {
		return nil, err
	}
	d := &decoder{yamlpos.NewDecoder(file)}
	d.Text = func(s string) (string, error) { return envexpand.Expand(s, getenv) }
	cfg := &Config{file: file}
	d.Decode(doc, reflect.ValueOf(cfg).Elem(), "")
	d.validate(cfg)
	if err := d.Err(); err != nil {
		return nil, err
	}
	if cfg.State != "" && !filepath.IsAbs(cfg.State) {
		cfg.State = filepath.Join(filepath.Dir(file), cfg.State)
	}
	return cfg, nil
}

func (d *decoder) validate(c *Config) {
	d.hostPort("listen", c.Listen, true)
	d.backend("stable", c.Stable)
	d.backend("canary", c.Canary)
	if c.Stable != "" && c.Stable == c.Canary {
		d.Fail("canary", "the canary backend is the stable one")
	}
	d.validateAdmin(c)
	if c.Sticky != nil && (c.Sticky.Header == "") == (c.Sticky.Cookie == "") {
		d.Fail("sticky", "name exactly one of header or cookie")
	}
	if o := c.Override; o != nil {
		if d.required("override.header", o.Header) && !validHeaderName(o.Header) {
			d.Fail("override.header", "%q is not a header name", o.Header)
		}
		if d.required("override.token", o.Token) {
			d.token("override.token", o.Token)
		}
	}
	t := &c.Timeouts
	d.positive("timeouts.responseHeader", &t.ResponseHeader, DefaultResponseHeaderTimeout)
	d.positive("timeouts.idle", &t.Idle, DefaultIdleTimeout)
	d.positive("timeouts.body", &t.Body, DefaultBodyTimeout)
	switch {
	case !d.Written("maxConnections"):
		c.MaxConnections = DefaultMaxConnections
	case c.MaxConnections < 1 || c.MaxConnections > maxMaxConnections:
		d.Fail("maxConnections", "want 1 to %d, got %d", maxMaxConnections, c.MaxConnections)
	}
	d.hostPort("metrics", c.Metrics, false)
	o := &c.Observations
	d.positive("observations.resolution", &o.Resolution, DefaultResolution)
	d.positive("observations.retention", &o.Retention, DefaultRetention)
	switch {
	case o.Resolution < time.Millisecond:
		d.Fail("observations.resolution", "want at least 1ms, got %s", o.Resolution)
	case o.Retention < o.Resolution:
		d.Fail("observations.retention", "%s is shorter than the resolution %s", o.Retention, o.Resolution)
	case o.Retention > proxy.MaxRetention:
		d.Fail("observations.retention", "at most %s, got %s", proxy.MaxRetention, o.Retention)
	}
}

func (d *decoder) validateAdmin(c *Config) {
	if !d.required("admin", c.Admin) {
		return
	}
	addr, err := admin.ParseAddress(c.Admin)
	if err != nil {
		d.Fail("admin", "%v", err)
		return
	}
	c.admin = addr
	switch {
	case addr.IsUnix() && c.AdminToken != "":
		d.token("adminToken", c.AdminToken)
	case addr.IsUnix():
	case !addr.IsLoopback():
		d.Fail("admin", "an HTTP admin API listens on loopback only (127.0.0.1, ::1 or localhost), got %s; use unix:///PATH, or reach it through a tunnel", addr.HostPort)
	case c.AdminToken == "":
		d.FailAt("admin", "adminToken", "missing: an HTTP admin API needs a token (adminToken: \"${PERCH_ADMIN_TOKEN}\")")
	default:
		d.token("adminToken", c.AdminToken)
	}
}

func (d *decoder) required(path, value string) bool {
	if value == "" {
		d.Fail(path, "missing")
		return false
	}
	return true
}

func (d *decoder) token(path, value string) {
	if len(value) < minTokenLength {
		d.Fail(path, "want at least %d characters (openssl rand -hex 16 makes one), got %d", minTokenLength, len(value))
	}
}

func (d *decoder) hostPort(path, value string, required bool) {
	if value == "" {
		if required {
			d.Fail(path, "missing")
		}
		return
	}
	if _, port, err := net.SplitHostPort(value); err != nil || port == "" {
		d.Fail(path, "want HOST:PORT, got %q", value)
	}
}

func (d *decoder) backend(path, value string) {
	if !d.required(path, value) {
		return
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.Fail(path, "want an http:// or https:// URL, got %q", value)
	}
}

// positive defaults a duration the file left out, and refuses one it set to zero or less.
func (d *decoder) positive(path string, v *time.Duration, def time.Duration) {
	switch {
	case !d.Written(path):
		*v = def
	case *v <= 0 && !d.Bad[path]:
		d.Fail(path, "want a positive duration, got %s", *v)
	}
}

func validHeaderName(s string) bool {
	for _, r := range s {
		if r > 0x7e || r <= ' ' || r == ':' {
			return false
		}
	}
	return s != "" && http.CanonicalHeaderKey(s) != ""
}

// proxyConfig is what the proxy package is built from.
func (c *Config) proxyConfig() proxy.Config {
	pc := proxy.Config{
		Stable: c.Stable, Canary: c.Canary,
		Resolution: c.Observations.Resolution, Retention: c.Observations.Retention,
		Timeouts:       proxy.Timeouts{ResponseHeader: c.Timeouts.ResponseHeader, Idle: c.Timeouts.Idle, Body: c.Timeouts.Body},
		MaxConnections: c.MaxConnections,
	}
	if c.Sticky != nil {
		pc.StickyHeader, pc.StickyCookie = c.Sticky.Header, c.Sticky.Cookie
	}
	if c.Override != nil {
		pc.OverrideHeader, pc.OverrideToken = c.Override.Header, c.Override.Token
	}
	return pc
}

// restartOnly names the settings that differ from old's and take effect only on a restart
// (where the proxy listens and keeps its state), for a reload to say it kept them.
func (c *Config) restartOnly(old *Config) []string {
	var changed []string
	for _, f := range []struct {
		name     string
		now, was any
	}{
		{"listen", c.Listen, old.Listen},
		{"admin", c.Admin, old.Admin},
		{"state", c.State, old.State},
		{"maxConnections", c.MaxConnections, old.MaxConnections},
		{"metrics", c.Metrics, old.Metrics},
		{"observations", c.Observations, old.Observations},
	} {
		if f.now != f.was {
			changed = append(changed, fmt.Sprintf("%s (%v, still %v)", f.name, f.now, f.was))
		}
	}
	return changed
}
