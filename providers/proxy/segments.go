package proxy

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/perchhq/perch/internal/segment"
)

// segmentTable is the segments the proxy sends wholly to the canary, replaced whole so a
// request reads one consistent set without a lock.
type segmentTable struct {
	set atomic.Pointer[segmentSet]
}

type segmentSet struct {
	segments []segment.Segment
	rules    []segment.Rule
}

// RouteSegments sends every request matching one of segs to the canary from the next request
// on, before the split and whatever the weight; it replaces the segments routed before. An
// empty list routes none.
func (p *Proxy) RouteSegments(_ context.Context, segs []segment.Segment) error {
	rules, err := segment.Compile(segs)
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		p.segments.set.Store(nil)
		return nil
	}
	p.segments.set.Store(&segmentSet{segments: slices.Clone(segs), rules: rules})
	return nil
}

// RoutedSegments is the names of the segments the proxy routes now.
func (p *Proxy) RoutedSegments(context.Context) ([]string, error) {
	set := p.segments.set.Load()
	if set == nil {
		return []string{}, nil
	}
	return segment.Names(set.segments), nil
}

// inSegment reports whether the request belongs to a segment the proxy routes to the canary.
func (p *Proxy) inSegment(r headers) bool {
	set := p.segments.set.Load()
	if set == nil {
		return false
	}
	for _, rule := range set.rules {
		v := ""
		if rule.Header != "" {
			v = r.get(rule.Header)
		} else {
			v = r.cookie(rule.Cookie)
		}
		if rule.Matches(v) {
			return true
		}
	}
	return false
}
