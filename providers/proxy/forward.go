package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// clientCheckInterval is how often the proxy looks whether the client is still there while a
// backend is slow to answer: a client that left is recorded as such within about this long.
const clientCheckInterval = 100 * time.Millisecond

// smallBody is the largest response body read whole before it is sent: it costs no stream.
const smallBody = 8 << 10

// inbound is a client's request as both front ends (fasthttp's server and net/http's) hand it
// to the forwarder.
type inbound struct {
	head     *fasthttp.RequestHeader // as received; hop-by-hop headers are not sent on
	body     io.Reader               // nil when the request has none
	clientIP string
	upgrade  []byte // the Upgrade header of a protocol switch (websockets), else nil
	// gone says whether the client has left; it is asked while a backend is slow.
	gone func() bool
	// readDeadline moves the deadline of the client's connection as its body streams.
	readDeadline func(time.Time)
}

// exchange is one request forwarded to a backend, from the request written to the end of
// the response.
type exchange struct {
	p          *Proxy
	up         *upstream
	v          version
	overridden bool
	conn       *upConn
	written    time.Time     // the request was written to the backend
	latency    time.Duration // from written to the first byte of the answer
	status     int
	keepAlive  bool        // the connection may serve another request after this one
	gone       func() bool // whether the client left (nil: never asked)
}

// failure is how a request ended without an answer from the backend to pass on.
type failure struct {
	outcome
	answer bool // the client is still there and gets outcome.code as the response
}

var http11 = []byte("HTTP/1.1")

var (
	errResponseTimeout = errors.New("proxy: the backend did not answer in time")
	errClientGone      = errors.New("proxy: the client went away")
	errBodyTimeout     = timeoutError("proxy: the backend's body stalled")
)

// send forwards a request to the backend of version v and reads the head of its answer into
// resp. It returns the exchange, whose body the front end then streams, or how it failed.
// Failures carry the backend's time until it failed: from the request written, or the time
// to connect when it could not be reached; none when it failed while the request was sent.
func (p *Proxy) send(v version, overridden bool, in *inbound, resp *fasthttp.ResponseHeader) (*exchange, *failure) {
	start := time.Now()
	up := p.upstreams[v]
	buf := p.heads.Get().(*[]byte)
	defer p.heads.Put(buf)
	head := p.buildHead((*buf)[:0], up, in)
	*buf = head
	// A request with no body that is safe to repeat is sent again, once, on a new
	// connection when a reused one turns out closed before any answer (the backend closed it
	// while it was idle): the standard library's transport does the same.
	replayable := in.body == nil && in.upgrade == nil && isIdempotent(in.head.Method())
	for attempt := 0; ; attempt++ {
		var c *upConn
		var err error
		if in.upgrade != nil || attempt > 0 {
			c, err = up.dial(context.Background())
		} else {
			c, err = up.get(context.Background())
		}
		if err != nil { // the time it took to fail
			return nil, &failure{outcome{http.StatusBadGateway, time.Since(start)}, true}
		}
		x := &exchange{p: p, up: up, v: v, overridden: overridden, conn: c, gone: in.gone}
		retry, f := x.roundTrip(head, in, resp)
		if f != nil && retry && replayable && c.reused && attempt == 0 {
			continue
		}
		return x, f
	}
}

// roundTrip writes the request on x.conn and reads the answer's head. retry says the failure
// came before the backend sent anything, on a connection that may have been closed while idle.
func (x *exchange) roundTrip(head []byte, in *inbound, resp *fasthttp.ResponseHeader) (retry bool, f *failure) {
	c, t := x.conn, x.p.timeouts
	switch {
	case len(head) > c.bw.Size() || in.body != nil:
		// A head that fits the buffer goes in one write to an idle connection, which the
		// kernel takes whole; anything longer may wait for a backend that is not reading.
		c.SetWriteDeadline(time.Now().Add(t.Body))
		c.writeDeadline = true
	case c.writeDeadline:
		c.SetWriteDeadline(time.Time{})
		c.writeDeadline = false
	}
	_, err := c.bw.Write(head)
	if err == nil && in.body != nil {
		err = x.writeBody(in)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.discard()
		var ce clientError
		if errors.As(err, &ce) {
			code := clientStatus(ce.err)
			return false, &failure{outcome{code, noLatency}, code != statusClientClosed}
		}
		return true, &failure{outcome{http.StatusBadGateway, noLatency}, true}
	}
	x.written = time.Now()
	switch err := x.await(x.written.Add(t.ResponseHeader)); {
	case err == nil:
	case errors.Is(err, errClientGone):
		x.latency = time.Since(x.written)
		x.p.abandon(x)
		return false, &failure{outcome{statusClientClosed, x.latency}, false}
	case errors.Is(err, errResponseTimeout):
		c.discard()
		return false, &failure{outcome{http.StatusGatewayTimeout, x.p.timeouts.ResponseHeader}, true}
	default:
		c.discard()
		return true, &failure{outcome{http.StatusBadGateway, time.Since(x.written)}, true}
	}
	x.latency = time.Since(x.written)
	// The rest of the head must follow within the same limit.
	c.SetReadDeadline(x.written.Add(t.ResponseHeader))
	for {
		if err := resp.Read(c.br); err != nil {
			c.discard()
			if isTimeout(err) {
				return false, &failure{outcome{http.StatusGatewayTimeout, x.latency}, true}
			}
			return false, &failure{outcome{http.StatusBadGateway, x.latency}, true}
		}
		// Interim answers (100 Continue, 103 Early Hints) are not passed on: the proxy has
		// already sent the body, and the client gets the final answer.
		if code := resp.StatusCode(); code >= 200 || code == http.StatusSwitchingProtocols || code < 100 {
			break
		}
	}
	x.status = resp.StatusCode()
	x.keepAlive = in.upgrade == nil && resp.IsHTTP11() && !resp.ConnectionClose()
	resp.ResetConnectionClose() // the backend's connection, not the client's
	resp.SetProtocol(http11)
	stripHopByHop(resp, x.status == http.StatusSwitchingProtocols)
	return false, nil
}

