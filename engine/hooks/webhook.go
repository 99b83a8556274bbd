package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/envexpand"
)

// Payload is the JSON document a webhook hook POSTs.
type Payload struct {
	Rollout string      `json:"rollout"`
	On      spec.HookOn `json:"on"`
	Step    int         `json:"step"` // 1 for the first
	Weight  int         `json:"weight"`
	Canary  string      `json:"canary,omitempty"`
}

// webhook POSTs the payload and reads a bounded answer; a 2xx passes.
func (r Runner) webhook(ctx context.Context, h spec.Hook, v spec.HookVars) Result {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(h.Webhook.Timeout))
	defer cancel()
	u, err := envexpand.Expand(h.Webhook.URL, r.getenv)
	if err == nil {
		u, err = v.Expand(u, true)
	}
	if err != nil {
		return Result{Outcome: Failed, Error: "url: " + err.Error()}
	}
	body, _ := json.Marshal(Payload{Rollout: v.Rollout, On: h.On, Step: v.Step, Weight: v.Weight, Canary: v.Canary})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return Result{Outcome: Failed, Error: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "perch-hook")
	for name, raw := range h.Webhook.Headers {
		val, err := envexpand.Expand(raw, r.getenv)
		if err != nil {
			return Result{Outcome: Failed, Error: fmt.Sprintf("header %s: %v", name, err)}
		}
		req.Header.Set(name, val)
	}
	client := &http.Client{CheckRedirect: sameHost}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			o := ended(ctx)
			msg := "cancelled: the rollout no longer needs it"
			if o == TimedOut {
				msg = fmt.Sprintf("no answer within its timeout of %s", h.Webhook.Timeout)
			}
			return Result{Outcome: o, Error: msg}
		}
		return Result{Outcome: Failed, Error: err.Error()}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, MaxOutput))
	res := Result{Status: resp.StatusCode, Output: string(answer)}
	if resp.StatusCode/100 == 2 {
		res.Outcome = OK
	} else {
		res.Outcome = Failed
		res.Error = "HTTP " + resp.Status
	}
	return res
}

// sameHost follows a redirect only to the same scheme and host, and only a few times: a
// hook's headers carry credentials meant for its own server.
func sameHost(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	switch {
	case len(via) > maxRedirects:
		return fmt.Errorf("more than %d redirects", maxRedirects)
	case req.URL.Scheme != first.Scheme || req.URL.Host != first.Host:
		return errors.New("refused a redirect to " + req.URL.Scheme + "://" + req.URL.Host + ": a hook is only redirected within its own host")
	}
	return nil
}
