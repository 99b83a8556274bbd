// Package unleash sets a feature flag's percentage rollout in Unleash through its admin API:
// the rollout parameter of the flag's one flexibleRollout strategy in a project and
// environment. It reads the flag before changing it, so a rollback can put it back as it was.
package unleash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/perchhq/perch/providers/flags/internal/rest"
)

// Config says where Unleash is and which flags perch may set.
type Config struct {
	// Address is the Unleash server's API, as "https://unleash.example/api" (a server address
	// without /api gets it added).
	Address string
	// Token is an admin or personal access token allowed to change the project's strategies.
	Token string
	// Project is the flags' project ("default" when empty).
	Project string
	// Environment is the environment whose strategies perch sets ("production").
	Environment string
	// HTTP makes the requests (nil: a client with a 30 s timeout).
	HTTP *http.Client
}

// Client reads and sets flags' rollouts in one project and environment.
type Client struct {
	api                  rest.Client
	project, environment string
	address              string
}

// Strategy names and parameters perch reads and writes.
const (
	flexibleRollout = "flexibleRollout"
	// createdTitle marks a flexibleRollout strategy perch added to a flag that had none, so
	// a rollback removes that one and no other.
	createdTitle = "perch canary rollout"
)

// New makes a client; it does not connect until asked.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Address)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("unleash: address: want an http:// or https:// URL, got %q", cfg.Address)
	case cfg.Token == "":
		return nil, errors.New("unleash: no token")
	case cfg.Environment == "":
		return nil, errors.New("unleash: no environment")
	}
	base := strings.TrimRight(cfg.Address, "/")
	if !strings.HasSuffix(base, "/api") {
		base += "/api"
	}
	project := cfg.Project
	if project == "" {
		project = "default"
	}
	c := &Client{project: project, environment: cfg.Environment, address: base}
	c.api = rest.Client{
		Name:    "Unleash at " + base,
		Base:    base,
		Header:  http.Header{"Authorization": {cfg.Token}},
		HTTP:    cfg.HTTP,
		Message: message,
		Hint: func(status int) string {
			switch status {
			case http.StatusUnauthorized:
				return "check flags.unleash.token: an admin or personal access token"
			case http.StatusForbidden:
				return fmt.Sprintf("the token may not change strategies in project %s, environment %s", project, cfg.Environment)
			case http.StatusNotFound:
				return fmt.Sprintf("check the flag's name, flags.unleash.project (%s) and environment (%s)", project, cfg.Environment)
			}
			return ""
		},
	}
	return c, nil
}

// String says what the client sets, for perch traffic.
func (c *Client) String() string {
	return fmt.Sprintf("Unleash at %s (project %s, environment %s)", c.address, c.project, c.environment)
}

// apiError is the body of Unleash's error answers.
type apiError struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Message string `json:"message"`
	Details []struct {
		Message     string `json:"message"`
		Description string `json:"description"`
	} `json:"details"`
}

func message(body []byte) string {
	var e apiError
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	msg := e.Message
	if e.Name != "" {
		msg = e.Name + ": " + msg
	}
	for _, d := range e.Details {
		if d.Description != "" && d.Description != e.Message {
			msg += "; " + d.Description
		}
	}
	return msg
}

// featureEnvironment is GET …/features/{feature}/environments/{environment}.
type featureEnvironment struct {
	Name       string     `json:"name"`
	Enabled    bool       `json:"enabled"`
	Strategies []strategy `json:"strategies"`
}

// strategy is the part of a feature strategy perch reads.
type strategy struct {
	ID         string                     `json:"id"`
	Name       string                     `json:"name"`
	Title      *string                    `json:"title"`
	Disabled   *bool                      `json:"disabled"`
	Parameters map[string]json.RawMessage `json:"parameters"`
}

// createStrategy is the body of POST …/strategies.
type createStrategy struct {
	Name        string            `json:"name"`
	Title       string            `json:"title"`
	Disabled    bool              `json:"disabled"`
	Constraints []any             `json:"constraints"`
	Parameters  map[string]string `json:"parameters"`
}

// patchOp is one JSON Patch (RFC 6902) operation of PATCH …/strategies/{id}.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

// saved is what ReadFlag records of a flag's rollout before perch changes it: the strategy
// perch sets and its rollout then, or no strategy (perch adds one, and a rollback removes it).
type saved struct {
	StrategyID string `json:"strategyId,omitempty"`
	Rollout    string `json:"rollout,omitempty"`
}

func (c *Client) envPath(flag string) string {
	return fmt.Sprintf("/admin/projects/%s/features/%s/environments/%s",
		url.PathEscape(c.project), url.PathEscape(flag), url.PathEscape(c.environment))
}

func (c *Client) read(ctx context.Context, flag string) (featureEnvironment, error) {
	var fe featureEnvironment
	err := c.api.Do(ctx, http.MethodGet, c.envPath(flag), "", nil, &fe)
	return fe, err
}

