// Package proxy is perch's own weighted HTTP reverse proxy: it sends a share of requests to a
// canary backend and the rest to a stable one, observes every request it forwards, and answers
// perch's builtin metrics queries from those observations, so a rollout needs neither a service
// mesh nor Prometheus. It satisfies engine.Router (SetWeight, Weight) and its Source satisfies
// engine.Source, without importing the engine.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
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
	// OverrideHeader names a header whose value "canary" or "stable" pins a request.
	OverrideHeader string
	// Resolution and Retention size the builtin metrics source (zero: the defaults).
	Resolution, Retention time.Duration
	// Transport forwards requests (nil: a copy of http.DefaultTransport tuned for a proxy).
	Transport http.RoundTripper
	// ErrorLog receives the proxy's own errors (nil: the standard logger).
	ErrorLog *log.Logger
}

// Proxy routes each request to stable or canary and records what happened. Its zero value is
// not usable; make one with New.
type Proxy struct {
	canaryPercent atomic.Int32
	backends      [2]*httputil.ReverseProxy
	stickyHeader  string
	stickyCookie  string
	override      string
	segments      segmentTable
	source        *Source
	exporter      *exporter
}

// New builds a proxy that starts with all traffic on stable.
func New(cfg Config) (*Proxy, error) {
	if cfg.StickyHeader != "" && cfg.StickyCookie != "" {
		return nil, errors.New("proxy: sticky by a header or by a cookie, not both")
	}
	source, err := newSource(cfg.Resolution, cfg.Retention)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		stickyHeader: http.CanonicalHeaderKey(cfg.StickyHeader),
		stickyCookie: cfg.StickyCookie,
		override:     http.CanonicalHeaderKey(cfg.OverrideHeader),
		source:       source,
		exporter:     newExporter(),
	}
	transport := cfg.Transport
	if transport == nil {
		transport = defaultTransport()
	}
	buffers := &bufferPool{}
	for v, raw := range map[version]string{stable: cfg.Stable, canary: cfg.Canary} {
		target, err := url.Parse(raw)
		if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
			return nil, fmt.Errorf("proxy: %s backend: want an http:// or https:// URL, got %q", v, raw)
		}
		p.backends[v] = &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.SetXForwarded()
				r.Out.Host = r.In.Host // the backends see the host the client asked for
			},
			Transport:    timedTransport{transport},
			ErrorHandler: errorHandler,
			ErrorLog:     cfg.ErrorLog,
			BufferPool:   buffers,
		}
	}
	return p, nil
}

// defaultTransport keeps enough idle connections per backend for a busy proxy (the standard
// library keeps 2) and never asks for compression the client did not ask for.
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 512
	t.DisableCompression = true
	return t
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers: without a pool it allocates one per
// request, which costs more than anything else the proxy does.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }

// statusClientClosed is recorded (nginx's convention) when the client went away before the
// backend answered: not the backend's fault, so not an error.
const statusClientClosed = 499

// errorHandler answers 502 when the backend cannot be reached or fails mid-request.
func errorHandler(w http.ResponseWriter, r *http.Request, _ error) {
	if r.Context().Err() != nil {
		w.WriteHeader(statusClientClosed)
		return
	}
	w.WriteHeader(http.StatusBadGateway)
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

// ServeHTTP forwards the request to the side chosen for it and records the outcome.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v := p.choose(r)
	rec := &recorder{ResponseWriter: w, start: time.Now()}
	r = r.WithContext(context.WithValue(r.Context(), recorderKey{}, rec))
	defer func() {
		aborted := recover()
		p.record(v, rec, aborted != nil)
		if aborted != nil {
			panic(aborted) // http.ErrAbortHandler: let the server drop the connection
		}
	}()
	p.backends[v].ServeHTTP(rec, r)
}

// record counts one finished request; a response cut short by the upstream counts as a 502.
func (p *Proxy) record(v version, rec *recorder, aborted bool) {
	now := time.Now()
	code := rec.status
	switch {
	case aborted:
		code = http.StatusBadGateway
	case code == 0:
		code = http.StatusOK // the handler wrote nothing: net/http answers 200
	}
	d := time.Duration(rec.upstream.Load())
	if d == 0 {
		d = now.Sub(rec.start) // the upstream never answered: the client waited this long
	}
	p.source.observe(v, code >= 500, d, now)
	p.exporter.observe(v, code, d)
}

// choose picks the side for a request: an override header first, then the segments routed
// to the canary, then the sticky hash, else a coin weighted by the current canary percent.
func (p *Proxy) choose(r *http.Request) version {
	if p.override != "" {
		switch strings.ToLower(strings.TrimSpace(r.Header.Get(p.override))) {
		case "canary":
			return canary
		case "stable":
			return stable
		}
	}
	if p.inSegment(requestHeaders{r}) {
		return canary
	}
	percent := int(p.canaryPercent.Load())
	switch {
	case percent <= 0:
		return stable
	case percent >= 100:
		return canary
	}
	if key, ok := p.stickyKey(r); ok {
		if stickyBucket(key) < uint64(percent)*stickyBucketsPerPercent {
			return canary
		}
		return stable
	}
	if rand.IntN(100) < percent {
		return canary
	}
	return stable
}

func (p *Proxy) stickyKey(r *http.Request) (string, bool) {
	switch {
	case p.stickyHeader != "":
		v := r.Header.Get(p.stickyHeader)
		return v, v != ""
	case p.stickyCookie != "":
		c, err := r.Cookie(p.stickyCookie)
		if err != nil || c.Value == "" {
			return "", false
		}
		return c.Value, true
	}
	return "", false
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

// recorder notes the status a response was sent with, and how long the upstream took.
type recorder struct {
	http.ResponseWriter
	start    time.Time
	status   int
	upstream atomic.Int64 // request written to the answer's first byte, a Duration; 0 if none came
}

// recorderKey finds a request's recorder in its context, for timedTransport.
type recorderKey struct{}

// timedTransport measures the upstream's own time, from the request written to the first byte
// of its answer: a request's latency is the backend's, not the client's upload or download
// time nor the proxy's own queueing (a slow client or a busy proxy says nothing about the
// version behind it). For a websocket it is the time to the 101, not the connection's lifetime.
type timedTransport struct{ next http.RoundTripper }

func (t timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec, ok := req.Context().Value(recorderKey{}).(*recorder)
	if !ok {
		return t.next.RoundTrip(req)
	}
	// The two hooks run on the transport's writing and reading goroutines, and an upstream
	// may answer before it has read the whole request.
	start := time.Now()
	var written atomic.Int64 // since start; 0 until the request is written
	trace := &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { written.Store(int64(max(time.Since(start), 1))) },
		GotFirstResponseByte: func() {
			at := time.Since(start)
			if w := time.Duration(written.Load()); w > 0 {
				at -= w
			}
			rec.upstream.Store(int64(at))
		},
	}
	return t.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 || (r.status >= 100 && r.status < 200 && r.status != http.StatusSwitchingProtocols) {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Hijack hands the connection over for a protocol switch (websockets); ReverseProxy writes
// the 101 itself on the hijacked connection, so it is recorded here.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines of the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
