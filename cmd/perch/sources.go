package main

import (
	"context"
	"fmt"
	"os"
	"regexp"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/envexpand"
	"github.com/perchhq/perch/metrics/datadog"
	"github.com/perchhq/perch/metrics/newrelic"
	"github.com/perchhq/perch/metrics/web"
)

// expandField reads the environment variables a field of the rollout file names, pointing
// at the field when one is unset.
func expandField(s *spec.Rollout, path, value string) (string, error) {
	v, err := envexpand.Expand(value, os.Getenv)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", s.Where(path), path, err)
	}
	return v, nil
}

// datadogSource connects metrics.datadog; ${NAME} in the keys and the address is read from
// the environment.
func datadogSource(_ context.Context, s *spec.Rollout, _ engine.Router, _ connectFlags) (engine.Source, error) {
	d := s.Metrics.Datadog
	apiKey, err := expandField(s, "metrics.datadog.apiKey", string(d.APIKey))
	if err != nil {
		return nil, err
	}
	appKey, err := expandField(s, "metrics.datadog.appKey", string(d.AppKey))
	if err != nil {
		return nil, err
	}
	address, err := expandField(s, "metrics.datadog.address", d.Address)
	if err != nil {
		return nil, err
	}
	return datadog.New(datadog.Config{Site: d.Site, APIKey: apiKey, AppKey: appKey, Address: address})
}

// newRelicSource connects metrics.newRelic; ${NAME} in the key and the address is read from
// the environment.
func newRelicSource(_ context.Context, s *spec.Rollout, _ engine.Router, _ connectFlags) (engine.Source, error) {
	n := s.Metrics.NewRelic
	key, err := expandField(s, "metrics.newRelic.apiKey", string(n.APIKey))
	if err != nil {
		return nil, err
	}
	address, err := expandField(s, "metrics.newRelic.address", n.Address)
	if err != nil {
		return nil, err
	}
	return newrelic.New(newrelic.Config{AccountID: n.AccountID, APIKey: key, Region: n.Region, Address: address})
}

// envRefName finds the names of ${NAME} references.
var envRefName = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// credentialHeader matches the names of headers that carry credentials.
var credentialHeader = regexp.MustCompile(`(?i)auth|key|token|secret|cookie|password`)

// webSource connects metrics.web; ${NAME} in the URL, the header values and the address is
// read from the environment, and the values read are kept out of its errors.
func webSource(_ context.Context, s *spec.Rollout, _ engine.Router, _ connectFlags) (engine.Source, error) {
	w := s.Metrics.Web
	cfg := web.Config{JSONPath: w.JSONPath, Headers: map[string]string{}}
	var err error
	if cfg.URL, err = expandField(s, "metrics.web.url", w.URL); err != nil {
		return nil, err
	}
	if cfg.Address, err = expandField(s, "metrics.web.address", w.Address); err != nil {
		return nil, err
	}
	refs := []string{w.URL}
	for name, v := range w.Headers {
		if cfg.Headers[name], err = expandField(s, "metrics.web.headers."+name, string(v)); err != nil {
			return nil, err
		}
		refs = append(refs, string(v))
		if credentialHeader.MatchString(name) {
			cfg.Secrets = append(cfg.Secrets, cfg.Headers[name]) // written as the value itself, perhaps
		}
	}
	for _, text := range refs {
		for _, m := range envRefName.FindAllStringSubmatch(text, -1) {
			cfg.Secrets = append(cfg.Secrets, os.Getenv(m[1]))
		}
	}
	return web.New(cfg)
}
