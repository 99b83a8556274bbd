package proxy

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/perchhq/perch/metrics"
)

// Defaults of the builtin source's memory.
const (
	DefaultResolution = time.Second
	DefaultRetention  = 20 * time.Minute
	MaxRetention      = 6 * time.Hour
	maxPoints         = 100_000 // per query
	// maxHistogramPoints bounds a histogram answer (34 counts a point, about 100 to 350 bytes
	// in JSON) to about 9 MB, within what the admin client reads: 6 h at a 1 s step.
	maxHistogramPoints = 25_000
)

// version indexes the two sides the proxy routes to.
type version int

const (
	stable version = iota
	canary
)

func (v version) String() string {
	if v == canary {
		return metrics.VersionCanary
	}
	return metrics.VersionStable
}

// Source is the proxy's own observations as a metrics source: it answers the builtin queries
// (metrics.BuiltinQuery) from a ring of time slots covering the last Retention, each holding
// per version the requests, the errors (the backend's 5xx, and its failures: 502, 504) and a
// latency sketch. Memory is fixed when it is made: about 3 KiB per slot once both versions
// have had traffic.
type Source struct {
	resolution time.Duration
	mu         sync.Mutex
	slots      []slot
}

type slot struct {
	index int64 // which resolution-long span of time it holds; -1 for none
	sides [2]sideCounts
}

type sideCounts struct {
	requests, errors uint64
	timed            uint64  // requests with a latency in the sketch
	latency          *sketch // allocated on first use, cleared on reuse
}

// newSource keeps observations at resolution for retention (zeros take the defaults; retention
// is capped at MaxRetention).
func newSource(resolution, retention time.Duration) (*Source, error) {
	if resolution == 0 {
		resolution = DefaultResolution
	}
	if retention == 0 {
		retention = DefaultRetention
	}
	switch {
	case resolution < time.Millisecond:
		return nil, fmt.Errorf("builtin metrics resolution %s is below 1ms", resolution)
	case retention < resolution:
		return nil, fmt.Errorf("builtin metrics retention %s is shorter than its resolution %s", retention, resolution)
	}
	retention = min(retention, MaxRetention)
	n := int(retention/resolution) + 1 // +1: the slot being filled now is not yet history
	s := &Source{resolution: resolution, slots: make([]slot, n)}
	for i := range s.slots {
		s.slots[i].index = -1
	}
	return s, nil
}

// Resolution is the span of time one slot covers; queries need a step at least this long.
func (s *Source) Resolution() time.Duration { return s.resolution }

// observe records one finished request; a negative d records no latency.
func (s *Source) observe(v version, isError bool, d time.Duration, at time.Time) {
	idx := at.UnixNano() / int64(s.resolution)
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := &s.slots[idx%int64(len(s.slots))]
	if sl.index != idx {
		sl.reset(idx)
	}
	c := &sl.sides[v]
	c.requests++
	if isError {
		c.errors++
	}
	if d < 0 {
		return // nothing the backend did to time (a client's malformed or abandoned upload)
	}
	if c.latency == nil {
		c.latency = new(sketch)
	}
	c.latency.add(d)
	c.timed++
}

func (sl *slot) reset(idx int64) {
	sl.index = idx
	for i := range sl.sides {
		c := &sl.sides[i]
		c.requests, c.errors, c.timed = 0, 0, 0
		if c.latency != nil {
			clear(c.latency[:])
		}
	}
}

// Samples answers a builtin query with one sample per step from start to end, each covering
// the step before it (as Prometheus' increase(x[step]) does): counts for requests and errors,
// seconds for latency quantiles, requests per second for throughput. A point older than the
// retention is left out; a latency point with no requests is left out (there is nothing to
// measure), while counts are zero.
func (s *Source) Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	measure, v, err := s.parse(ctx, q, start, end, step)
	if err != nil {
		return nil, err
	}
	if measure == metrics.MeasureLatencyHistogram {
		return nil, fmt.Errorf("%s is a histogram: a histogram check asks for its buckets, not samples", q)
	}
	var out []metrics.Sample
	s.walk(v, isLatency(measure), start, end, step, func(t time.Time, p *point) {
		if value, ok := pointValue(measure, p.requests, p.errors, p.timed, &p.latency, step); ok {
			out = append(out, metrics.Sample{Time: t, Value: value})
		}
	})
	return out, nil
}

