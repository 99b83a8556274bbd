package proxy

import "time"

// statusClientClosed (nginx's convention) is recorded when the client went away before its
// response was complete. Not an error: it is not the backend's fault, and a load generator
// that stops must not fail a rollout.
//
// Besides the backend's own status, the proxy records: 400 for a malformed request (bad body
// framing) and 408 for a client that stalled mid-upload past Timeouts.Body, neither an error;
// 502 for a backend that could not be reached, reset the connection or answered something
// that is not HTTP, and 504 for one that did not answer within Timeouts.ResponseHeader or
// stalled mid-response past Timeouts.Body, both errors of that version.
const statusClientClosed = 499

// outcome is how one forwarded request ended, as the proxy counts it.
type outcome struct {
	code int
	// latency is the backend's own time, from the request written to the first byte of its
	// answer; noLatency when the backend had no part in how the request ended.
	latency time.Duration
}

// noLatency marks an outcome with no backend time to record.
const noLatency = time.Duration(-1)

// isError says whether an outcome counts against the version: the backend's own 5xx, or a
// backend that failed or timed out (502, 504). A client's 400, 408 or 499 never does.
func (o outcome) isError() bool { return o.code >= 500 }

// record counts one finished request. Overridden requests are served but never analysed:
// they go to their own exported counter only, so a tester pinning requests to a side cannot
// steer the rollout's verdict.
func (p *Proxy) record(v version, overridden bool, o outcome) {
	if p.closing.Err() != nil {
		return // cut short by Close: nothing the backend or the client did
	}
	if overridden {
		p.exporter.observeOverridden(v, o.code)
		return
	}
	now := time.Now()
	p.source.observe(v, o.isError(), o.latency, now)
	p.exporter.observe(v, o.code, o.latency)
}
