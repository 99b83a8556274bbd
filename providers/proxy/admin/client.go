package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/metrics"
)

// Config says how to reach a standalone proxy's admin API.
type Config struct {
	// Address is unix:///PATH or http://HOST:PORT.
	Address string
	// Token is the bearer token the API wants (required by an HTTP admin API; a Unix socket's
	// API wants one only if its file sets adminToken).
	Token string
	// Transport carries the requests (nil: a connection to Address). Tests put the server's
	// handler here.
	Transport http.RoundTripper
}

// Client drives a standalone proxy through its admin API. It is an engine.Router and an
// engine.Source; it keeps nothing but idle connections, so every answer is the proxy's.
type Client struct {
	addr   Address
	token  string
	base   string
	client *http.Client
}

// Bounds of the client's calls: a call without a deadline of its own gives up after
// callTimeout; answers are read up to maxAnswer bytes (a samples answer of the most points a
// query may ask for fits).
const (
	callTimeout = 30 * time.Second
	maxAnswer   = 32 << 20
)

// New makes a client of the admin API at cfg.Address. It does not connect until asked.
func New(cfg Config) (*Client, error) {
	addr, err := ParseAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	c := &Client{addr: addr, token: cfg.Token, base: "http://" + addr.HostPort}
	transport := cfg.Transport
	if transport == nil {
		t := &http.Transport{MaxIdleConns: 4, IdleConnTimeout: time.Minute, ResponseHeaderTimeout: callTimeout}
		if addr.IsUnix() {
			var d net.Dialer
			t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", addr.Path)
			}
		}
		transport = t
	}
	if addr.IsUnix() {
		c.base = "http://perch-proxy" // the socket is dialled whatever the host says
	}
	c.client = &http.Client{Transport: transport, Timeout: callTimeout}
	return c, nil
}

// String says what the client drives, for `perch traffic` and `validate --check-access`.
func (c *Client) String() string { return "perch proxy at " + c.addr.String() }

// Close lets go of idle connections.
func (c *Client) Close() error {
	c.client.CloseIdleConnections()
	return nil
}

// Weight reads the canary percent the proxy routes by now.
func (c *Client) Weight(ctx context.Context) (int, error) {
	var w Weight
	if err := c.call(ctx, http.MethodGet, PathWeight, nil, &w); err != nil {
		return 0, err
	}
	return w.CanaryPercent, nil
}

// SetWeight sends canaryPercent (0..100) of new requests to the canary. The proxy persists it
// before it answers, and answers with the weight it then reads back; another weight is an
// error.
func (c *Client) SetWeight(ctx context.Context, canaryPercent int) error {
	if canaryPercent < 0 || canaryPercent > 100 {
		return fmt.Errorf("canary weight %d outside 0..100", canaryPercent)
	}
	var got Weight
	if err := c.call(ctx, http.MethodPut, PathWeight, Weight{CanaryPercent: canaryPercent}, &got); err != nil {
		return err
	}
	if got.CanaryPercent != canaryPercent {
		return fmt.Errorf("%s: set the canary to %d%%, but it reports %d%%", c, canaryPercent, got.CanaryPercent)
	}
	return nil
}

// Segments reads the segments the proxy keeps.
func (c *Client) Segments(ctx context.Context) ([]Segment, error) {
	var s Segments
	if err := c.call(ctx, http.MethodGet, PathSegments, nil, &s); err != nil {
		return nil, err
	}
	return s.Segments, nil
}

// SetSegments replaces the segments the proxy keeps, and returns them as it stored them.
func (c *Client) SetSegments(ctx context.Context, segs []Segment) ([]Segment, error) {
	if segs == nil {
		segs = []Segment{}
	}
	var s Segments
	if err := c.call(ctx, http.MethodPut, PathSegments, Segments{Segments: segs}, &s); err != nil {
		return nil, err
	}
	return s.Segments, nil
}

// RouteSegments makes segs, and only them, the segments the proxy sends wholly to the canary
// (none: no segment routing), and checks the proxy stored them all.
func (c *Client) RouteSegments(ctx context.Context, segs []segment.Segment) error {
	got, err := c.SetSegments(ctx, WireSegments(segs))
	if err != nil {
		return err
	}
	if names, want := wireNames(got), segment.Names(segs); !slices.Equal(names, want) {
		return fmt.Errorf("%s: set segments %q, but it reports %q", c, want, names)
	}
	return nil
}

