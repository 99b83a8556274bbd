// Package alerts receives Prometheus Alertmanager's webhook notifications and turns a firing
// alert that matches the rollout file's alerts.rollbackOn into an immediate rollback; other
// alerts are recorded in the journal as notes, one by one while they are few and summed up
// once they are many. It hears only senders with the credentials the alerts block names.
package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// PayloadVersion is the version of Alertmanager's webhook payload perch reads.
const PayloadVersion = "4"

// Alert statuses in a payload.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Payload is the part of Alertmanager's webhook body perch uses; other fields are ignored.
type Payload struct {
	Version string `json:"version"`
	Status  string `json:"status"`
	// TruncatedAlerts counts alerts Alertmanager left out of this body (its max_alerts).
	TruncatedAlerts int     `json:"truncatedAlerts"`
	Alerts          []Alert `json:"alerts"`
}

// Alert is one alert of a payload.
type Alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	Fingerprint string            `json:"fingerprint"`
}

// ParsePayload decodes and checks a webhook body: one JSON object of version "4" whose alerts
// are each firing or resolved. Its errors are one line, fit to answer Alertmanager with.
func ParsePayload(body []byte) (*Payload, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var p Payload
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("invalid JSON: more than one value in the body")
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("invalid JSON after the payload: %w", err)
	}
	if p.Version != PayloadVersion {
		return nil, fmt.Errorf("unsupported payload version %q: perch reads Alertmanager's webhook payload version %q", p.Version, PayloadVersion)
	}
	for i, a := range p.Alerts {
		if a.Status != StatusFiring && a.Status != StatusResolved {
			return nil, fmt.Errorf("alerts[%d]: status %q: want %q or %q", i, a.Status, StatusFiring, StatusResolved)
		}
	}
	return &p, nil
}

// Name is the alert's alertname label, or its fingerprint if it has none, made safe to journal
// and show (see clean) and cut to 80 characters.
func (a Alert) Name() string {
	switch {
	case a.Labels["alertname"] != "":
		return clean(a.Labels["alertname"], maxName)
	case a.Fingerprint != "":
		return clean(a.Fingerprint, maxName)
	}
	return "unnamed"
}

// Longest texts taken from an alert, in characters.
const (
	maxName    = 80
	maxSummary = 200
)

// clean makes text from an alert, which anyone able to raise one chose, fit for the journal,
// the terminal and notifications: control and bidirectional-formatting characters (which
// could move a terminal's cursor, colour it, break a line or reorder what is shown) and
// invalid UTF-8 become U+FFFD, and text beyond limit characters is cut, ending in "…".
func clean(s string, limit int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == limit {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) || unicode.In(r, unicode.Bidi_Control, unicode.Zl, unicode.Zp) || r == utf8.RuneError {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Matches reports whether the alert has every label of rule, each with rule's value.
func (a Alert) Matches(rule map[string]string) bool {
	for name, value := range rule {
		if got, ok := a.Labels[name]; !ok || got != value {
			return false
		}
	}
	return true
}

// MatchesAny reports whether the alert matches at least one of rules. Empty rules are never
// written (the rollout file's validation refuses them); one would match every alert.
func (a Alert) MatchesAny(rules []map[string]string) bool {
	return slices.ContainsFunc(rules, a.Matches)
}

// identity names one occurrence of an alert in one status: its labels, when it started and
// its status. Alertmanager sends a group's alerts again whenever the group changes, so the
// same identity arriving twice is the same news.
func (a Alert) identity() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		fmt.Fprintf(&b, "%q=%q,", k, a.Labels[k])
	}
	fmt.Fprintf(&b, "@%d/%s", a.StartsAt.UnixNano(), a.Status)
	return b.String()
}
