package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/perchhq/perch/internal/segment"
)

// SegmentRouter is a Router that can also send segments of requests wholly to the canary.
// A rollout with segment steps needs one.
type SegmentRouter interface {
	// RouteSegments makes segs, and only them, the segments perch routes to the canary (none:
	// remove perch's).
	RouteSegments(ctx context.Context, segs []segment.Segment) error
	// RoutedSegments is the names of the segments perch routes now, as the provider has them.
	RoutedSegments(ctx context.Context) ([]string, error)
}

// Flags is a feature-flag system: it reads a flag's percentage rollout, sets it, and puts it
// back as it was read. A rollout with setFlag steps needs one.
type Flags interface {
	// ReadFlag is the percent of users flag is on for (-1 when it is no single percentage)
	// and the system's own record of its rollout, which RestoreFlag takes.
	ReadFlag(ctx context.Context, flag string) (int, json.RawMessage, error)
	SetFlagPercent(ctx context.Context, flag string, percent int) error
	RestoreFlag(ctx context.Context, flag string, saved json.RawMessage) error
}

// WantedSegments are the segments the rollout wants routed now: those of the segment steps
// begun in this attempt while it runs; none once it is rolling back or promoting.
func (s *State) WantedSegments() []segment.Segment {
	switch s.Phase {
	case PhaseRunning, PhasePaused, PhaseHolding:
	default:
		return nil
	}
	var out []segment.Segment
	for i := 0; i <= s.Step && i < len(s.Spec.Steps); i++ {
		if seg := s.Spec.Steps[i].Segment; seg != nil {
			out = append(out, *seg)
		}
	}
	return out
}

// SegmentsInPlace reports whether the provider routes exactly the segments the rollout wants
// (always, for a rollout without segment steps).
func (s *State) SegmentsInPlace() bool {
	if len(s.Spec.Segments()) == 0 {
		return true
	}
	return s.Segments != nil && sameNames(s.Segments, segment.Names(s.WantedSegments()))
}

