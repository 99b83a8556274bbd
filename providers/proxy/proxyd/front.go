package proxyd

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/perchhq/perch/providers/proxy"
)

// front is the handler clients' requests reach: it applies what the file says about clients
// (how long a request body may stall) and hands the request to the proxy in force, which
// heeds the override header only with its token. A reload swaps both at once; a request keeps
// the proxy it started on.
type front struct {
	proxy atomic.Pointer[proxy.Proxy]
	opts  atomic.Pointer[frontOptions]
}

// frontOptions are the front's settings from the file.
type frontOptions struct {
	bodyStall time.Duration
}

func newFrontOptions(c *Config) *frontOptions {
	return &frontOptions{bodyStall: c.Timeouts.Body}
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o := f.opts.Load()
	if o.bodyStall > 0 && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body := &stallBody{ReadCloser: r.Body, rc: http.NewResponseController(w), stall: o.bodyStall}
		r.Body = body
		defer body.done.Store(true)
	}
	f.proxy.Load().ServeHTTP(w, r)
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
