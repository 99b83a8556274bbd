package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Limits of the connections to a backend.
const (
	// maxIdlePerUpstream is how many idle keep-alive connections the proxy keeps per
	// backend, enough for a busy one (the standard library keeps 2).
	maxIdlePerUpstream = 512
	// upstreamIdle is how long an idle connection to a backend is kept: shorter than most
	// servers' own keep-alive (nginx 75 s), so the proxy rarely reuses one the backend is
	// closing; when it does, a request that is safe to repeat is sent again on a new one.
	upstreamIdle = 50 * time.Second
	// connectTimeout bounds a connection to a backend (TCP, and TLS for https).
	connectTimeout = 10 * time.Second
	// upstreamBufferSize bounds a backend's response head, as nginx's proxy_buffer_size
	// does (its default is 4 or 8 KiB).
	upstreamBufferSize = 16 << 10
)

// upstream is one backend: where it is, and the idle connections to it. The proxy's own
// client talks to it from the goroutine serving the request, with no goroutine per
// connection: the standard library's transport hands each request to two more goroutines,
// which costs more than anything else a proxy does per request.
type upstream struct {
	v      version
	addr   string // host:port
	host   string // for TLS server names
	prefix string // the URL's path, prepended to every request's
	tls    bool
	dialer net.Dialer

	mu     sync.Mutex
	idle   []*upConn // most recently used last
	active map[*upConn]struct{}
	// retired: its proxy was replaced (Reconfigured), it keeps no idle connection; closed: the
	// proxy closed, it makes none.
	retired, closed bool
}

// upConn is one connection to a backend.
type upConn struct {
	net.Conn
	up       *upstream
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
	reused   bool // it served a request before this one
	// writeDeadline says a write deadline is set, which a later request must clear.
	writeDeadline bool
}

func newUpstream(v version, target *url.URL) *upstream {
	addr := target.Host
	if target.Port() == "" {
		if target.Scheme == "https" {
			addr = net.JoinHostPort(target.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(target.Hostname(), "80")
		}
	}
	return &upstream{
		v:      v,
		addr:   addr,
		host:   target.Hostname(),
		prefix: strings.TrimSuffix(target.EscapedPath(), "/"),
		tls:    target.Scheme == "https",
		dialer: net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second},
		active: map[*upConn]struct{}{},
	}
}

// get lends an idle connection, or dials a new one.
func (u *upstream) get(ctx context.Context) (*upConn, error) {
	now := time.Now()
	u.mu.Lock()
	for n := len(u.idle); n > 0; n = len(u.idle) {
		c := u.idle[n-1]
		u.idle[n-1] = nil
		u.idle = u.idle[:n-1]
		if now.Sub(c.lastUsed) < upstreamIdle {
			u.active[c] = struct{}{}
			u.mu.Unlock()
			c.reused = true
			return c, nil
		}
		go c.Close() // stale: the backend may be closing it too
	}
	u.mu.Unlock()
	return u.dial(ctx)
}

func (u *upstream) dial(ctx context.Context) (*upConn, error) {
	nc, err := u.dialer.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, err
	}
	if u.tls {
		tc := tls.Client(nc, &tls.Config{ServerName: u.host, NextProtos: []string{"http/1.1"}})
		hctx, cancel := context.WithTimeout(ctx, connectTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	c := &upConn{Conn: nc, up: u, br: bufio.NewReaderSize(nc, upstreamBufferSize), bw: bufio.NewWriterSize(nc, 4<<10)}
	u.mu.Lock()
	closed := u.closed
	if !closed {
		u.active[c] = struct{}{}
	}
	u.mu.Unlock()
	if closed {
		nc.Close()
		return nil, net.ErrClosed
	}
	return c, nil
}

// put takes back a connection whose last exchange ended cleanly.
func (u *upstream) put(c *upConn) {
	c.lastUsed = time.Now()
	u.mu.Lock()
	delete(u.active, c)
	if u.retired || u.closed || len(u.idle) >= maxIdlePerUpstream {
		u.mu.Unlock()
		c.Close()
		return
	}
	u.idle = append(u.idle, c)
	u.mu.Unlock()
}

// discard closes a connection that cannot serve another request.
func (c *upConn) discard() {
	u := c.up
	u.mu.Lock()
	delete(u.active, c)
	u.mu.Unlock()
	c.Close()
}

// retire closes the idle connections and refuses new ones; those in use close when their
// requests end.
func (u *upstream) retire() {
	u.mu.Lock()
	idle := u.idle
	u.idle, u.retired = nil, true
	u.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// close closes every connection to the backend, idle or in use, and refuses new ones.
func (u *upstream) close() {
	u.mu.Lock()
	conns := u.idle
	for c := range u.active {
		conns = append(conns, c)
	}
	u.idle, u.active, u.closed = nil, map[*upConn]struct{}{}, true
	u.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// path is the request target sent to the backend: the backend URL's path, then the
// client's (as sent, never normalized: the backend decides what a path means).
func (u *upstream) path(uri []byte) []byte {
	if u.prefix == "" {
		return uri
	}
	if len(uri) == 0 || uri[0] != '/' {
		uri = append([]byte{'/'}, uri...)
	}
	return append([]byte(u.prefix), uri...)
}
