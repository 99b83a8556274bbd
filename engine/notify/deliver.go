package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// destination is one notify entry: its queue and the worker that empties it.
type destination struct {
	target
	queue  *queue
	client *http.Client
	opts   Options
}

// run sends the queue's messages in order until the queue is closed and empty or ctx ends.
func (d *destination) run(ctx context.Context) {
	for {
		m, ok := d.queue.take(ctx)
		if !ok {
			return
		}
		if err := d.deliver(ctx, m); err != nil {
			d.queue.undelivered(m)
			d.opts.Logf("notify: %s: %q not delivered: %v", d.name, m.headline, err)
		}
	}
}

// deliver posts m, retrying failures that may pass (network errors, timeouts, 429 and 5xx)
// with exponential backoff, up to Options.MaxAttempts.
func (d *destination) deliver(ctx context.Context, m message) error {
	body, err := d.render(m)
	if err != nil {
		return err
	}
	delay := d.opts.Backoff
	for attempt := 1; ; attempt++ {
		retryAfter, err := d.post(ctx, body)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("perch is exiting (attempt %d)", attempt)
		}
		var final permanentError
		if errors.As(err, &final) || attempt == d.opts.MaxAttempts {
			return fmt.Errorf("attempt %d of %d: %w", attempt, d.opts.MaxAttempts, err)
		}
		wait := max(delay, min(retryAfter, d.opts.MaxBackoff))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("perch is exiting (attempt %d: %w)", attempt, err)
		case <-timer.C:
		}
		delay = min(2*delay, d.opts.MaxBackoff)
	}
}

// permanentError is a failure retrying cannot fix (a 4xx other than 429).
type permanentError struct{ error }

// post makes one attempt, bounded by Options.AttemptTimeout. It returns how long the
// receiver asked to wait (Retry-After) along with a retryable error.
func (d *destination) post(ctx context.Context, body []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return 0, permanentError{fmt.Errorf("build request: %w", redact(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "perch")
	for name, value := range d.headers {
		req.Header.Set(name, value)
	}
	res, err := d.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return 0, fmt.Errorf("no answer within %s", d.opts.AttemptTimeout)
		}
		return 0, redact(err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
	if res.StatusCode/100 == 2 {
		return 0, nil
	}
	err = fmt.Errorf("%s: %s", res.Status, firstLine(answer))
	if res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
		return retryAfter(res.Header.Get("Retry-After")), err
	}
	return 0, permanentError{err}
}

// redact drops the URL from a client error: it may hold a secret token.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func retryAfter(v string) time.Duration {
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	return 0
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if s == "" {
		return "(no body)"
	}
	return s
}

// render is the body posted for m: Slack's {"text": …} or the generic webhook document.
func (d *destination) render(m message) ([]byte, error) {
	if d.slack {
		lines := m.text("• ")
		for i := range lines {
			lines[i] = slackEscape(lines[i])
		}
		lines[0] = fmt.Sprintf("*%s* %s", slackEscape(m.label()), lines[0])
		return json.Marshal(struct {
			Text string `json:"text"`
		}{strings.Join(lines, "\n")})
	}
	doc := WebhookDocument{
		Rollout: m.rollout,
		Canary:  m.canary,
		Message: m.label() + ": " + strings.Join(m.text("- "), "\n"),
		Phase:   m.phase,
		Step:    m.step,
		Steps:   m.steps,
		Event:   m.event,
		Missed:  m.dropped + m.failed,
	}
	if m.weight >= 0 {
		doc.Weight = &m.weight
	}
	return json.Marshal(doc)
}

// WebhookDocument is the JSON body a generic webhook receives for each notification.
type WebhookDocument struct {
	Rollout string       `json:"rollout"`
	Canary  *spec.Canary `json:"canary,omitempty"` // what is being released, as the rollout file says
	Message string       `json:"message"`          // for people: what happened and the numbers behind it
	Phase   engine.Phase `json:"phase"`
	Step    int          `json:"step"` // 1 for the first, as everywhere (event.step too)
	Steps   int          `json:"steps"`
	Weight  *int         `json:"weight"` // the canary percent the provider last confirmed; null before any
	Event   engine.Event `json:"event"`  // the journal event this notification is about
	// Missed counts earlier notifications this receiver did not get (queue full or
	// delivery failed); the message says which.
	Missed int `json:"missed,omitempty"`
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
