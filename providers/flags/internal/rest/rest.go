// Package rest is what perch's feature-flag clients share to call a vendor's JSON admin API:
// one request with its auth header, the answer decoded, an error answer worded with the
// vendor's own message, and rate limits honoured (a 429 waits its Retry-After when the call's
// deadline allows, then tries again).
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client calls one API.
type Client struct {
	// Name says which API, for messages ("Unleash at https://unleash.example/api").
	Name string
	// Base is the URL paths are appended to, without a trailing slash.
	Base string
	// Header is sent with every request (the credentials).
	Header http.Header
	// HTTP makes the requests (nil: one with a 30 s timeout).
	HTTP *http.Client
	// Message reads the vendor's error body into one line; "" when it is not one of theirs.
	Message func(body []byte) string
	// Hint adds advice for an error status (which setting to check), or "".
	Hint func(status int) string
	// RetryAt reads a rate-limited answer's headers for when to try again, beyond
	// Retry-After (LaunchDarkly's X-Ratelimit-Reset, say); zero if they do not say.
	RetryAt func(h http.Header, now time.Time) time.Time
}

// Bounds of a call: answers are read up to maxAnswer bytes; a rate-limited call is tried at
// most maxAttempts times, waiting at most maxWait each time.
const (
	maxAnswer   = 8 << 20
	maxAttempts = 3
	maxWait     = 30 * time.Second
	callTimeout = 30 * time.Second
)

// Error is an error answer.
type Error struct {
	Method, Path string
	Status       int
	Message      string
	// RetryAfter is how long a rate-limited (429) or unavailable (503) API asked to wait.
	RetryAfter time.Duration
	api        string
	hint       string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s %s: %d %s", e.api, e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (rate limited: retry after %s)", e.RetryAfter.Round(time.Second))
	}
	if e.hint != "" {
		msg += " (" + e.hint + ")"
	}
	return msg
}

// StatusOf is the HTTP status of an error answer in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Do sends method path (under Base) with in as its JSON body (nil: none) of contentType
// ("": application/json), and decodes the answer into out (nil: ignored).
func (c *Client) Do(ctx context.Context, method, path, contentType string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	if contentType == "" {
		contentType = "application/json"
	}
	for attempt := 1; ; attempt++ {
		data, err := c.once(ctx, method, path, contentType, body)
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusTooManyRequests && attempt < maxAttempts && c.wait(ctx, e.RetryAfter) {
			continue
		}
		if err != nil {
			return err
		}
		if out == nil || len(bytes.TrimSpace(data)) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s: %s %s: not the answer expected: %w", c.Name, method, path, err)
		}
		return nil
	}
}

// wait sleeps d (at least a second, at most maxWait) unless ctx would end first; it reports
// whether it waited.
func (c *Client) wait(ctx context.Context, d time.Duration) bool {
	d = max(d, time.Second)
	if d > maxWait {
		return false
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (c *Client) once(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: callTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", c.Name, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: reading the answer: %w", c.Name, method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return data, nil
	}
	e := &Error{Method: method, Path: path, Status: resp.StatusCode, api: c.Name}
	if c.Message != nil {
		e.Message = c.Message(data)
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(data))
	}
	if len(e.Message) > 300 {
		e.Message = e.Message[:300] + "…"
	}
	if c.Hint != nil {
		e.hint = c.Hint(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = c.retryAfter(resp.Header, time.Now())
	}
	return nil, e
}

// retryAfter reads Retry-After (seconds or an HTTP date), else the vendor's own header.
func (c *Client) retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0)
		}
	}
	if c.RetryAt != nil {
		if t := c.RetryAt(h, now); !t.IsZero() {
			return max(t.Sub(now), 0)
		}
	}
	return 0
}
