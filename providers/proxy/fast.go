package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// ServeFast forwards a request received by fasthttp's server (the one Listen runs, or one
// made with NewServer), as ServeHTTP does one from net/http's: fasthttp reads requests and
// writes responses with no goroutine or allocation per request, which is most of what a
// proxy costs.
func (p *Proxy) ServeFast(ctx *fasthttp.RequestCtx) {
	req := &ctx.Request
	v, overridden := p.choose(fastHeaders{&req.Header})
	conn := ctx.Conn()
	in := &inbound{
		head:         &req.Header,
		clientIP:     clientIP(ctx.RemoteAddr()),
		gone:         func() bool { return peerClosed(conn) },
		readDeadline: func(t time.Time) { conn.SetReadDeadline(t) },
	}
	if n := req.Header.ContentLength(); n > 0 || n == -1 {
		in.body = ctx.RequestBodyStream()
		if in.body == nil { // small bodies arrive whole
			in.body = bytes.NewReader(req.Body())
		}
	}
	if up := req.Header.Peek(fasthttp.HeaderUpgrade); len(up) > 0 && listed(req.Header.Peek(fasthttp.HeaderConnection), []byte("upgrade")) {
		in.upgrade = up
	}
	resp := &ctx.Response
	x, f := p.send(v, overridden, in, &resp.Header)
	if f != nil {
		p.record(v, overridden, f.outcome)
		if f.answer {
			resp.Reset()
			resp.SetStatusCode(f.code)
		} else {
			ctx.SetConnectionClose()
		}
		return
	}
	if x.status == http.StatusSwitchingProtocols {
		p.switchFast(ctx, x)
		return
	}
	b := x.body(&resp.Header, req.Header.IsHead())
	if b == nil {
		resp.SkipBody = req.Header.IsHead()
		x.finish()
		return
	}
	if small, ok := b.readSmall(); ok {
		if b.upErr == nil {
			resp.SetBody(small)
		}
		b.end()
		if b.upErr != nil {
			ctx.SetConnectionClose() // the length promised cannot be sent
			resp.SetBodyStream(failingReader{b.upErr}, -1)
		}
		return
	}
	size := -1
	if b.remaining >= 0 {
		size = int(b.remaining)
	}
	resp.SetBodyStream(b, size)
}

// switchFast hands the client's connection over to a protocol switch (websockets): the
// backend's 101 is passed on, then bytes are copied both ways until either side closes.
func (p *Proxy) switchFast(ctx *fasthttp.RequestCtx, x *exchange) {
	head := ctx.Response.Header.AppendBytes(nil)
	x.finishSwitch()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		c.SetDeadline(time.Time{})
		if _, err := c.Write(head); err != nil {
			x.conn.discard()
			return
		}
		splice(c, x.conn)
	})
}

// finishSwitch records a protocol switch: the backend answered 101 after x.latency.
func (x *exchange) finishSwitch() {
	x.conn.SetDeadline(time.Time{})
	x.p.record(x.v, x.overridden, outcome{x.status, x.latency})
}

// splice copies bytes both ways between a client and a backend until either side is done,
// then closes both.
func splice(client io.ReadWriteCloser, up *upConn) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(client, up.br) // what the backend sent after its 101 is in up.br already
		done <- struct{}{}
	}()
	go func() {
		io.Copy(up.Conn, client)
		done <- struct{}{}
	}()
	<-done
	client.Close()
	up.discard()
	<-done
}

// failingReader fails every read: a response whose backend failed after its head.
type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// clientIP is the address a client connected from, for X-Forwarded-For.
func clientIP(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	return host
}

// peerClosed says whether the client closed its connection (or reset it), without reading
// what it may have sent since: a peek that does not wait. The server reads nothing while a
// request is served, so this is how a client that left is seen.
func peerClosed(c net.Conn) bool {
	for {
		inner, ok := c.(interface{ NetConn() net.Conn }) // a listener's wrapper, say
		if !ok {
			break
		}
		c = inner.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = err == nil && n == 0 || err != nil && err != syscall.EAGAIN && err != syscall.EINTR
	})
	return closed
}