// Histogram answers the latency_histogram measure with, per step from start to end, the
// requests of the step before it faster than each of HistogramBounds (cumulative; the last,
// +Inf, counts every timed request). A step with no requests has counts of zero; one older
// than the retention is left out.
func (s *Source) Histogram(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) (metrics.Histogram, error) {
	measure, v, err := s.parse(ctx, q, start, end, step)
	if err != nil {
		return metrics.Histogram{}, err
	}
	if points := end.Sub(start) / step; points > maxHistogramPoints {
		return metrics.Histogram{}, fmt.Errorf("histogram from %s to %s every %s: want 0 to %d points", start.Format(time.RFC3339), end.Format(time.RFC3339), step, maxHistogramPoints)
	}
	if measure != metrics.MeasureLatencyHistogram {
		return metrics.Histogram{}, fmt.Errorf("%s is not a histogram (want %s)", q, metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, v.String()))
	}
	h := metrics.Histogram{Bounds: HistogramBounds()}
	s.walk(v, true, start, end, step, func(t time.Time, p *point) {
		h.Points = append(h.Points, metrics.HistogramPoint{Time: t, Counts: p.latency.cumulative(p.timed)})
	})
	return h, nil
}

// parse checks a query and its window, and says which measure and version it asks for.
func (s *Source) parse(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) (string, version, error) {
	measure, name, err := metrics.ParseBuiltinQuery(q)
	if err != nil {
		return "", stable, err
	}
	if step < s.resolution {
		return "", stable, fmt.Errorf("query step %s is finer than the builtin source's resolution %s", step, s.resolution)
	}
	if err := ctx.Err(); err != nil {
		return "", stable, err
	}
	if points := end.Sub(start) / step; end.Before(start) || points > maxPoints {
		return "", stable, fmt.Errorf("query from %s to %s every %s: want 0 to %d points", start.Format(time.RFC3339), end.Format(time.RFC3339), step, maxPoints)
	}
	if name == metrics.VersionCanary {
		return measure, canary, nil
	}
	return measure, stable, nil
}

// point is one step's observations of a version: its slots merged.
type point struct {
	requests, errors, timed uint64
	latency                 sketch // merged only when asked for
}

// walk calls at with each step from start to end that the retention still covers, and what
// version v did in the step before it (the sketches merged when latency is set).
func (s *Source) walk(v version, latency bool, start, end time.Time, step time.Duration, at func(time.Time, *point)) {
	var p point
	s.mu.Lock()
	defer s.mu.Unlock()
	newest := int64(-1)
	for i := range s.slots {
		newest = max(newest, s.slots[i].index)
	}
	oldest := newest - int64(len(s.slots)) + 1
	for t := start; !t.After(end); t = t.Add(step) {
		// The point at t holds the slots that began in [t-step, t).
		first := ceilDiv(t.Add(-step).UnixNano(), int64(s.resolution))
		last := ceilDiv(t.UnixNano(), int64(s.resolution)) - 1
		if newest < 0 || first < oldest {
			continue
		}
		p.requests, p.errors, p.timed = 0, 0, 0
		clear(p.latency[:])
		for idx := first; idx <= last; idx++ {
			sl := &s.slots[idx%int64(len(s.slots))]
			if sl.index != idx {
				continue // no request in that slot
			}
			c := &sl.sides[v]
			p.requests += c.requests
			p.errors += c.errors
			p.timed += c.timed
			if c.timed > 0 && latency {
				p.latency.merge(c.latency)
			}
		}
		at(t, &p)
	}
}

func isLatency(measure string) bool {
	switch measure {
	case metrics.MeasureLatencyP50, metrics.MeasureLatencyP95, metrics.MeasureLatencyP99:
		return true
	}
	return false
}

func pointValue(measure string, requests, errors, timed uint64, latency *sketch, step time.Duration) (float64, bool) {
	switch measure {
	case metrics.MeasureRequests:
		return float64(requests), true
	case metrics.MeasureErrors:
		return float64(errors), true
	case metrics.MeasureThroughput:
		return float64(requests) / step.Seconds(), true
	}
	if timed == 0 {
		return math.NaN(), false
	}
	q := 0.99
	switch measure {
	case metrics.MeasureLatencyP50:
		q = 0.50
	case metrics.MeasureLatencyP95:
		q = 0.95
	}
	return latency.quantile(q, timed), true
}

// ceilDiv is ⌈a/b⌉ for b > 0 and any a.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a > 0) {
		q++
	}
	return q
}