// RoutedSegments is the names of the segments the proxy routes now.
func (c *Client) RoutedSegments(ctx context.Context) ([]string, error) {
	segs, err := c.Segments(ctx)
	if err != nil {
		return nil, err
	}
	return wireNames(segs), nil
}

func wireNames(segs []Segment) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.Name
	}
	return out
}

// Samples answers a builtin query (metrics.BuiltinQuery) from the proxy's observations, as the
// proxy inside perch does: one sample per step from start to end.
func (c *Client) Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	if q.Metric != nil {
		return nil, fmt.Errorf("the proxy answers builtin queries, not a CloudWatch metric (%s)", q)
	}
	var s Samples
	if err := c.call(ctx, http.MethodGet, PathSamples+"?"+window(q, start, end, step).Encode(), nil, &s); err != nil {
		return nil, err
	}
	return s.Samples, nil
}

// Histogram answers a builtin histogram query (latency_histogram) from the proxy's
// observations, as the proxy inside perch does: the counts at its bounds per step.
func (c *Client) Histogram(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) (metrics.Histogram, error) {
	if q.Metric != nil {
		return metrics.Histogram{}, fmt.Errorf("the proxy answers builtin queries, not a CloudWatch metric (%s)", q)
	}
	var h metrics.Histogram
	if err := c.call(ctx, http.MethodGet, PathHistogram+"?"+window(q, start, end, step).Encode(), nil, &h); err != nil {
		return metrics.Histogram{}, err
	}
	if err := checkHistogram(h); err != nil {
		return metrics.Histogram{}, fmt.Errorf("%s: GET %s: %w", c, PathHistogram, err)
	}
	return h, nil
}

// checkHistogram refuses an answer the judge could not take: bounds that do not ascend to
// +Inf, or a point whose counts do not match them or do not grow with the bound.
func checkHistogram(h metrics.Histogram) error {
	b := h.Bounds
	if len(b) < 2 || !math.IsInf(b[len(b)-1], 1) || !slices.IsSorted(b) {
		return fmt.Errorf("histogram bounds %v: want ascending bounds ending in +Inf", b)
	}
	for _, p := range h.Points {
		if len(p.Counts) != len(b) {
			return fmt.Errorf("histogram point at %s has %d counts for %d bounds", p.Time.Format(time.RFC3339), len(p.Counts), len(b))
		}
		for i, n := range p.Counts {
			if !(n >= 0) || math.IsInf(n, 0) || i > 0 && n < p.Counts[i-1] {
				return fmt.Errorf("histogram point at %s: counts %v do not grow with the bound", p.Time.Format(time.RFC3339), p.Counts)
			}
		}
	}
	return nil
}

// window is a query's URL parameters.
func window(q metrics.Query, start, end time.Time, step time.Duration) url.Values {
	v := url.Values{}
	v.Set("query", q.Expr)
	v.Set("start", start.UTC().Format(time.RFC3339Nano))
	v.Set("end", end.UTC().Format(time.RFC3339Nano))
	v.Set("step", step.String())
	return v
}

// Health asks whether the proxy is up.
func (c *Client) Health(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, PathHealth, nil, nil)
}

// call sends one request and decodes the answer into out (unless nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL of a Unix socket's requests is made up: name the socket instead
		}
		return fmt.Errorf("%s: %s %s: %w", c, method, routeOf(path), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s: %s %s: reading the answer: %w", c, method, routeOf(path), err)
	}
	if resp.StatusCode/100 != 2 {
		return c.refusal(method, path, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: %s %s: not the answer of a perch proxy: %w", c, method, routeOf(path), err)
	}
	return nil
}

// refusal words an error answer.
func (c *Client) refusal(method, path string, code int, data []byte) error {
	var p Problem
	msg := string(bytes.TrimSpace(data))
	if json.Unmarshal(data, &p) == nil && p.Error != "" {
		msg = p.Error
	}
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	switch code {
	case http.StatusUnauthorized:
		msg += " (check traffic.proxy.adminToken against the proxy's adminToken)"
	case http.StatusForbidden:
		msg += " (the admin socket answers only the user the proxy runs as, and root)"
	}
	return fmt.Errorf("%s: %s %s: %s: %s", c, method, routeOf(path), strconv.Itoa(code)+" "+http.StatusText(code), msg)
}

// routeOf is a request path without its query, for messages.
func routeOf(path string) string {
	if u, err := url.Parse(path); err == nil {
		return u.Path
	}
	return path
}