func sameNames(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// WantedFlag is what the rollout wants of a flag now: the percent of the last setFlag step
// begun for it while running, or restore it as read while rolling back; touch is false when
// it wants nothing (before its first step, and once promoted, which leaves the last value).
func (s *State) WantedFlag(name string) (percent int, restore, touch bool) {
	switch s.Phase {
	case PhaseRollingBack:
		return 0, true, true
	case PhaseRunning, PhasePaused, PhaseHolding:
	default:
		return 0, false, false
	}
	percent = -1
	for i := 0; i <= s.Step && i < len(s.Spec.Steps); i++ {
		if f := s.Spec.Steps[i].SetFlag; f != nil && f.Flag == name && f.Percent != nil {
			percent = *f.Percent
		}
	}
	return percent, false, percent >= 0
}

// FlagInPlace reports whether flag i is as the rollout wants it.
func (s *State) FlagInPlace(i int) bool {
	f := s.Flags[i]
	percent, restore, touch := s.WantedFlag(f.Name)
	switch {
	case !touch:
		return true
	case restore:
		return !f.Read || f.Restored // never read: perch never changed it
	}
	return f.Read && !f.Restored && f.Percent == percent
}

// StrategiesInPlace reports whether every segment and flag is as the rollout wants it.
func (s *State) StrategiesInPlace() bool {
	if !s.SegmentsInPlace() {
		return false
	}
	for i := range s.Flags {
		if !s.FlagInPlace(i) {
			return false
		}
	}
	return true
}

func (s *State) flagIndex(name string) int {
	for i := range s.Flags {
		if s.Flags[i].Name == name {
			return i
		}
	}
	return -1
}

func (s *State) resetStrategyAttempts() {
	s.SegmentAttempts, s.SegmentRetryAt, s.SegmentError = 0, time.Time{}, ""
	for i := range s.Flags {
		s.Flags[i].Attempts, s.Flags[i].RetryAt, s.Flags[i].Error = 0, time.Time{}, ""
	}
}

func (s *State) applySegmentsSet(ev Event) {
	now := ev.Segments
	if now == nil {
		now = []string{} // an empty list is not journaled: confirmed none
	}
	was := s.Segments
	if was == nil {
		was = []string{}
	}
	if !sameNames(was, now) {
		s.ChangedAt = ev.Time
		s.AnalysisStartedAt = time.Time{} // traffic changed: stabilize again
	}
	s.Segments = now
	s.SegmentAttempts, s.SegmentRetryAt, s.SegmentError = 0, time.Time{}, ""
}

func (s *State) applyFlag(ev Event) {
	i := s.flagIndex(ev.Flag)
	if i < 0 {
		return
	}
	f := &s.Flags[i]
	if ev.Type == EventFlagFailed {
		f.Attempts, f.Error, f.RetryAt = ev.Attempt, ev.Error, time.Time{}
		if ev.RetryAt != nil {
			f.RetryAt = *ev.RetryAt
		}
		return
	}
	p := *ev.Percent
	switch ev.Type {
	case EventFlagRead:
		f.Read, f.Original, f.Saved = true, p, ev.Saved
	case EventFlagSet, EventFlagRestored:
		if p != f.Percent && f.Percent >= 0 {
			s.ChangedAt = ev.Time
			s.AnalysisStartedAt = time.Time{}
		}
		f.Restored = ev.Type == EventFlagRestored
	}
	f.Percent = p
	f.Attempts, f.RetryAt, f.Error = 0, time.Time{}, ""
}

// segmentsResult is what routing the segments came to: got is what the provider read back.
type segmentsResult struct {
	want    []string
	got     []string
	attempt int
	err     error
}

// flagOp is what an effect does to a flag.
type flagOp int

const (
	flagRead flagOp = iota
	flagSet
	flagRestore
)

// flagResult is what an effect on a flag came to.
type flagResult struct {
	flag    string
	op      flagOp
	target  int
	percent int // read back
	saved   json.RawMessage
	attempt int
	err     error
}

// ensureStrategies starts the effects that bring the segments and flags to what the rollout
// wants, and reports whether any is not there yet; act is false while the rollout is paused
// or holding, when traffic is left as it is. It returns when to try again.
func (e *Engine) ensureStrategies(now time.Time, act bool) (time.Time, bool) {
	s := &e.state
	var wake time.Time
	waiting := false
	if !s.SegmentsInPlace() {
		waiting = true
		if act {
			wake = earliest(wake, e.ensureSegments(now))
		}
	}
	for i := range s.Flags {
		if !s.FlagInPlace(i) {
			waiting = true
			if act {
				wake = earliest(wake, e.ensureFlag(now, i))
			}
		}
	}
	return wake, waiting
}

func (e *Engine) ensureSegments(now time.Time) time.Time {
	s := &e.state
	switch {
	case e.segmentsBusy:
		return time.Time{}
	case now.Before(s.SegmentRetryAt):
		return s.SegmentRetryAt
	}
	want, attempt := s.WantedSegments(), s.SegmentAttempts+1
	e.segmentsBusy = true
	e.spawn(func() any {
		ctx, cancel := context.WithTimeout(context.Background(), weightTimeout)
		defer cancel()
		r := segmentsResult{want: segment.Names(want), attempt: attempt}
		if r.err = e.segments.RouteSegments(ctx, want); r.err == nil {
			r.got, r.err = e.segments.RoutedSegments(ctx)
			if r.err != nil {
				r.err = fmt.Errorf("read back: %w", r.err)
			}
		}
		return r
	})
	return time.Time{}
}

func (e *Engine) ensureFlag(now time.Time, i int) time.Time {
	f := e.state.Flags[i]
	switch {
	case e.flagBusy[f.Name]:
		return time.Time{}
	case now.Before(f.RetryAt):
		return f.RetryAt
	}
	percent, restore, _ := e.state.WantedFlag(f.Name)
	r := flagResult{flag: f.Name, target: percent, attempt: f.Attempts + 1}
	switch {
	case !f.Read:
		r.op = flagRead
	case restore:
		r.op = flagRestore
	default:
		r.op = flagSet
	}
	saved := f.Saved
	e.flagBusy[f.Name] = true
	e.spawn(func() any {
		ctx, cancel := context.WithTimeout(context.Background(), weightTimeout)
		defer cancel()
		switch r.op {
		case flagRead:
			r.percent, r.saved, r.err = e.flags.ReadFlag(ctx, r.flag)
			return r
		case flagSet:
			r.err = e.flags.SetFlagPercent(ctx, r.flag, r.target)
		case flagRestore:
			r.err = e.flags.RestoreFlag(ctx, r.flag, saved)
		}
		if r.err == nil {
			if r.percent, _, r.err = e.flags.ReadFlag(ctx, r.flag); r.err != nil {
				r.err = fmt.Errorf("read back: %w", r.err)
			}
		}
		if r.err == nil && r.op == flagSet && r.percent != r.target {
			r.err = fmt.Errorf("the flag system reports %d%% after setting %d%%", r.percent, r.target)
		}
		return r
	})
	return time.Time{}
}

// backoff is how long to wait before the next try after attempt failed.
func backoff(attempt int) time.Duration {
	return min(firstWeightBackoff<<min(attempt-1, 16), maxBackoff)
}

func (e *Engine) handleSegments(r segmentsResult) {
	e.segmentsBusy = false
	s := &e.state
	if r.err == nil && !sameNames(r.got, r.want) {
		r.err = fmt.Errorf("provider reports segments %q after setting %q", r.got, r.want)
	}
	if r.err == nil {
		e.emit(Event{Type: EventSegmentsSet, Segments: r.got})
		return
	}
	wait := backoff(r.attempt)
	ev := Event{Type: EventSegmentsFailed, Segments: r.want, Attempt: r.attempt, Error: r.err.Error(), RetryAt: timePtr(time.Now().Add(wait))}
	switch s.Phase {
	case PhaseRollingBack:
		ev.Reason = fmt.Sprintf("ROLLBACK FAILING: could not remove the segments routed to canary (attempt %d); retrying in %s; their requests may still reach the canary", r.attempt, wait)
	case PhasePromoting:
		ev.Reason = fmt.Sprintf("promotion failing: could not remove the segments (attempt %d); retrying in %s", r.attempt, wait)
	default:
		ev.Reason = fmt.Sprintf("could not route segments %s to canary (attempt %d of %d)", names(r.want), r.attempt, maxWeightAttempts)
		if r.attempt < maxWeightAttempts {
			ev.Reason += fmt.Sprintf("; retrying in %s", wait)
		} else {
			ev.RetryAt = nil
		}
	}
	e.emit(ev)
	if s.Phase == PhaseRunning && r.attempt >= maxWeightAttempts {
		e.emit(Event{Type: EventHeld, Hold: HoldRouter, Reason: fmt.Sprintf(
			"traffic provider failed %d times routing segments %s (%v); resume to try again, or roll back", r.attempt, names(r.want), r.err)})
	}
}

func names(list []string) string {
	if len(list) == 0 {
		return "(none)"
	}
	return strings.Join(list, ", ")
}

func (e *Engine) handleFlag(r flagResult) {
	delete(e.flagBusy, r.flag)
	s := &e.state
	if r.err == nil {
		ev := Event{Flag: r.flag, Percent: intPtr(r.percent)}
		switch r.op {
		case flagRead:
			ev.Type, ev.Saved = EventFlagRead, r.saved
		case flagSet:
			ev.Type = EventFlagSet
		case flagRestore:
			ev.Type = EventFlagRestored
		}
		e.emit(ev)
		return
	}
	wait := backoff(r.attempt)
	ev := Event{Type: EventFlagFailed, Flag: r.flag, Attempt: r.attempt, Error: r.err.Error(), RetryAt: timePtr(time.Now().Add(wait))}
	what := map[flagOp]string{flagRead: "read flag " + r.flag, flagSet: fmt.Sprintf("set flag %s to %d%%", r.flag, r.target), flagRestore: "restore flag " + r.flag}[r.op]
	switch s.Phase {
	case PhaseRollingBack:
		ev.Reason = fmt.Sprintf("ROLLBACK FAILING: could not %s (attempt %d); retrying in %s", what, r.attempt, wait)
	default:
		ev.Reason = fmt.Sprintf("could not %s (attempt %d of %d)", what, r.attempt, maxWeightAttempts)
		if r.attempt < maxWeightAttempts {
			ev.Reason += fmt.Sprintf("; retrying in %s", wait)
		} else {
			ev.RetryAt = nil
		}
	}
	e.emit(ev)
	if s.Phase == PhaseRunning && r.attempt >= maxWeightAttempts {
		e.emit(Event{Type: EventHeld, Hold: HoldFlag, Reason: fmt.Sprintf(
			"feature-flag system failed %d times: could not %s (%v); resume to try again, or roll back", r.attempt, what, r.err)})
	}
}

// reconcileStrategies reads the segments and the flags perch has touched after a restart
// and records them, so the rollout continues from the truth: what is missing is set again. A
// flag at a percent perch neither set nor was setting was changed by hand while perch was
// down: a running rollout holds rather than overrule it.
func (e *Engine) reconcileStrategies(ctx context.Context, lastFlags []FlagState) {
	s := &e.state
	if e.segments != nil && len(e.spec.Segments()) > 0 {
		if got, err := e.segments.RoutedSegments(ctx); err != nil {
			e.emit(Event{Type: EventSegmentsFailed, Error: err.Error(), Reason: "on resume: could not read the provider's segments; setting them again"})
		} else {
			e.emit(Event{Type: EventSegmentsSet, Segments: got, Reason: "on resume: the provider routes " + names(got)})
		}
	}
	for _, last := range lastFlags {
		if !last.Read || e.flags == nil {
			continue
		}
		p, _, err := e.flags.ReadFlag(ctx, last.Name)
		if err != nil {
			e.emit(Event{Type: EventFlagFailed, Flag: last.Name, Error: err.Error(), Reason: fmt.Sprintf("on resume: could not read flag %s; setting it again", last.Name)})
			continue
		}
		e.emit(Event{Type: EventFlagSet, Flag: last.Name, Percent: intPtr(p), Reason: fmt.Sprintf("on resume: flag %s is at %s, the journal recorded %s", last.Name, pct(p), pct(last.Percent))})
		want, restore, touch := s.WantedFlag(last.Name)
		if touch && !restore && s.Phase == PhaseRunning && last.Percent >= 0 && p != last.Percent && p != want {
			e.emit(Event{Type: EventHeld, Hold: HoldFlag, Reason: fmt.Sprintf(
				"flag %s is at %s but perch last set %s: it was changed while perch was down; resume to set %d%% again, or roll back",
				last.Name, pct(p), pct(last.Percent), want)})
		}
	}
}

func pct(p int) string {
	if p < 0 {
		return "no single percentage"
	}
	return fmt.Sprintf("%d%%", p)
}

// windowClosed is the release window's say on advancing now: an advance of the rollout's own
// outside the window holds (once; the hold ends when the window opens), while an operator's
// is journaled as an override and goes ahead. It reports whether the advance must wait.
func (e *Engine) windowClosed(by *Actor) bool {
	if e.schedule == nil {
		return false
	}
	ok, next, why := e.schedule.Allowed(time.Now())
	switch {
	case ok:
		return false
	case by != nil:
		e.emit(Event{Type: EventWindowOverride, Actor: by, Reason: why})
		return false
	}
	s := &e.state
	if s.Phase == PhaseHolding && s.Hold == HoldWindow {
		return true
	}
	ev := Event{Type: EventHeld, Hold: HoldWindow, Reason: why}
	if !next.IsZero() {
		ev.Until = timePtr(next)
	}
	e.emit(ev)
	return true
}

// windowHold ends a hold for the release window once one opens; otherwise it returns when
// the next opens (zero if it is not holding for one).
func (e *Engine) windowHold(now time.Time) (time.Time, bool) {
	s := &e.state
	if s.Phase != PhaseHolding || s.Hold != HoldWindow {
		return time.Time{}, false
	}
	if e.schedule == nil {
		e.emit(Event{Type: EventResumed, Reason: "no release windows"})
		return time.Time{}, true
	}
	ok, next, _ := e.schedule.Allowed(now)
	if ok {
		e.emit(Event{Type: EventResumed, Reason: "release window open"})
		return time.Time{}, true
	}
	return next, false
}

var errNoSegments = errors.New("engine: the rollout has segment steps, but its traffic provider cannot route segments")
