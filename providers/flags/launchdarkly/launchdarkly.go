// Package launchdarkly sets a boolean feature flag's percentage rollout in LaunchDarkly
// through its REST API: the default ("fallthrough") rule of one environment, changed with a
// semantic patch (updateFallthroughVariationOrRollout). It reads the rule before changing it,
// so a rollback can put it back as it was.
package launchdarkly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/perchhq/perch/providers/flags/internal/rest"
)

// DefaultAddress is LaunchDarkly's API (its US instance).
const DefaultAddress = "https://app.launchdarkly.com"

// Config says which LaunchDarkly project and environment perch sets flags in.
type Config struct {
	// Address is the API's address (empty: DefaultAddress; the EU or federal instance, or a
	// relay, otherwise).
	Address string
	// Token is an API access token with writer rights on the project.
	Token       string
	Project     string
	Environment string
	// HTTP makes the requests (nil: a client with a 30 s timeout).
	HTTP *http.Client
}

// Client reads and sets flags' default rules in one environment.
type Client struct {
	api                  rest.Client
	project, environment string
	address              string
}

// semanticPatch is the content type of a semantic patch.
const semanticPatch = "application/json; domain-model=launchdarkly.semanticpatch"

// New makes a client; it does not connect until asked.
func New(cfg Config) (*Client, error) {
	addr := cfg.Address
	if addr == "" {
		addr = DefaultAddress
	}
	u, err := url.Parse(addr)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("launchDarkly: address: want an http:// or https:// URL, got %q", addr)
	case cfg.Token == "":
		return nil, errors.New("launchDarkly: no token")
	case cfg.Project == "" || cfg.Environment == "":
		return nil, errors.New("launchDarkly: name the project and the environment")
	}
	base := strings.TrimRight(addr, "/")
	c := &Client{project: cfg.Project, environment: cfg.Environment, address: base}
	c.api = rest.Client{
		Name:    "LaunchDarkly at " + base,
		Base:    base + "/api/v2",
		Header:  http.Header{"Authorization": {cfg.Token}, "Ld-Api-Version": {"20240415"}},
		HTTP:    cfg.HTTP,
		Message: message,
		Hint: func(status int) string {
			switch status {
			case http.StatusUnauthorized:
				return "check flags.launchDarkly.token: an API access token"
			case http.StatusForbidden:
				return fmt.Sprintf("the token may not change flags in project %s, environment %s (a writer role, or approvals required there)", cfg.Project, cfg.Environment)
			case http.StatusNotFound:
				return fmt.Sprintf("check the flag's key and flags.launchDarkly.project (%s)", cfg.Project)
			}
			return ""
		},
		RetryAt: func(h http.Header, _ time.Time) time.Time {
			// X-Ratelimit-Reset is when the limit resets, in Unix milliseconds.
			ms, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-Ratelimit-Reset")), 10, 64)
			if err != nil || ms <= 0 {
				return time.Time{}
			}
			return time.UnixMilli(ms)
		},
	}
	return c, nil
}

// String says what the client sets, for perch traffic.
func (c *Client) String() string {
	return fmt.Sprintf("LaunchDarkly at %s (project %s, environment %s)", c.address, c.project, c.environment)
}

// apiError is the body of LaunchDarkly's error answers.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func message(body []byte) string {
	var e apiError
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	if e.Code != "" {
		return e.Code + ": " + e.Message
	}
	return e.Message
}

// flag is the part of GET /api/v2/flags/{projectKey}/{featureFlagKey} perch reads.
type flag struct {
	Key          string             `json:"key"`
	Kind         string             `json:"kind"`
	Variations   []variation        `json:"variations"`
	Environments map[string]flagEnv `json:"environments"`
}

type variation struct {
	ID    string          `json:"_id"`
	Value json.RawMessage `json:"value"`
	Name  string          `json:"name,omitempty"`
}

type flagEnv struct {
	On           bool            `json:"on"`
	OffVariation *int            `json:"offVariation"`
	Fallthrough  json.RawMessage `json:"fallthrough"`
}

// fallthroughRule is an environment's default rule: one variation, or a rollout over them.
type fallthroughRule struct {
	Variation *int     `json:"variation,omitempty"`
	Rollout   *rollout `json:"rollout,omitempty"`
}

type rollout struct {
	Variations []weighted `json:"variations"`
	BucketBy   string     `json:"bucketBy,omitempty"`
	// ContextKind is the context kind bucketed by ("user" when absent).
	ContextKind string `json:"contextKind,omitempty"`
}

// weighted is one variation's share of a rollout, in thousandths of a percent.
type weighted struct {
	Variation int `json:"variation"`
	Weight    int `json:"weight"`
}

// patch is a semantic patch request.
type patch struct {
	EnvironmentKey string        `json:"environmentKey"`
	Comment        string        `json:"comment,omitempty"`
	Instructions   []instruction `json:"instructions"`
}

// instruction is updateFallthroughVariationOrRollout: VariationID, or RolloutWeights (by
// variation ID, thousandths of a percent, summing to 100000).
type instruction struct {
	Kind               string         `json:"kind"`
	VariationID        string         `json:"variationId,omitempty"`
	RolloutWeights     map[string]int `json:"rolloutWeights,omitempty"`
	RolloutBucketBy    string         `json:"rolloutBucketBy,omitempty"`
	RolloutContextKind string         `json:"rolloutContextKind,omitempty"`
}

// saved is what ReadFlag records of the default rule before perch changes it.
type saved struct {
	Fallthrough json.RawMessage `json:"fallthrough"`
}

const fullWeight = 100000 // 100%, in thousandths of a percent

func (c *Client) path(key string) string {
	return "/flags/" + url.PathEscape(c.project) + "/" + url.PathEscape(key)
}

