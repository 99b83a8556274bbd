package remote

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/charmbracelet/log"
)

// Defaults of Limits, after OpenSSH's sshd where it has the same setting.
const (
	// DefaultLoginGrace is sshd's LoginGraceTime default.
	DefaultLoginGrace = 30 * time.Second
	// DefaultMaxStartups is the start of sshd's MaxStartups default (10:30:100).
	DefaultMaxStartups = 10
	// DefaultMaxSessions bounds the TUIs one perch draws at once.
	DefaultMaxSessions = 100
	// DefaultMaxSessionsPerKey is sshd's MaxSessions default (there per connection).
	DefaultMaxSessionsPerKey = 10
	// DefaultKeepaliveInterval is how often a client is asked whether it is alive.
	DefaultKeepaliveInterval = 15 * time.Second
	// DefaultKeepaliveCountMax is sshd's ClientAliveCountMax default.
	DefaultKeepaliveCountMax = 3
)

// The largest terminal a session is drawn for; a client asking for more gets this much.
// perch's memory and CPU per session grow with the terminal's area, and a client may ask
// for any size (8000×8000 is 64 million cells, gigabytes of frames). 500×250 is more than a
// person reads a TUI on: a 4K display at an 8×16-pixel font is 480×135, or 270×240 turned
// on its side.
const (
	MaxWidth  = 500
	MaxHeight = 250
)

// channelsPerConn bounds the session channels one connection may have open at once
// (sshd's MaxSessions).
const channelsPerConn = 10

// Limits bound what SSH clients may hold open. A zero field takes its default.
type Limits struct {
	// LoginGrace is how long a connection may go without a session: from the TCP connect
	// through the handshake and login to its first session, and again after its last
	// session ends. Then it is closed.
	LoginGrace time.Duration
	// MaxStartups is how many connections may be without a session at once. A new
	// connection beyond it closes the oldest of them, so a crowd of silent connections
	// cannot keep an operator out, and cannot grow past this many.
	MaxStartups int
	// MaxSessions bounds the sessions (TUIs) open at once; MaxSessionsPerKey those of one
	// key. A session beyond either is told why and closed.
	MaxSessions       int
	MaxSessionsPerKey int
	// KeepaliveInterval is how often each connection with a session is sent a
	// keepalive@openssh.com request; after KeepaliveCountMax go unanswered the connection
	// is closed as dead. Negative turns keepalives off.
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.LoginGrace <= 0 {
		l.LoginGrace = DefaultLoginGrace
	}
	def(&l.MaxStartups, DefaultMaxStartups)
	def(&l.MaxSessions, DefaultMaxSessions)
	def(&l.MaxSessionsPerKey, DefaultMaxSessionsPerKey)
	def(&l.KeepaliveCountMax, DefaultKeepaliveCountMax)
	if l.KeepaliveInterval == 0 {
		l.KeepaliveInterval = DefaultKeepaliveInterval
	}
	return l
}

// tracker counts connections and sessions against the Limits.
type tracker struct {
	limits Limits
	logger *log.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	idle     []*conn // connections without a session, the one idle longest first
	sessions int
	perKey   map[string]int
	closed   bool
	evicted  int       // since the last warning
	warned   time.Time // of the last warning about evictions
}

func newTracker(limits Limits, logger *log.Logger) *tracker {
	return &tracker{limits: limits, logger: logger, conns: map[*conn]struct{}{}, perKey: map[string]int{}}
}

// conn is one client connection as the tracker sees it.
type conn struct {
	net.Conn
	t         *tracker
	sessions  int // guarded by t.mu
	channels  int // guarded by t.mu
	timer     *time.Timer
	closeOnce sync.Once
	keepalive sync.Once
}

// Close closes the connection and forgets it.
func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.t.forget(c)
		err = c.Conn.Close()
	})
	return err
}

// add registers a new connection, which has no session yet. It returns nil, having closed
// nc, once the server is shutting down.
func (t *tracker) add(nc net.Conn) *conn {
	c := &conn{Conn: nc, t: t}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		nc.Close()
		return nil
	}
	t.conns[c] = struct{}{}
	t.idleLocked(c)
	return c
}

// idleLocked starts c's login grace, making room among the connections without a session
// by closing the one that has waited longest.
func (t *tracker) idleLocked(c *conn) {
	for len(t.idle) >= t.limits.MaxStartups {
		oldest := t.idle[0]
		t.idle = t.idle[1:]
		oldest.timer.Stop()
		go oldest.Close()
		t.evicted++
	}
	if t.evicted > 0 && time.Since(t.warned) >= 10*time.Second {
		t.logger.Warn("closed connections without a session, oldest first, to admit new ones", "closed", t.evicted, "max_startups", t.limits.MaxStartups)
		t.evicted, t.warned = 0, time.Now()
	}
	t.idle = append(t.idle, c)
	c.timer = time.AfterFunc(t.limits.LoginGrace, func() { t.expire(c) })
}

// expire closes c if it still has no session when its grace runs out.
func (t *tracker) expire(c *conn) {
	t.mu.Lock()
	i := slices.Index(t.idle, c)
	if i >= 0 {
		t.idle = slices.Delete(t.idle, i, i+1)
	}
	t.mu.Unlock()
	if i >= 0 {
		t.logger.Info("closed a connection without a session", "remote", c.RemoteAddr(), "login_grace", t.limits.LoginGrace)
		c.Close()
	}
}

func (t *tracker) forget(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
	if i := slices.Index(t.idle, c); i >= 0 {
		t.idle = slices.Delete(t.idle, i, i+1)
		c.timer.Stop()
	}
}

// openChannel counts a session channel on c, or refuses it past channelsPerConn.
func (t *tracker) openChannel(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.channels >= channelsPerConn {
		return false
	}
	c.channels++
	return true
}

func (t *tracker) closeChannel(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c.channels--
}

// openSession counts a session of key on c, or says why it may not open. The returned
// function ends it.
func (t *tracker) openSession(c *conn, key, who string) (func(), error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sessions >= t.limits.MaxSessions {
		return nil, fmt.Errorf("perch: all %d sessions this perch serves are taken; try again later", t.limits.MaxSessions)
	}
	if n := t.perKey[key]; n >= t.limits.MaxSessionsPerKey {
		return nil, fmt.Errorf("perch: %s has as many sessions open as one key may (%d); close one first", who, n)
	}
	t.sessions++
	t.perKey[key]++
	if c != nil {
		c.sessions++
		if i := slices.Index(t.idle, c); i >= 0 {
			t.idle = slices.Delete(t.idle, i, i+1)
			c.timer.Stop()
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.sessions--
			if t.perKey[key]--; t.perKey[key] == 0 {
				delete(t.perKey, key)
			}
			if c == nil {
				return
			}
			c.sessions--
			if _, open := t.conns[c]; open && c.sessions == 0 && !t.closed {
				t.idleLocked(c)
			}
		})
	}, nil
}

// closeAll closes every connection, for the end of Serve: the SSH server's own Close only
// reaches connections past their handshake.
func (t *tracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	all := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		all = append(all, c)
	}
	t.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}
