// Package proxy is perch's own weighted HTTP reverse proxy: it sends a share of requests to a
// canary backend and the rest to a stable one, observes every request it forwards, and answers
// perch's builtin metrics queries from those observations, so a rollout needs neither a service
// mesh nor Prometheus. It satisfies engine.Router (SetWeight, Weight) and its Source satisfies
// engine.Source, without importing the engine.
package proxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is what a Proxy forwards to and how it picks a side.
type Config struct {
	Stable, Canary string // backend URLs: http(s)://host[:port][/path prefix]
	// StickyHeader or StickyCookie (at most one) names the value hashed to keep a user on one
	// side; requests without it are split at random.
	StickyHeader, StickyCookie string
	// OverrideHeader names a header whose value "canary" or "stable" pins a request; it takes
	// effect only on requests that also carry OverrideToken in TokenHeader. Both or neither.
	OverrideHeader, OverrideToken string
	// Timeouts bound the waits on clients and backends (zeros take the defaults).
	Timeouts Timeouts
	// MaxConnections caps the client connections served at once; more are refused with a 503
	// (0: DefaultMaxConnections).
	MaxConnections int
	// Resolution and Retention size the builtin metrics source (zero: the defaults).
	Resolution, Retention time.Duration
	// ErrorLog receives the proxy's own errors (nil: the standard logger).
	ErrorLog *log.Logger
}

// Timeouts bound how long the proxy waits. Zeros take the defaults, chosen like nginx's.
type Timeouts struct {
	// ResponseHeader is how long a backend may take to start answering once the request is
	// written; past it the client gets a 504, counted as an error of that version.
	ResponseHeader time.Duration
	// Idle is how long a client's keep-alive connection may wait for its next request.
	Idle time.Duration
	// Body is the longest pause while a body streams: the client's upload (408, the client's
	// fault) or the backend's response (504, the backend's).
	Body time.Duration
}

// Defaults of Timeouts and the connection cap.
const (
	// DefaultResponseHeaderTimeout is half nginx's proxy_read_timeout (60 s): long enough for
	// any request an interactive service answers, short enough that a hung canary is judged
	// on 504s before most clients give up on it.
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleTimeout           = 75 * time.Second // nginx's keepalive_timeout
	DefaultBodyTimeout           = 60 * time.Second // nginx's client_body_timeout and proxy_read_timeout
	DefaultMaxConnections        = 10_000
)

// TokenHeader carries the override token: a request is pinned by its override header only
// when this header holds the configured token.
const TokenHeader = "X-Perch-Token"

func (t Timeouts) withDefaults() Timeouts {
	if t.ResponseHeader <= 0 {
		t.ResponseHeader = DefaultResponseHeaderTimeout
	}
	if t.Idle <= 0 {
		t.Idle = DefaultIdleTimeout
	}
	if t.Body <= 0 {
		t.Body = DefaultBodyTimeout
	}
	return t
}

// Proxy routes each request to stable or canary and records what happened. Its zero value is
// not usable; make one with New.
type Proxy struct {
	canaryPercent atomic.Int32
	upstreams     [2]*upstream // stable, canary
	stickyHeader  string
	stickyCookie  string
	override      string
	overrideToken []byte
	segments      segmentTable
	timeouts      Timeouts
	maxConns      int
	source        *Source
	exporter      *exporter
	errorLog      *log.Logger
	// closing ends when the proxy closes; stopAll ends it.
	closing context.Context
	stopAll context.CancelFunc
	// Requests whose client left before their backend answered, still waiting for it to
	// answer or time out (see abandon).
	abandonMu     sync.Mutex
	abandonClosed bool
	abandonedN    int
	abandoned     sync.WaitGroup
	// heads lends the buffers request heads are built in; copyBuffers those ServeHTTP copies
	// bodies through.
	heads, copyBuffers sync.Pool
}

// New builds a proxy that starts with all traffic on stable.
func New(cfg Config) (*Proxy, error) {
	if cfg.StickyHeader != "" && cfg.StickyCookie != "" {
		return nil, errors.New("proxy: sticky by a header or by a cookie, not both")
	}
	if (cfg.OverrideHeader == "") != (cfg.OverrideToken == "") {
		return nil, errors.New("proxy: an override header needs a token, and a token an override header")
	}
	source, err := newSource(cfg.Resolution, cfg.Retention)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		stickyHeader: cfg.StickyHeader,
		stickyCookie: cfg.StickyCookie,
		override:     cfg.OverrideHeader,
		timeouts:     cfg.Timeouts.withDefaults(),
		maxConns:     cfg.MaxConnections,
		source:       source,
		exporter:     newExporter(),
		errorLog:     cfg.ErrorLog,
	}
	p.closing, p.stopAll = context.WithCancel(context.Background())
	p.heads.New = func() any { b := make([]byte, 0, 2048); return &b }
	p.copyBuffers.New = func() any { b := make([]byte, 32<<10); return &b }
	if cfg.OverrideToken != "" {
		p.overrideToken = []byte(cfg.OverrideToken)
	}
	if p.maxConns <= 0 {
		p.maxConns = DefaultMaxConnections
	}
	if p.errorLog == nil {
		p.errorLog = log.Default()
	}
	ups, err := upstreams(cfg.Stable, cfg.Canary)
	if err != nil {
		return nil, err
	}
	p.upstreams = *ups
	return p, nil
}