// read gets the flag and its environment, and finds its true and false variations.
func (c *Client) read(ctx context.Context, key string) (f flag, env flagEnv, on, off int, err error) {
	q := url.Values{"env": {c.environment}}
	if err = c.api.Do(ctx, http.MethodGet, c.path(key)+"?"+q.Encode(), "", nil, &f); err != nil {
		return f, env, 0, 0, err
	}
	env, ok := f.Environments[c.environment]
	if !ok {
		return f, env, 0, 0, fmt.Errorf("flag %s has no environment %s (check flags.launchDarkly.environment)", key, c.environment)
	}
	on, off = -1, -1
	for i, v := range f.Variations {
		switch strings.TrimSpace(string(v.Value)) {
		case "true":
			on = i
		case "false":
			off = i
		}
	}
	if len(f.Variations) != 2 || on < 0 || off < 0 {
		return f, env, 0, 0, fmt.Errorf("flag %s is not a boolean flag (variations true and false): perch sets the share of users a feature is on for", key)
	}
	return f, env, on, off, nil
}

// percentOf is the share of users a rule serves the true variation, or -1 when it is none
// perch can say in whole percent.
func percentOf(rule fallthroughRule, on int) int {
	switch {
	case rule.Variation != nil && *rule.Variation == on:
		return 100
	case rule.Variation != nil:
		return 0
	case rule.Rollout != nil:
		for _, w := range rule.Rollout.Variations {
			if w.Variation == on {
				if w.Weight%1000 != 0 {
					return -1
				}
				return w.Weight / 1000
			}
		}
		return 0
	}
	return -1
}

// ReadFlag is the percent of users the environment's default rule serves the flag's true
// variation (the off variation's value while targeting is off; -1 for a rollout not in whole
// percent), and the rule as it is, for RestoreFlag.
func (c *Client) ReadFlag(ctx context.Context, key string) (int, json.RawMessage, error) {
	_, env, on, _, err := c.read(ctx, key)
	if err != nil {
		return 0, nil, err
	}
	var rule fallthroughRule
	if err := json.Unmarshal(env.Fallthrough, &rule); err != nil {
		return 0, nil, fmt.Errorf("flag %s: unreadable default rule: %w", key, err)
	}
	p := percentOf(rule, on)
	if !env.On {
		p = 0
		if env.OffVariation != nil && *env.OffVariation == on {
			p = 100
		}
	}
	state, _ := json.Marshal(saved{Fallthrough: env.Fallthrough})
	return p, state, nil
}

// SetFlagPercent makes the environment's default rule a percentage rollout serving true to
// percent of users (bucketed as the rule's rollout was, if it was one). A flag whose targeting
// is off is refused: the rule would not be what users get.
func (c *Client) SetFlagPercent(ctx context.Context, key string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("launchDarkly: flag %s: %d%% is outside 0..100", key, percent)
	}
	f, env, on, off, err := c.read(ctx, key)
	if err != nil {
		return err
	}
	if !env.On {
		return fmt.Errorf("flag %s has targeting off in environment %s: turn it on in LaunchDarkly for its rollout to count", key, c.environment)
	}
	var rule fallthroughRule
	if err := json.Unmarshal(env.Fallthrough, &rule); err != nil {
		return fmt.Errorf("flag %s: unreadable default rule: %w", key, err)
	}
	if percentOf(rule, on) == percent && rule.Rollout != nil {
		return nil
	}
	in := instruction{Kind: "updateFallthroughVariationOrRollout", RolloutWeights: map[string]int{
		f.Variations[on].ID: percent * 1000, f.Variations[off].ID: fullWeight - percent*1000,
	}}
	if rule.Rollout != nil {
		in.RolloutBucketBy, in.RolloutContextKind = rule.Rollout.BucketBy, rule.Rollout.ContextKind
	}
	return c.patch(ctx, key, fmt.Sprintf("perch: %s to %d%% of the canary's users", key, percent), in)
}

// RestoreFlag puts the environment's default rule back as ReadFlag found it.
func (c *Client) RestoreFlag(ctx context.Context, key string, state json.RawMessage) error {
	var was saved
	var rule fallthroughRule
	if err := json.Unmarshal(state, &was); err != nil || json.Unmarshal(was.Fallthrough, &rule) != nil {
		return fmt.Errorf("launchDarkly: flag %s: the recorded default rule is unreadable", key)
	}
	f, _, _, _, err := c.read(ctx, key)
	if err != nil {
		return err
	}
	id := func(i int) (string, error) {
		if i < 0 || i >= len(f.Variations) {
			return "", fmt.Errorf("flag %s no longer has variation %d", key, i)
		}
		return f.Variations[i].ID, nil
	}
	in := instruction{Kind: "updateFallthroughVariationOrRollout"}
	switch {
	case rule.Variation != nil:
		if in.VariationID, err = id(*rule.Variation); err != nil {
			return err
		}
	case rule.Rollout != nil:
		in.RolloutWeights = map[string]int{}
		for _, w := range rule.Rollout.Variations {
			v, err := id(w.Variation)
			if err != nil {
				return err
			}
			in.RolloutWeights[v] = w.Weight
		}
		in.RolloutBucketBy, in.RolloutContextKind = rule.Rollout.BucketBy, rule.Rollout.ContextKind
	default:
		return fmt.Errorf("launchDarkly: flag %s: the recorded default rule has neither a variation nor a rollout", key)
	}
	return c.patch(ctx, key, "perch: rolled back, default rule restored", in)
}

func (c *Client) patch(ctx context.Context, key, comment string, in instruction) error {
	body := patch{EnvironmentKey: c.environment, Comment: comment, Instructions: []instruction{in}}
	return c.api.Do(ctx, http.MethodPatch, c.path(key), semanticPatch, body, nil)
}