// writeBody copies the client's body to the backend: as is when its length is known,
// re-chunked otherwise. A failure to read the client's body is a clientError.
func (x *exchange) writeBody(in *inbound) error {
	c, t := x.conn, x.p.timeouts
	body := &clientBody{r: in.body, deadline: in.readDeadline, conn: c, timeout: t.Body}
	if n := in.head.ContentLength(); n >= 0 {
		m, err := io.CopyN(c.bw, body, int64(n))
		switch {
		case body.err != nil:
			return clientError{body.err}
		case err == io.EOF || err == nil && m < int64(n):
			return clientError{io.ErrUnexpectedEOF}
		}
		return err
	}
	cw := httputil.NewChunkedWriter(c.bw)
	_, err := io.Copy(cw, body)
	if body.err != nil {
		return clientError{body.err}
	}
	if err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	_, err = c.bw.WriteString("\r\n")
	return err
}

// await waits until the backend has sent something, at most until limit, looking every
// clientCheckInterval whether the client left.
func (x *exchange) await(limit time.Time) error {
	for {
		next := time.Now().Add(clientCheckInterval)
		if x.gone == nil || next.After(limit) {
			next = limit
		}
		x.conn.SetReadDeadline(next)
		_, err := x.conn.br.Peek(1)
		switch {
		case err == nil:
			return nil
		case !isTimeout(err):
			return err
		case !time.Now().Before(limit):
			return errResponseTimeout
		case x.gone != nil && x.gone():
			return errClientGone
		}
	}
}