// upstreams checks the two backend URLs and makes their connection pools.
func upstreams(stableURL, canaryURL string) (*[2]*upstream, error) {
	var ups [2]*upstream
	for v, raw := range map[version]string{stable: stableURL, canary: canaryURL} {
		target, err := url.Parse(raw)
		if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" ||
			target.RawQuery != "" || target.Fragment != "" || target.User != nil {
			return nil, fmt.Errorf("proxy: %s backend: want an http:// or https:// URL with a host and at most a path, got %q", v, raw)
		}
		ups[v] = newUpstream(v, target)
	}
	return &ups, nil
}

// SetWeight sends canaryPercent (0..100) of new requests to the canary from the next request
// on. Sticky users move only from stable to canary as the weight grows.
func (p *Proxy) SetWeight(_ context.Context, canaryPercent int) error {
	if canaryPercent < 0 || canaryPercent > 100 {
		return fmt.Errorf("proxy: canary weight %d outside 0..100", canaryPercent)
	}
	p.canaryPercent.Store(int32(canaryPercent))
	return nil
}

// Weight is the canary percent in force.
func (p *Proxy) Weight(context.Context) (int, error) { return int(p.canaryPercent.Load()), nil }

// Source is the proxy's observations as a metrics source (metrics: {builtin: {}}).
func (p *Proxy) Source() *Source { return p.source }

// Close releases the proxy's backend connections and stops waiting for the backends of
// requests whose clients left; nothing more is recorded after it.
func (p *Proxy) Close() error {
	p.stopAll()
	p.abandonMu.Lock()
	p.abandonClosed = true
	p.abandonMu.Unlock()
	for _, u := range p.upstreams {
		u.close()
	}
	p.abandoned.Wait()
	return nil
}

// headers is the little the proxy reads of a request's headers to choose its side.
type headers interface {
	get(name string) string
	cookie(name string) string
}

// choose picks the side for a request: an override with its token first, then the segments
// routed to the canary, then the sticky hash, else a coin weighted by the current canary
// percent. overridden says the override decided, so the request is served but not analysed.
// At 0% no override reaches the canary: a rolled-back canary (whose segments the rollback
// removed) gets no traffic at all.
func (p *Proxy) choose(h headers) (v version, overridden bool) {
	percent := int(p.canaryPercent.Load())
	if p.override != "" {
		if want := h.get(p.override); want != "" {
			switch strings.ToLower(strings.TrimSpace(want)) {
			case "canary":
				if percent > 0 && p.tokenOK(h) {
					return canary, true
				}
			case "stable":
				if p.tokenOK(h) {
					return stable, true
				}
			}
		}
	}
	if p.inSegment(h) {
		return canary, false
	}
	switch {
	case percent <= 0:
		return stable, false
	case percent >= 100:
		return canary, false
	}
	if key, ok := p.stickyKey(h); ok {
		if stickyBucket(key) < uint64(percent)*stickyBucketsPerPercent {
			return canary, false
		}
		return stable, false
	}
	if rand.IntN(100) < percent {
		return canary, false
	}
	return stable, false
}

// tokenOK compares the request's token with the configured one in constant time, so its
// timing says nothing about how much of a guess was right.
func (p *Proxy) tokenOK(h headers) bool {
	return subtle.ConstantTimeCompare([]byte(h.get(TokenHeader)), p.overrideToken) == 1
}

func (p *Proxy) stickyKey(h headers) (string, bool) {
	var v string
	switch {
	case p.stickyHeader != "":
		v = h.get(p.stickyHeader)
	case p.stickyCookie != "":
		v = h.cookie(p.stickyCookie)
	}
	return v, v != ""
}

const stickyBucketsPerPercent = 100 // 10,000 buckets: weights move users in 0.01% slices

// stickyBucket maps a user's key to one of 10,000 buckets, the same in every process: a user
// is on canary while their bucket is below weight×100, so raising the weight only ever adds
// users to the canary. FNV-1a, then a 64-bit finalizer so similar keys spread evenly.
func stickyBucket(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h % (100 * stickyBucketsPerPercent)
}
