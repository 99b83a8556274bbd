package alerts

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/envexpand"
)

// minSecret is the length below which a token or password draws a warning: the receiver
// answers as fast as it is asked, so a short secret can be guessed.
const minSecret = 16

// credentials are what a request must carry to be heard. Secrets are kept as SHA-256 digests
// and compared in constant time, so neither their content nor their length shows in how long
// a refusal takes.
type credentials struct {
	bearer     bool
	basic      bool
	https      bool // alerts.tls is set: plain HTTP is refused, whatever serves the receiver
	clientCert bool // a certificate verified against alerts.tls.clientCA
	token      [sha256.Size]byte
	user, pass [sha256.Size]byte
}

// newCredentials expands the alerts block's credentials with getenv. warn collects what is
// allowed but unwise.
func newCredentials(cfg *spec.Alerts, getenv func(string) string, warn func(string)) (credentials, error) {
	var c credentials
	secret := func(path string, v spec.Secret) ([sha256.Size]byte, error) {
		s, err := envexpand.Expand(string(v), getenv)
		switch {
		case err != nil:
			return [sha256.Size]byte{}, fmt.Errorf("%s: %w", path, err)
		case s == spec.RedactedSecret:
			return [sha256.Size]byte{}, fmt.Errorf("%s: %q is what journals record in place of a secret, not a secret", path, s)
		case len(s) < minSecret:
			warn(fmt.Sprintf("%s is %d characters long: a short secret can be guessed; use %d or more random ones (openssl rand -hex 16)", path, len(s), 2*minSecret))
		}
		return sha256.Sum256([]byte(s)), nil
	}
	var err error
	switch {
	case cfg.BearerToken != "" && cfg.BasicAuth != nil:
		return c, errors.New("alerts: set bearerToken or basicAuth, not both")
	case cfg.BearerToken != "":
		c.bearer = true
		if c.token, err = secret("alerts.bearerToken", cfg.BearerToken); err != nil {
			return c, err
		}
	case cfg.BasicAuth != nil:
		c.basic = true
		user, err := envexpand.Expand(cfg.BasicAuth.Username, getenv)
		if err != nil {
			return c, fmt.Errorf("alerts.basicAuth.username: %w", err)
		}
		c.user = sha256.Sum256([]byte(user))
		if c.pass, err = secret("alerts.basicAuth.password", cfg.BasicAuth.Password); err != nil {
			return c, err
		}
	}
	c.https = cfg.TLS != nil
	c.clientCert = c.https && cfg.TLS.ClientCA != ""
	return c, nil
}

// check is "" when the request carries the credentials, else why it does not (for the log).
func (c *credentials) check(req *http.Request) string {
	if c.https && req.TLS == nil {
		return "not over HTTPS"
	}
	if c.clientCert && (req.TLS == nil || len(req.TLS.VerifiedChains) == 0) {
		return "no verified client certificate"
	}
	switch {
	case c.bearer:
		scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "no bearer token"
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if subtle.ConstantTimeCompare(got[:], c.token[:]) != 1 {
			return "wrong bearer token"
		}
	case c.basic:
		user, pass, ok := req.BasicAuth()
		if !ok {
			return "no basic auth credentials"
		}
		u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
		// Both compared whatever the first gives: a wrong user takes as long as a wrong password.
		if subtle.ConstantTimeCompare(u[:], c.user[:])&subtle.ConstantTimeCompare(p[:], c.pass[:]) != 1 {
			return "wrong basic auth credentials"
		}
	}
	return ""
}

// challenge is the WWW-Authenticate header of a 401.
func (c *credentials) challenge() string {
	switch {
	case c.bearer:
		return `Bearer realm="perch"`
	case c.basic:
		return `Basic realm="perch", charset="UTF-8"`
	}
	return ""
}

// loadTLS reads the certificate, key and client CA the alerts block names, with ${NAME}
// expanded; nil when it asks for plain HTTP.
func loadTLS(t *spec.AlertsTLS, getenv func(string) string) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	var paths [3]string
	for i, p := range []struct{ path, value string }{{"alerts.tls.cert", t.Cert}, {"alerts.tls.key", t.Key}, {"alerts.tls.clientCA", t.ClientCA}} {
		v, err := envexpand.Expand(p.value, getenv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.path, err)
		}
		paths[i] = v
	}
	pair, err := tls.LoadX509KeyPair(paths[0], paths[1])
	if err != nil {
		return nil, fmt.Errorf("alerts.tls: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if paths[2] != "" {
		pem, err := os.ReadFile(paths[2])
		if err != nil {
			return nil, fmt.Errorf("alerts.tls.clientCA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("alerts.tls.clientCA: no PEM certificate in %s", paths[2])
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}