// abandon keeps waiting, without a client, for the backend of a request whose client left
// before it answered. Its client's 499 is already recorded; if the backend has not answered
// by Timeouts.ResponseHeader either, it counts as a 504 of that version too. Clients that give
// up sooner than the proxy does must not hide a backend that hangs: a canary that answers
// nobody would otherwise show no errors at all. Abandoned waits are capped at MaxConnections.
func (p *Proxy) abandon(x *exchange) {
	p.abandonMu.Lock()
	if p.abandonClosed || p.abandonedN >= p.maxConns {
		p.abandonMu.Unlock()
		x.conn.discard()
		return
	}
	p.abandonedN++
	p.abandoned.Add(1)
	p.abandonMu.Unlock()
	limit := x.written.Add(p.timeouts.ResponseHeader)
	go func() {
		defer func() {
			x.conn.discard()
			p.abandonMu.Lock()
			p.abandonedN--
			p.abandonMu.Unlock()
			p.abandoned.Done()
		}()
		stop := context.AfterFunc(p.closing, func() { x.conn.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
		x.conn.SetReadDeadline(limit)
		_, err := x.conn.br.Peek(1)
		if p.closing.Err() == nil && isTimeout(err) {
			p.record(x.v, x.overridden, outcome{http.StatusGatewayTimeout, p.timeouts.ResponseHeader})
		}
	}()
}

// body is the backend's response body, framed as its head says; nil when it has none.
func (x *exchange) body(resp *fasthttp.ResponseHeader, head bool) *respBody {
	b := &respBody{x: x, remaining: -1}
	switch n := resp.ContentLength(); {
	case head || x.status < 200 || x.status == http.StatusNoContent || x.status == http.StatusNotModified:
		return nil
	case n >= 0:
		if n == 0 {
			return nil
		}
		b.remaining = int64(n)
		b.r = x.conn.br
	case n == -1:
		b.r = httputil.NewChunkedReader(x.conn.br)
		b.chunked = true
	default: // until the backend closes the connection
		b.r = x.conn.br
		x.keepAlive = false
	}
	return b
}

// finish ends an exchange whose answer had no body, or whose body was read whole.
func (x *exchange) finish() {
	if x.keepAlive {
		x.up.put(x.conn)
	} else {
		x.conn.discard()
	}
	x.p.record(x.v, x.overridden, outcome{x.status, x.latency})
}

// respBody streams a backend's response body and counts the request when it ends: a backend
// that fails or stalls mid-body is a 502 or 504 of its version; a client that stops reading
// is a 499.
type respBody struct {
	x         *exchange
	r         io.Reader
	remaining int64 // bytes left of a body with a known length; -1 for the others
	chunked   bool
	done      bool  // read to its end
	upErr     error // the backend's failure mid-body
	ended     bool
}

func (b *respBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.upErr != nil {
		return 0, b.upErr
	}
	if b.remaining >= 0 && int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	c := b.x.conn
	limit := time.Now().Add(b.x.p.timeouts.Body)
	if c.br.Buffered() == 0 {
		// Wait for more in short steps, so a client that leaves a quiet stream is seen.
		switch err := b.x.await(limit); {
		case errors.Is(err, errClientGone):
			return 0, err // not the backend's doing: recorded as the client's 499
		case errors.Is(err, errResponseTimeout):
			b.upErr = errBodyTimeout
			return 0, b.upErr
		}
	}
	c.SetReadDeadline(limit)
	n, err := b.r.Read(p)
	if b.remaining >= 0 {
		b.remaining -= int64(n)
		switch {
		case b.remaining == 0:
			b.done = true
			return n, io.EOF
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
	}
	switch {
	case err == io.EOF && b.chunked:
		b.done = true
		if terr := readTrailers(b.x.conn.br); terr != nil {
			b.x.keepAlive = false
		}
	case err == io.EOF:
		b.done = true
	case err != nil:
		b.upErr = err
	}
	return n, err
}

// readSmall reads a body of at most smallBody bytes whole, without copying it out of the
// connection's buffer: valid until the exchange ends.
func (b *respBody) readSmall() ([]byte, bool) {
	if b.remaining < 0 || b.remaining > smallBody || b.remaining > int64(b.x.conn.br.Size()) {
		return nil, false
	}
	if b.x.conn.br.Buffered() < int(b.remaining) { // usually it came with the head
		b.x.conn.SetReadDeadline(time.Now().Add(b.x.p.timeouts.Body))
	}
	buf, err := b.x.conn.br.Peek(int(b.remaining))
	if err != nil {
		b.upErr = err
		return nil, true
	}
	b.x.conn.br.Discard(len(buf))
	b.remaining, b.done = 0, true
	return buf, true
}

// end releases the connection and records the request, once the response has been sent or
// the client has stopped taking it.
func (b *respBody) end() {
	if b.ended {
		return
	}
	b.ended = true
	x := b.x
	o := outcome{x.status, x.latency}
	switch {
	case b.upErr != nil && isTimeout(b.upErr):
		o.code = http.StatusGatewayTimeout
	case b.upErr != nil:
		o.code = http.StatusBadGateway
	case !b.done:
		o.code = statusClientClosed // the client stopped reading first
	}
	if b.done && x.keepAlive {
		x.up.put(x.conn)
	} else {
		x.conn.discard()
	}
	x.p.record(x.v, x.overridden, o)
}

// CloseWithError is how fasthttp's server hands back a body stream once it has written it.
func (b *respBody) CloseWithError(error) error {
	b.end()
	return nil
}

// readTrailers skips a chunked body's trailers, which the proxy does not pass on.
func readTrailers(br *bufio.Reader) error {
	for range 100 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
	return errors.New("proxy: too many trailers")
}

// clientBody reads the client's body for the backend, moving both connections' deadlines
// as it streams and keeping the client's own error apart from the backend's.
type clientBody struct {
	r        io.Reader
	deadline func(time.Time)
	conn     *upConn
	timeout  time.Duration
	err      error
}

func (b *clientBody) Read(p []byte) (int, error) {
	next := time.Now().Add(b.timeout)
	if b.deadline != nil {
		b.deadline(next)
	}
	b.conn.SetWriteDeadline(next)
	n, err := b.r.Read(p)
	switch {
	case err == io.EOF && b.deadline != nil:
		// All read: no deadline on the client's connection while the backend answers (a
		// net/http server would take one for the client leaving).
		b.deadline(time.Time{})
	case err != nil && err != io.EOF:
		b.err = err
	}
	return n, err
}

// clientError is a failure to read the client's request.
type clientError struct{ err error }

func (e clientError) Error() string { return "client: " + e.err.Error() }

// clientStatus is the status recorded for a client whose request could not be read: 408 when
// it stalled, 499 when it went away, 400 when what it sent was malformed.
func clientStatus(err error) int {
	switch {
	case isTimeout(err):
		return http.StatusRequestTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return statusClientClosed
	}
	return http.StatusBadRequest
}

// timeoutError is a net.Error that timed out.
type timeoutError string

func (e timeoutError) Error() string   { return string(e) }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isIdempotent(method []byte) bool {
	switch string(method) {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
