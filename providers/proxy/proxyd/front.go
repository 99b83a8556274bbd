package proxyd

import (
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/perchhq/perch/providers/proxy"
)

// front is the handler clients' requests reach: it applies what the file says about clients
// (who may use the override header, how long a request body may stall) and hands the request
// to the proxy in force. A reload swaps both at once; a request keeps the proxy it started on.
type front struct {
	proxy atomic.Pointer[proxy.Proxy]
	opts  atomic.Pointer[frontOptions]
}

// frontOptions are the front's settings from the file.
type frontOptions struct {
	overrideHeader string   // canonical; empty: no override at all
	overrideToken  [32]byte // SHA-256 of the token, compared in constant time
	bodyStall      time.Duration
}

func newFrontOptions(c *Config) *frontOptions {
	o := &frontOptions{bodyStall: c.Timeouts.Body}
	if c.Override != nil {
		o.overrideHeader = http.CanonicalHeaderKey(c.Override.Header)
		o.overrideToken = sha256.Sum256([]byte(c.Override.Token))
	}
	return o
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o := f.opts.Load()
	f.gateOverride(o, r)
	if o.bodyStall > 0 && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body := &stallBody{ReadCloser: r.Body, rc: http.NewResponseController(w), stall: o.bodyStall}
		r.Body = body
		defer body.done.Store(true)
	}
	f.proxy.Load().ServeHTTP(w, r)
}

// gateOverride keeps the override header only on a request that carries the token, and never
// forwards the token: a client that cannot show it cannot choose its side, and the backends
// never learn it.
func (f *front) gateOverride(o *frontOptions, r *http.Request) {
	token, hasToken := r.Header[OverrideTokenHeader]
	if hasToken {
		delete(r.Header, OverrideTokenHeader)
	}
	if o.overrideHeader == "" {
		return
	}
	if _, ok := r.Header[o.overrideHeader]; !ok {
		return
	}
	if hasToken && len(token) == 1 {
		got := sha256.Sum256([]byte(token[0]))
		if subtle.ConstantTimeCompare(got[:], o.overrideToken[:]) == 1 {
			return
		}
	}
	delete(r.Header, o.overrideHeader)
}

// stallBody gives up reading a client's request body when no byte has arrived for stall
// (nginx's client_body_timeout), so a client that stops sending mid-body does not hold a
// backend connection for ever. Once the whole body is read the connection has no deadline
// again (the server then watches it for the client leaving); a body left unread keeps the
// deadline, which also bounds the server's discarding of it. The transport may still touch the
// body after the handler returned, when the connection may already carry the next request:
// from then on (done) its deadlines are left alone.
type stallBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	stall time.Duration
	done  atomic.Bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return b.ReadCloser.Read(p)
	}
	b.rc.SetReadDeadline(time.Now().Add(b.stall))
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done.Load() {
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
