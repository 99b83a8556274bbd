package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Load sends requests at a steady rate to a URL over real HTTP, each from one of Users users
// (named in UserHeader, so sticky routing keeps each on one side), never more than Concurrency
// at once: a request that would exceed it is skipped and counted, not queued.
//
// It costs little, so that what the demo measures is the proxy and the backends rather than
// the load: Concurrency keep-alive connections, each owned by one goroutine that writes a
// request and reads its answer, with no client library between them and the socket.
type Load struct {
	Target      string
	Rate        float64 // requests per second
	Concurrency int
	Users       int
	UserHeader  string

	sent, skipped, failed atomic.Int64
}

// LoadStats is what a load run did.
type LoadStats struct {
	Sent, Skipped, Failed int64 // failed: no HTTP answer at all
}

// Stats is what the load has done so far.
func (l *Load) Stats() LoadStats {
	return LoadStats{Sent: l.sent.Load(), Skipped: l.skipped.Load(), Failed: l.failed.Load()}
}

// loadTick is how often the generator wakes to send what is due.
const loadTick = 5 * time.Millisecond

// requestTimeout bounds one request: a backend that never answers costs a connection, not
// the generator.
const requestTimeout = 10 * time.Second

// Run sends requests until ctx ends, then waits for those in flight (which ctx cancels).
func (l *Load) Run(ctx context.Context) {
	target, err := url.Parse(l.Target)
	if err != nil || target.Host == "" {
		return // Start builds the target from the proxy's own address
	}
	// Unbuffered: a request is handed over only to a connection that is idle now, so at most
	// Concurrency are in flight and none waits in a queue.
	due := make(chan struct{})
	var workers sync.WaitGroup
	defer workers.Wait()
	for range l.Concurrency {
		w := &loadConn{load: l, addr: target.Host, path: target.RequestURI(), host: target.Host}
		workers.Go(func() { w.serve(ctx, due) })
	}
	ticker := time.NewTicker(loadTick)
	defer ticker.Stop()
	last := time.Now()
	owed := 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			// After a stall (a loaded machine) send at most one burst of Concurrency.
			owed = min(owed+l.Rate*now.Sub(last).Seconds(), float64(l.Concurrency))
			last = now
		}
		for ; owed >= 1; owed-- {
			select {
			case due <- struct{}{}:
				l.sent.Add(1)
			default:
				l.skipped.Add(1)
			}
		}
	}
}

// loadConn is one keep-alive connection of a Load and the goroutine that owns it.
type loadConn struct {
	load             *Load
	addr, path, host string
	conn             net.Conn
	reader           *bufio.Reader
	unwatch          func() bool // stops ctx's end from cutting conn short
	request          []byte
}

func (c *loadConn) serve(ctx context.Context, due <-chan struct{}) {
	defer c.close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-due:
		}
		if err := c.roundTrip(ctx); err != nil {
			c.close()
			if ctx.Err() == nil {
				c.load.failed.Add(1)
			}
		}
	}
}

// roundTrip sends one request on the connection (dialling it first if need be) and reads the
// whole answer.
func (c *loadConn) roundTrip(ctx context.Context) error {
	if c.conn == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return err
		}
		c.conn, c.reader = conn, bufio.NewReader(conn)
		// When ctx ends, a request waiting on its answer gives up at once.
		c.unwatch = context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	}
	c.conn.SetDeadline(time.Now().Add(requestTimeout))
	c.request = fmt.Appendf(c.request[:0], "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: perch-demo-load\r\n", c.path, c.host)
	if c.load.UserHeader != "" && c.load.Users > 0 {
		c.request = append(c.request, c.load.UserHeader...)
		c.request = append(c.request, ": user-"...)
		c.request = strconv.AppendInt(c.request, int64(rand.IntN(c.load.Users)), 10)
		c.request = append(c.request, "\r\n"...)
	}
	c.request = append(c.request, "\r\n"...)
	if _, err := c.conn.Write(c.request); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.reader, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.Close {
		c.close() // the server said so; the next request dials again
	}
	return err
}

func (c *loadConn) close() {
	if c.conn != nil {
		c.unwatch()
		c.conn.Close()
		c.conn, c.reader, c.unwatch = nil, nil, nil
	}
}
