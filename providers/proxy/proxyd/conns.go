package proxyd

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// conns is the client-facing listener: it accepts at most a fixed number of connections at
// once (more wait in the kernel's backlog until one closes) and closes keep-alive connections
// that wait longer than the idle timeout for their next request. The idle timeout is enforced
// here rather than by http.Server so that a reload can change it on the connections already
// open.
type conns struct {
	net.Listener
	slots  chan struct{}
	closed chan struct{}
	close  sync.Once
	idle   atomic.Int64 // a time.Duration

	mu   sync.Mutex
	open map[*conn]struct{}
}

func newConns(ln net.Listener, max int, idle time.Duration) *conns {
	c := &conns{Listener: ln, slots: make(chan struct{}, max), closed: make(chan struct{}), open: map[*conn]struct{}{}}
	c.idle.Store(int64(idle))
	go c.reap()
	return c
}

// Accept waits for a free slot, then for a connection.
func (c *conns) Accept() (net.Conn, error) {
	select {
	case c.slots <- struct{}{}:
	case <-c.closed:
		return nil, net.ErrClosed
	}
	nc, err := c.Listener.Accept()
	if err != nil {
		<-c.slots
		return nil, err
	}
	tc := &conn{Conn: nc, owner: c}
	c.mu.Lock()
	c.open[tc] = struct{}{}
	c.mu.Unlock()
	return tc, nil
}

// Close stops accepting; open connections stay until their server closes them.
func (c *conns) Close() error {
	c.close.Do(func() { close(c.closed) })
	return c.Listener.Close()
}

// setIdle changes the idle timeout, for open connections too.
func (c *conns) setIdle(d time.Duration) { c.idle.Store(int64(d)) }

// connState follows each connection between requests (fasthttp.Server.ConnState).
func (c *conns) connState(nc net.Conn, s fasthttp.ConnState) {
	tc, ok := nc.(*conn)
	if !ok {
		return
	}
	switch s {
	case fasthttp.StateIdle:
		tc.idleSince.Store(time.Now().UnixNano())
	case fasthttp.StateActive, fasthttp.StateHijacked, fasthttp.StateClosed:
		tc.idleSince.Store(0)
	case fasthttp.StateNew:
	}
}

// closeAll closes every open connection, when the drain time is up.
func (c *conns) closeAll() {
	c.mu.Lock()
	open := make([]*conn, 0, len(c.open))
	for tc := range c.open {
		open = append(open, tc)
	}
	c.mu.Unlock()
	for _, tc := range open {
		tc.Close()
	}
}

// reap closes the connections idle for longer than the idle timeout, checking a few times per
// timeout (at most every second), until the listener is closed.
func (c *conns) reap() {
	timer := time.NewTimer(c.reapEvery())
	defer timer.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-timer.C:
		}
		limit := time.Duration(c.idle.Load())
		now := time.Now().UnixNano()
		var stale []*conn
		c.mu.Lock()
		for tc := range c.open {
			if since := tc.idleSince.Load(); since != 0 && now-since > int64(limit) {
				stale = append(stale, tc)
			}
		}
		c.mu.Unlock()
		for _, tc := range stale {
			tc.Close()
		}
		timer.Reset(c.reapEvery())
	}
}

func (c *conns) reapEvery() time.Duration {
	return min(max(time.Duration(c.idle.Load())/4, 10*time.Millisecond), time.Second)
}

// count is how many client connections are open.
func (c *conns) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.open)
}

// conn is a client connection; closing it frees its slot.
type conn struct {
	net.Conn
	owner     *conns
	idleSince atomic.Int64 // Unix nanoseconds since the connection waits for a request; 0 if not
	closed    sync.Once
}

// NetConn is the connection accepted, for the proxy's look at whether the client left.
func (tc *conn) NetConn() net.Conn { return tc.Conn }

func (tc *conn) Close() error {
	err := tc.Conn.Close()
	tc.closed.Do(func() {
		tc.owner.mu.Lock()
		delete(tc.owner.open, tc)
		tc.owner.mu.Unlock()
		<-tc.owner.slots
	})
	return err
}
