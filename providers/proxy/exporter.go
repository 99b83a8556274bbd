package proxy

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// exporter is the proxy's observations in Prometheus form. Each proxy has its own, so two
// proxies in one process (tests) never share series; register the Proxy, which is a
// prometheus.Collector, where the series should be served.
type exporter struct {
	requests   *prometheus.CounterVec
	overridden *prometheus.CounterVec
	durations  *prometheus.HistogramVec
	observers  [2]prometheus.Observer
	counters   [2]sync.Map // status code (int) → prometheus.Counter, so the hot path skips label hashing
}

// durationBuckets span a fast loopback hop to a slow page, in seconds.
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func newExporter() *exporter {
	e := &exporter{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perch_proxy_requests_total",
			Help: "Requests the perch proxy forwarded and analysed, by version (stable, canary) and status code (502: the upstream failed; 504: it timed out; 499: the client went away; 400, 408: the client's request was malformed or stalled).",
		}, []string{"version", "code"}),
		overridden: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perch_proxy_overridden_requests_total",
			Help: "Requests the perch proxy forwarded to the side their override header (with its token) named, by version and status code; never analysed.",
		}, []string{"version", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "perch_proxy_request_duration_seconds",
			Help:    "The upstream's time for requests the perch proxy analysed, from the request written to the first byte of the answer, by version.",
			Buckets: durationBuckets,
		}, []string{"version"}),
	}
	for _, v := range []version{stable, canary} {
		e.observers[v] = e.durations.WithLabelValues(v.String())
	}
	return e
}

func (e *exporter) observe(v version, code int, d time.Duration) {
	if d >= 0 {
		e.observers[v].Observe(d.Seconds())
	}
	c, ok := e.counters[v].Load(code)
	if !ok {
		c, _ = e.counters[v].LoadOrStore(code, e.requests.WithLabelValues(v.String(), strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
}

func (e *exporter) observeOverridden(v version, code int) {
	e.overridden.WithLabelValues(v.String(), strconv.Itoa(code)).Inc()
}

// Describe sends the descriptions of the proxy's series.
func (p *Proxy) Describe(ch chan<- *prometheus.Desc) {
	p.exporter.requests.Describe(ch)
	p.exporter.overridden.Describe(ch)
	p.exporter.durations.Describe(ch)
}

// Collect sends the proxy's series as they are now.
func (p *Proxy) Collect(ch chan<- prometheus.Metric) {
	p.exporter.requests.Collect(ch)
	p.exporter.overridden.Collect(ch)
	p.exporter.durations.Collect(ch)
}
