// Package admin is the admin API of a standalone perch proxy (`perch proxy PROXY.yaml`): where
// it listens, what it says on the wire, and the client a rollout drives the proxy with. The
// client is a traffic provider (SetWeight, Weight) and a metrics source (the proxy's own
// observations), so `traffic: {proxy: {admin: …}}` with `metrics: {builtin: {}}` runs a
// rollout against a proxy that outlives perch as it would against the proxy inside it.
//
// The API is JSON over HTTP, versioned by path:
//
//	GET  /healthz                     200 {"ok": true}
//	GET  /v1/weight                   {"canaryPercent": N}
//	PUT  /v1/weight                   {"canaryPercent": N} → the weight read back
//	GET  /v1/segments                 {"segments": [{"name", "match"}…]}
//	PUT  /v1/segments                 {"segments": […]} → the segments stored
//	GET  /v1/samples?query=Q&start=T&end=T&step=D   {"samples": [{"time", "value"}…]}
//	GET  /v1/histogram?query=Q&start=T&end=T&step=D {"bounds": [b…, "+Inf"], "points": [{"time", "counts"}…]}
//
// Errors are {"error": "…"} with a 4xx or 5xx status. start and end are RFC 3339 times (or Unix
// seconds), step a Go duration ("30s") or seconds.
package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/metrics"
)

// Paths of the API.
const (
	PathHealth   = "/healthz"
	PathWeight   = "/v1/weight"
	PathSegments = "/v1/segments"
	PathSamples  = "/v1/samples"
	// PathHistogram answers a histogram measure (latency_histogram) with a metrics.Histogram:
	// per step, the cumulative counts at 34 fixed bounds (+Inf among them): 184 bytes a step at
	// 1,000 requests a second, at most 25,000 steps an answer.
	PathHistogram = "/v1/histogram"
)

// Weight is the body of GET and PUT /v1/weight: the percent of requests sent to the canary.
type Weight struct {
	CanaryPercent int `json:"canaryPercent"`
}

// Segment is a named group of requests and how to recognise them, which the proxy sends
// wholly to the canary: Match is a segment match as a rollout file writes it
// ({"header": {"name", "value"|"regex"}} or {"cookie": {"name", "value"}}), kept as the
// client wrote it.
type Segment struct {
	Name  string          `json:"name"`
	Match json.RawMessage `json:"match"`
}

// Segments is the body of GET and PUT /v1/segments.
type Segments struct {
	Segments []Segment `json:"segments"`
}

// Samples is the body GET /v1/samples answers with.
type Samples struct {
	Samples []metrics.Sample `json:"samples"`
}

// Problem is the body of an error answer.
type Problem struct {
	Error string `json:"error"`
}

// MaxSegments bounds how many segments the proxy keeps.
const MaxSegments = 100

var segmentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// CheckSegments says what is wrong with a list of segments, or nil: each needs a name (letters,
// digits, _ . -, at most 64) used once, and a match the proxy can route by.
func CheckSegments(segs []Segment) error {
	_, err := ParseSegments(segs)
	return err
}

// ParseSegments reads segments as the proxy routes them, saying what is wrong with them (see
// CheckSegments).
func ParseSegments(segs []Segment) ([]segment.Segment, error) {
	if len(segs) > MaxSegments {
		return nil, fmt.Errorf("%d segments: at most %d", len(segs), MaxSegments)
	}
	seen := map[string]bool{}
	var errs []error
	out := make([]segment.Segment, len(segs))
	for i, s := range segs {
		switch {
		case !segmentName.MatchString(s.Name):
			errs = append(errs, fmt.Errorf("segments[%d].name %q: want 1 to 64 letters, digits, _ . or -", i, s.Name))
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("segments[%d].name %q: used twice", i, s.Name))
		}
		seen[s.Name] = true
		out[i].Name = s.Name
		var m map[string]json.RawMessage
		if json.Unmarshal(s.Match, &m) != nil || len(m) == 0 {
			errs = append(errs, fmt.Errorf("segments[%d].match: want a JSON object, as {\"header\": {\"name\": …, \"value\": …}}", i))
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(s.Match))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out[i].Match); err != nil {
			errs = append(errs, fmt.Errorf("segments[%d].match: %v (want {\"header\": {\"name\", \"value\" or \"regex\"}} or {\"cookie\": {\"name\", \"value\"}})", i, err))
			continue
		}
		for _, p := range out[i].Match.Check() {
			errs = append(errs, fmt.Errorf("segments[%d].%s: %s", i, p.Field, p.Msg))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// WireSegments is segs as the API carries them.
func WireSegments(segs []segment.Segment) []Segment {
	out := make([]Segment, len(segs))
	for i, s := range segs {
		match, _ := json.Marshal(s.Match)
		out[i] = Segment{Name: s.Name, Match: match}
	}
	return out
}

// Address is where an admin API listens: a Unix socket (unix:///run/perch/checkout.sock) or
// HTTP on loopback (http://127.0.0.1:9901).
type Address struct {
	// Path is the socket's file name, for a Unix socket.
	Path string
	// HostPort is where HTTP listens, otherwise.
	HostPort string
}

// maxSocketPath is the longest file name a Unix socket may have on Linux (108 bytes with the
// terminating NUL).
const maxSocketPath = 107

// ParseAddress reads an admin address: unix:///ABSOLUTE/PATH or http://HOST:PORT.
func ParseAddress(s string) (Address, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Address{}, fmt.Errorf("want unix:///PATH or http://127.0.0.1:PORT, got %q", s)
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		switch {
		case u.Host != "" || u.Opaque != "":
			return Address{}, fmt.Errorf("want unix:///ABSOLUTE/PATH (three slashes), got %q", s)
		case !strings.HasPrefix(path, "/"):
			return Address{}, fmt.Errorf("want an absolute socket path, unix:///PATH, got %q", s)
		case len(path) > maxSocketPath:
			return Address{}, fmt.Errorf("socket path %s is too long for a Unix socket (%d > %d bytes)", path, len(path), maxSocketPath)
		case u.RawQuery != "" || u.Fragment != "":
			return Address{}, fmt.Errorf("want unix:///PATH with nothing after it, got %q", s)
		}
		return Address{Path: path}, nil
	case "http":
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
			return Address{}, fmt.Errorf("want http://HOST:PORT, got %q", s)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return Address{}, fmt.Errorf("want http://HOST:PORT with nothing after it, got %q", s)
		}
		return Address{HostPort: u.Host}, nil
	}
	return Address{}, fmt.Errorf("want unix:///PATH or http://127.0.0.1:PORT, got %q", s)
}

// IsUnix reports whether the address is a Unix socket.
func (a Address) IsUnix() bool { return a.Path != "" }

// String is the address as written: unix:///PATH or http://HOST:PORT.
func (a Address) String() string {
	if a.IsUnix() {
		return "unix://" + a.Path
	}
	return "http://" + a.HostPort
}

// IsLoopback reports whether an HTTP address's host is a loopback address or "localhost".
func (a Address) IsLoopback() bool {
	host, _, err := net.SplitHostPort(a.HostPort)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
