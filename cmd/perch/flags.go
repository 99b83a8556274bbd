package main

import (
	"context"
	"fmt"
	"os"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/envexpand"
	"github.com/perchhq/perch/providers/flags/flagd"
	"github.com/perchhq/perch/providers/flags/launchdarkly"
	"github.com/perchhq/perch/providers/flags/unleash"
)

// flagsFactory connects to the feature-flag system a rollout file names.
type flagsFactory func(ctx context.Context, spec *spec.Rollout) (engine.Flags, error)

// defaultFlags are the feature-flag systems, by spec.Flags.Kind(). ${NAME} in an address or
// a token is read from the environment.
func defaultFlags() map[string]flagsFactory {
	return map[string]flagsFactory{
		"unleash": func(_ context.Context, s *spec.Rollout) (engine.Flags, error) {
			u := s.Flags.Unleash
			address, token, err := expand(s, "flags.unleash", u.Address, string(u.Token))
			if err != nil {
				return nil, err
			}
			return unleash.New(unleash.Config{Address: address, Token: token, Project: u.Project, Environment: u.Environment})
		},
		"launchDarkly": func(_ context.Context, s *spec.Rollout) (engine.Flags, error) {
			l := s.Flags.LaunchDarkly
			address, token, err := expand(s, "flags.launchDarkly", l.Address, string(l.Token))
			if err != nil {
				return nil, err
			}
			return launchdarkly.New(launchdarkly.Config{Address: address, Token: token, Project: l.Project, Environment: l.Environment})
		},
		"flagd": func(_ context.Context, s *spec.Rollout) (engine.Flags, error) {
			return flagd.New(s.Flags.Flagd.File)
		},
	}
}

// expand reads the environment variables an address and a token name.
func expand(s *spec.Rollout, block, address, token string) (string, string, error) {
	a, err := envexpand.Expand(address, os.Getenv)
	if err != nil {
		return "", "", fmt.Errorf("%s: %s.address: %w", s.Where(block+".address"), block, err)
	}
	t, err := envexpand.Expand(token, os.Getenv)
	if err != nil {
		return "", "", fmt.Errorf("%s: %s.token: %w", s.Where(block+".token"), block, err)
	}
	return a, t, nil
}

// connectFlags builds the rollout's feature-flag system, or nil when it names none.
func (r registry) connectFlags(ctx context.Context, s *spec.Rollout) (engine.Flags, error) {
	kind := s.Flags.Kind()
	if kind == "" {
		return nil, nil
	}
	mk, ok := r.flags[kind]
	if !ok {
		return nil, badInput(fmt.Errorf("feature-flag system %q is not available in this build of perch", kind))
	}
	f, err := mk(ctx, s)
	if err != nil {
		return nil, runtimeError(fmt.Errorf("connect to %s: %w", kind, err))
	}
	return f, nil
}