// rolloutOf finds the flag's one enabled flexibleRollout strategy; others are the names of
// its other enabled strategies.
func rolloutOf(flag string, fe featureEnvironment) (s *strategy, others []string, err error) {
	for i := range fe.Strategies {
		st := &fe.Strategies[i]
		switch {
		case st.Disabled != nil && *st.Disabled:
		case st.Name != flexibleRollout:
			others = append(others, st.Name)
		case s != nil:
			return nil, nil, fmt.Errorf("flag %s has more than one flexibleRollout strategy in %s; perch sets one", flag, fe.Name)
		default:
			s = st
		}
	}
	return s, others, nil
}

// percentOf reads a strategy's rollout parameter ("25", or 25 from older servers).
func percentOf(s *strategy) (int, string, error) {
	raw := s.Parameters["rollout"]
	var text string
	if json.Unmarshal(raw, &text) != nil {
		text = string(raw)
	}
	p, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil || p < 0 || p > 100 {
		return 0, text, fmt.Errorf("strategy %s has rollout %s, not a percentage", s.ID, raw)
	}
	return p, text, nil
}

// ReadFlag is the flag's rollout in the environment: the percent of users its flexibleRollout
// strategy enables it for (0 while the flag is off in the environment; -1 when it has no
// flexibleRollout strategy), and what a RestoreFlag needs to put it back.
func (c *Client) ReadFlag(ctx context.Context, flag string) (int, json.RawMessage, error) {
	fe, err := c.read(ctx, flag)
	if err != nil {
		return 0, nil, err
	}
	s, _, err := rolloutOf(flag, fe)
	if err != nil {
		return 0, nil, err
	}
	if s == nil {
		state, _ := json.Marshal(saved{})
		return -1, state, nil
	}
	p, text, err := percentOf(s)
	if err != nil {
		return 0, nil, fmt.Errorf("flag %s: %w", flag, err)
	}
	state, _ := json.Marshal(saved{StrategyID: s.ID, Rollout: text})
	if !fe.Enabled {
		p = 0
	}
	return p, state, nil
}

// SetFlagPercent sets the rollout of the flag's flexibleRollout strategy to percent; a flag
// with no strategy at all gets one (removed again by RestoreFlag). A flag that is off in the
// environment, or whose other strategies would enable it regardless, is refused: a
// percentage there would not be what users get.
func (c *Client) SetFlagPercent(ctx context.Context, flag string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("unleash: flag %s: %d%% is outside 0..100", flag, percent)
	}
	fe, err := c.read(ctx, flag)
	if err != nil {
		return err
	}
	if !fe.Enabled {
		return fmt.Errorf("flag %s is off in environment %s: turn it on in Unleash for its rollout to count", flag, c.environment)
	}
	s, others, err := rolloutOf(flag, fe)
	switch {
	case err != nil:
		return err
	case s == nil && len(others) > 0:
		return fmt.Errorf("flag %s has strategies %s in %s and no flexibleRollout: they would enable it whatever perch sets; add a flexibleRollout strategy for perch to set",
			flag, strings.Join(others, ", "), c.environment)
	case s == nil:
		body := createStrategy{Name: flexibleRollout, Title: createdTitle, Constraints: []any{},
			Parameters: map[string]string{"rollout": strconv.Itoa(percent), "stickiness": "default", "groupId": flag}}
		return c.api.Do(ctx, http.MethodPost, c.envPath(flag)+"/strategies", "", body, nil)
	}
	if p, _, err := percentOf(s); err == nil && p == percent {
		return nil
	}
	return c.patchRollout(ctx, flag, s.ID, strconv.Itoa(percent))
}

func (c *Client) patchRollout(ctx context.Context, flag, id, rollout string) error {
	ops := []patchOp{{Op: "replace", Path: "/parameters/rollout", Value: rollout}}
	return c.api.Do(ctx, http.MethodPatch, c.envPath(flag)+"/strategies/"+url.PathEscape(id), "", ops, nil)
}

// RestoreFlag puts the flag's rollout back as ReadFlag found it: the strategy's rollout as
// it was, or the strategy perch added removed.
func (c *Client) RestoreFlag(ctx context.Context, flag string, state json.RawMessage) error {
	var was saved
	if err := json.Unmarshal(state, &was); err != nil {
		return fmt.Errorf("unleash: flag %s: the recorded rollout is unreadable: %w", flag, err)
	}
	if was.StrategyID != "" {
		return c.patchRollout(ctx, flag, was.StrategyID, was.Rollout)
	}
	fe, err := c.read(ctx, flag)
	if err != nil {
		return err
	}
	for _, s := range fe.Strategies {
		if s.Name == flexibleRollout && s.Title != nil && *s.Title == createdTitle {
			return c.api.Do(ctx, http.MethodDelete, c.envPath(flag)+"/strategies/"+url.PathEscape(s.ID), "", nil, nil)
		}
	}
	return nil // perch's strategy is gone already
}
