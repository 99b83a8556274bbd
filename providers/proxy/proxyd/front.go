package proxyd

import (
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/perchhq/perch/providers/proxy"
)

// front is the handler clients' requests reach: it hands each request to the proxy in force,
// which a reload swaps; a request keeps the proxy it started on.
type front struct {
	proxy atomic.Pointer[proxy.Proxy]
}

func (f *front) serve(ctx *fasthttp.RequestCtx) { f.proxy.Load().ServeFast(ctx) }
