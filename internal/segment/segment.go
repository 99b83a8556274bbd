// Package segment is a named group of requests a rollout sends wholly to the canary — internal
// employees, beta testers, a region — recognised by a header's value (exact, or a regular
// expression over the whole value) or a cookie's value. The rollout file, the engine and the
// traffic providers share it; Compile makes the rules perch's own proxy matches requests with.
package segment

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Segment is a named match. From the step that sets it until promotion or rollback, every
// request it matches goes to the canary, whatever the weight.
type Segment struct {
	Name  string `yaml:"name" json:"name"`
	Match Match  `yaml:"match" json:"match"`
}

// Match says which requests are in a segment: exactly one of Header or Cookie.
type Match struct {
	Header *HeaderMatch `yaml:"header" json:"header,omitempty"`
	Cookie *CookieMatch `yaml:"cookie" json:"cookie,omitempty"`
}

// HeaderMatch is a request header's value: Value exactly, or Regex over the whole value (RE2
// syntax, as Envoy and Go read it).
type HeaderMatch struct {
	Name  string `yaml:"name" json:"name"`
	Value string `yaml:"value" json:"value,omitempty"`
	Regex string `yaml:"regex" json:"regex,omitempty"`
}

// CookieMatch is a cookie's value, exactly.
type CookieMatch struct {
	Name  string `yaml:"name" json:"name"`
	Value string `yaml:"value" json:"value"`
}

// MaxNameLength bounds a segment's name: providers name their routes and rules after it
// ("perch-segment-" + name), and those names are DNS labels of at most 63 characters.
const MaxNameLength = 40

var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// Problem is one thing wrong with a segment: the field (relative to the segment, as
// "match.header.regex") and what is wrong with it.
type Problem struct {
	Field string
	Msg   string
}

// Check lists what is wrong with the segment, or nothing.
func (s Segment) Check() []Problem {
	var out []Problem
	bad := func(field, format string, args ...any) {
		out = append(out, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case s.Name == "":
		bad("name", "missing: name the segment (employees, beta, eu-west)")
	case len(s.Name) > MaxNameLength || !namePattern.MatchString(s.Name):
		bad("name", "%q: use 1 to %d lower-case letters, digits and '-', starting and ending with a letter or digit (providers name routes after it)", s.Name, MaxNameLength)
	}
	return append(out, s.Match.Check()...)
}

// Check lists what is wrong with the match, or nothing; fields are relative to the segment
// ("match.header.name").
func (m Match) Check() []Problem {
	var out []Problem
	bad := func(field, format string, args ...any) {
		out = append(out, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case m.Header == nil && m.Cookie == nil:
		bad("match", "missing: give header {name, value} or {name, regex}, or cookie {name, value}")
	case m.Header != nil && m.Cookie != nil:
		bad("match", "give header or cookie, not both")
	case m.Header != nil:
		h := m.Header
		if !isToken(h.Name) {
			bad("match.header.name", "%q is not a header name", h.Name)
		}
		switch {
		case h.Value == "" && h.Regex == "":
			bad("match.header", "give value (exact) or regex")
		case h.Value != "" && h.Regex != "":
			bad("match.header", "give value or regex, not both")
		case h.Value != "" && !isFieldValue(h.Value):
			bad("match.header.value", "%q holds characters a header value cannot", h.Value)
		case h.Regex != "":
			if _, err := regexp.Compile(h.Regex); err != nil {
				bad("match.header.regex", "%v", err)
			}
		}
	default:
		c := m.Cookie
		if !isToken(c.Name) {
			bad("match.cookie.name", "%q is not a cookie name", c.Name)
		}
		if c.Value == "" || !isCookieValue(c.Value) {
			bad("match.cookie.value", "%q: want a cookie value (no spaces, quotes, commas, semicolons or backslashes)", c.Value)
		}
	}
	return out
}

// Err is Check's problems as one error, or nil.
func (s Segment) Err() error {
	p := s.Check()
	if len(p) == 0 {
		return nil
	}
	parts := make([]string, len(p))
	for i, x := range p {
		parts[i] = x.Field + ": " + x.Msg
	}
	return fmt.Errorf("segment %q: %s", s.Name, strings.Join(parts, "; "))
}

// String describes the match in a few words: `X-Employee: true`, `X-Beta ~ ^v2-`,
// `cookie beta=1`.
func (m Match) String() string {
	switch {
	case m.Header != nil && m.Header.Regex != "":
		return fmt.Sprintf("%s ~ %s", m.Header.Name, m.Header.Regex)
	case m.Header != nil:
		return fmt.Sprintf("%s: %s", m.Header.Name, m.Header.Value)
	case m.Cookie != nil:
		return fmt.Sprintf("cookie %s=%s", m.Cookie.Name, m.Cookie.Value)
	}
	return "?"
}

// Regex is a regular expression matching a whole Cookie header that carries this cookie,
// for providers that match cookies as a header.
func (c CookieMatch) Regex() string {
	return `(.*;\s*)?` + regexp.QuoteMeta(c.Name) + "=" + regexp.QuoteMeta(c.Value) + `(\s*;.*)?`
}

// String is the segment's name and match: `employees (X-Employee: true)`.
func (s Segment) String() string { return fmt.Sprintf("%s (%s)", s.Name, s.Match) }

// Names are the segments' names, in order.
func Names(segs []Segment) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.Name
	}
	return out
}

// Rule is a segment compiled for matching requests.
type Rule struct {
	Segment string
	// Header is the canonical header name to read, or "" when Cookie is.
	Header string
	Cookie string
	value  string
	regex  *regexp.Regexp
}

// Compile checks segs' matches and makes their rules, in order.
func Compile(segs []Segment) ([]Rule, error) {
	rules := make([]Rule, 0, len(segs))
	seen := map[string]bool{}
	for _, s := range segs {
		// Any name will do for matching; the stricter rule is for providers that name routes
		// after it.
		var probs []string
		for _, p := range s.Match.Check() {
			probs = append(probs, p.Field+": "+p.Msg)
		}
		switch {
		case s.Name == "":
			return nil, errors.New("a segment without a name")
		case len(probs) > 0:
			return nil, fmt.Errorf("segment %q: %s", s.Name, strings.Join(probs, "; "))
		case seen[s.Name]:
			return nil, fmt.Errorf("segment %q given twice", s.Name)
		}
		seen[s.Name] = true
		r := Rule{Segment: s.Name}
		switch {
		case s.Match.Header != nil:
			r.Header = http.CanonicalHeaderKey(s.Match.Header.Name)
			r.value = s.Match.Header.Value
			if re := s.Match.Header.Regex; re != "" {
				r.regex = regexp.MustCompile(`^(?:` + re + `)$`) // the whole value, as Envoy matches
			}
		default:
			r.Cookie, r.value = s.Match.Cookie.Name, s.Match.Cookie.Value
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// Matches reports whether a request whose header (or cookie) has value is in the segment; an
// absent header or cookie is the empty value, which no rule matches.
func (r Rule) Matches(value string) bool {
	if value == "" {
		return false
	}
	if r.regex != nil {
		return r.regex.MatchString(value)
	}
	return value == r.value
}

// isToken reports whether s is an RFC 9110 token, what header and cookie names are made of.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// isFieldValue reports whether s may be a header's value: visible characters and inner spaces.
func isFieldValue(s string) bool {
	if strings.TrimSpace(s) != s {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isCookieValue reports whether s is made of RFC 6265 cookie-octets.
func isCookieValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == ',' || c == ';' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	return true
}
