// Package window lays an analysis window onto the fixed, step-long buckets hosted metrics
// APIs aggregate over, so every query of a look is asked for the same buckets and its
// samples pair up by time.
package window

import "time"

// Buckets returns the span of the whole buckets (each step long, aligned to multiples of step)
// that end inside [start, end]: from is the first bucket's start, to the last one's end. ok is
// false when no bucket has ended in the window yet.
func Buckets(start, end time.Time, step time.Duration) (from, to time.Time, ok bool) {
	if step <= 0 {
		return time.Time{}, time.Time{}, false
	}
	from = ceil(start.Add(-step), step)
	to = end.Truncate(step)
	return from, to, from.Before(to)
}

// ceil rounds t up to a multiple of d.
func ceil(t time.Time, d time.Duration) time.Time {
	if r := t.Truncate(d); r.Before(t) {
		return r.Add(d)
	}
	return t
}
