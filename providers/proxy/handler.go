package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// ServeHTTP forwards a request received by a net/http server, as the proxy behind Listen does,
// for a program that serves the proxy from its own http.Server. Listen's server is faster.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var head fasthttp.RequestHeader
	head.SetMethod(r.Method)
	if r.RequestURI != "" {
		head.SetRequestURI(r.RequestURI) // as the client sent it
	} else {
		head.SetRequestURI(r.URL.RequestURI())
	}
	head.SetHost(r.Host)
	for k, vs := range r.Header {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Host":
			continue
		}
		for _, v := range vs {
			head.Add(k, v)
		}
	}
	rc := http.NewResponseController(w)
	in := &inbound{
		head:         &head,
		clientIP:     hostOf(r.RemoteAddr),
		gone:         func() bool { return r.Context().Err() != nil },
		readDeadline: func(t time.Time) { rc.SetReadDeadline(t) },
	}
	switch {
	case r.ContentLength > 0:
		head.SetContentLength(int(r.ContentLength))
		in.body = r.Body
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		head.SetContentLength(-1)
		in.body = r.Body
	}
	if up := r.Header.Get("Upgrade"); up != "" && listed([]byte(strings.Join(r.Header["Connection"], ",")), []byte("upgrade")) {
		in.upgrade = []byte(up)
	}
	v, overridden := p.choose(netHeaders{r})
	var resp fasthttp.ResponseHeader
	x, f := p.send(v, overridden, in, &resp)
	if f != nil {
		p.record(v, overridden, f.outcome)
		if f.answer {
			w.WriteHeader(f.code)
		}
		return
	}
	if x.status == http.StatusSwitchingProtocols {
		p.switchNet(rc, x, &resp)
		return
	}
	h := w.Header()
	for k, v := range resp.All() {
		h.Add(string(k), string(v))
	}
	w.WriteHeader(x.status)
	b := x.body(&resp, r.Method == http.MethodHead)
	if b == nil {
		x.finish()
		return
	}
	// A body of unknown length or an event stream is sent on as it arrives.
	stream := b.remaining < 0 || strings.HasPrefix(h.Get("Content-Type"), "text/event-stream")
	buf := p.copyBuffers.Get().(*[]byte)
	defer p.copyBuffers.Put(buf)
	for {
		n, err := b.Read(*buf)
		if n > 0 {
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				break
			}
			if stream {
				rc.Flush()
			}
		}
		if err != nil {
			break
		}
	}
	b.end()
	if b.upErr != nil {
		panic(http.ErrAbortHandler) // cut the client's connection: its response is incomplete
	}
}

// switchNet passes a backend's 101 on to a net/http client, then copies bytes both ways.
func (p *Proxy) switchNet(rc *http.ResponseController, x *exchange, resp *fasthttp.ResponseHeader) {
	conn, brw, err := rc.Hijack()
	if err != nil {
		x.conn.discard()
		p.record(x.v, x.overridden, outcome{http.StatusBadGateway, x.latency})
		return
	}
	x.finishSwitch()
	conn.SetDeadline(time.Time{})
	resp.SetNoDefaultContentType(true)
	if _, err := conn.Write(resp.AppendBytes(nil)); err != nil {
		conn.Close()
		x.conn.discard()
		return
	}
	splice(hijacked{brw.Reader, conn}, x.conn)
}

// hijacked is a client connection taken from net/http, read through the server's buffer.
type hijacked struct {
	r *bufio.Reader
	net.Conn
}

func (h hijacked) Read(p []byte) (int, error) { return h.r.Read(p) }

var _ io.ReadWriteCloser = hijacked{}

// netHeaders reads a net/http request's headers for choose.
type netHeaders struct{ r *http.Request }

func (n netHeaders) get(name string) string { return n.r.Header.Get(name) }

func (n netHeaders) cookie(name string) string {
	c, err := n.r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return host
}
