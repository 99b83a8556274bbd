// Package apicall bounds the HTTP calls of perch's hosted metrics sources (Datadog, New
// Relic, any JSON endpoint): each request has a timeout, an answer is read up to a size, a
// rate-limited answer (429) is tried again after the wait it asks for when that fits in the
// look, and errors carry the vendor's message as one printable line, never the credentials.
package apicall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/perchhq/perch/internal/printable"
)

// Defaults of Limits.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxBytes     = 16 << 20
	DefaultMaxRetryWait = 10 * time.Second
	// MaxAttempts is how many times one query is sent while it is rate limited.
	MaxAttempts = 3
)

// ErrTooLarge is an answer longer than Limits.MaxBytes.
var ErrTooLarge = errors.New("answer too large")

// Limits bound a source's calls. The zero value takes the defaults.
type Limits struct {
	// Timeout bounds each request, reading the answer included (0: DefaultTimeout).
	Timeout time.Duration
	// MaxBytes is the longest answer read, after decompression (0: DefaultMaxBytes).
	MaxBytes int64
	// MaxRetryWait is the longest a rate-limited query waits before it is sent again; a
	// longer Retry-After fails the look, and the next look asks again (0: DefaultMaxRetryWait).
	MaxRetryWait time.Duration
	// Transport makes the requests (nil: http.DefaultTransport).
	Transport http.RoundTripper
}

// Client is an HTTP client that keeps to the limits: its answers' bodies fail with
// ErrTooLarge past MaxBytes.
func (l Limits) Client() *http.Client {
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	base := l.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Timeout: timeout, Transport: limitTransport{base: base, max: l.maxBytes()}}
}

func (l Limits) maxBytes() int64 {
	if l.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return l.MaxBytes
}

type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.Body != nil {
		resp.Body = &limitedBody{rc: resp.Body, left: t.max, max: t.max}
	}
	return resp, err
}

// limitedBody reads up to max bytes and fails, rather than stopping quietly, when there is
// more: a truncated answer would decode as something else or not at all.
type limitedBody struct {
	rc        io.ReadCloser
	left, max int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, b.max)
		} else {
			return 0, err
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// StatusError is an answer with an error status.
type StatusError struct {
	API    string // "Datadog", "New Relic", "web metrics"
	Status int
	// Message is the vendor's explanation, one printable line.
	Message string
	// RetryAfter is how long a rate-limited answer asked to wait (0: it did not say).
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s answered %d %s", e.API, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Status == http.StatusTooManyRequests {
		msg += " (rate limited"
		if e.RetryAfter > 0 {
			msg += "; retry after " + e.RetryAfter.Round(time.Second).String()
		}
		msg += ")"
	}
	return msg
}

// NewStatusError describes an error answer: its status, its Retry-After, and msg (the
// vendor's message, or the body itself), cut to one printable line.
func NewStatusError(api string, resp *http.Response, msg string) *StatusError {
	msg = printable.Line(strings.TrimSpace(msg))
	if r := []rune(msg); len(r) > 300 {
		msg = string(r[:300]) + "…"
	}
	e := &StatusError{API: api, Status: resp.StatusCode, Message: msg}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = RetryAfter(resp.Header, time.Now())
	}
	return e
}

// RetryAfter reads how long an answer asks to wait: Retry-After (seconds or an HTTP date),
// else X-RateLimit-Reset (seconds until the limit resets, as Datadog sends it).
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 && s < 1<<31 {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0)
		}
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64); err == nil && s >= 0 && s < 1<<31 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// Retry runs call until it succeeds or fails other than by a rate limit. A rate-limited call
// is sent again after the wait it asked for (at least a second), at most MaxAttempts times in
// all, while the wait is no longer than MaxRetryWait and ctx has time for it; otherwise its
// error is returned, and the look it belongs to fails.
func (l Limits) Retry(ctx context.Context, call func() error) error {
	limit := l.MaxRetryWait
	if limit <= 0 {
		limit = DefaultMaxRetryWait
	}
	for attempt := 1; ; attempt++ {
		err := call()
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusTooManyRequests || attempt == MaxAttempts {
			return err
		}
		wait := max(se.RetryAfter, time.Second)
		if wait > limit {
			return fmt.Errorf("%w: not waiting longer than %s; the next look asks again", err, limit)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("%w: the look ends before then; the next look asks again", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// Do sends req and returns the body of a 2xx answer. Any other answer is a *StatusError
// whose message message reads from the body (nil, or "" back: the body itself). Errors name
// api, never req's URL, which may hold credentials.
func Do(client *http.Client, req *http.Request, api string, message func([]byte) string) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", api, Unwrap(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", api, Unwrap(err))
	}
	if resp.StatusCode/100 != 2 {
		msg := ""
		if message != nil {
			msg = message(body)
		}
		if msg == "" {
			msg = string(body)
		}
		return nil, NewStatusError(api, resp, msg)
	}
	return body, nil
}

// Unwrap drops the request's method and URL that net/http puts around its errors, saying
// instead whether the request timed out.
func Unwrap(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if ue.Timeout() {
		return fmt.Errorf("timed out: %w", ue.Err)
	}
	return ue.Err
}
