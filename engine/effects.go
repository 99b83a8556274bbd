package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// weightResult is what a weight change came to.
type weightResult struct {
	target   int
	attempt  int
	err      error
	canceled bool // superseded by a newer target; not a provider failure
}

// lookKey identifies the analysis a look belongs to, so a late result of an earlier step or
// attempt is dropped.
type lookKey struct {
	attempt, step int
	since         time.Time
}

// lookResult is one look at every check.
type lookResult struct {
	key    lookKey
	checks []CheckResult
}

// ensureWeight starts setting the state's target weight unless a change is already under way
// or the next retry is not yet due; it returns when to try again.
func (e *Engine) ensureWeight(now time.Time) time.Time {
	s := &e.state
	if e.weightBusy {
		e.cancelStaleWeight()
		return time.Time{}
	}
	if now.Before(s.RetryAt) {
		return s.RetryAt
	}
	target, attempt := s.Target, s.WeightAttempts+1
	ctx, cancel := context.WithTimeout(context.Background(), weightTimeout)
	e.weightBusy, e.weightTarget, e.weightCancel = true, target, cancel
	e.spawn(func() any {
		defer cancel()
		err := e.setAndConfirm(ctx, target)
		return weightResult{target: target, attempt: attempt, err: err, canceled: err != nil && errors.Is(ctx.Err(), context.Canceled)}
	})
	return time.Time{}
}

// setAndConfirm sets the weight and reads it back: a provider that accepted the change but
// does not show it has not made it.
func (e *Engine) setAndConfirm(ctx context.Context, target int) error {
	if err := e.router.SetWeight(ctx, target); err != nil {
		return err
	}
	got, err := e.router.Weight(ctx)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if got != target {
		return fmt.Errorf("provider reports %d%% after setting %d%%", got, target)
	}
	return nil
}

// cancelStaleWeight cancels a weight change whose target is no longer wanted (a rollback
// must not wait behind a hanging step change).
func (e *Engine) cancelStaleWeight() {
	if e.weightBusy && e.weightTarget != e.state.Target && e.weightCancel != nil {
		e.weightCancel()
	}
}

func (e *Engine) handleWeight(r weightResult) {
	e.weightBusy, e.weightCancel = false, nil
	s := &e.state
	if r.err == nil {
		e.emit(Event{Type: EventWeightSet, Weight: intPtr(r.target)})
		return
	}
	if r.canceled {
		return // superseded: the provider's weight is unknown until the new target is confirmed
	}
	now := time.Now()
	backoff := min(firstWeightBackoff<<min(r.attempt-1, 16), maxBackoff)
	ev := Event{Type: EventWeightFailed, Weight: intPtr(r.target), Attempt: r.attempt, Error: r.err.Error(), RetryAt: timePtr(now.Add(backoff))}
	switch s.Phase {
	case PhaseRollingBack:
		ev.Reason = fmt.Sprintf("ROLLBACK FAILING: could not send 0%% to canary (attempt %d); retrying in %s; canary may still get traffic", r.attempt, backoff)
	case PhasePromoting:
		ev.Reason = fmt.Sprintf("promotion failing: could not send 100%% to canary (attempt %d); retrying in %s", r.attempt, backoff)
	default:
		ev.Reason = fmt.Sprintf("could not set canary to %d%% (attempt %d of %d)", r.target, r.attempt, maxWeightAttempts)
		if r.attempt < maxWeightAttempts {
			ev.Reason += fmt.Sprintf("; retrying in %s", backoff)
		} else {
			ev.RetryAt = nil
		}
	}
	e.emit(ev)
	if s.Phase == PhaseRunning && r.attempt >= maxWeightAttempts {
		e.emit(Event{Type: EventHeld, Hold: HoldRouter, Reason: fmt.Sprintf(
			"traffic provider failed %d times setting %d%% (%v); resume to try again, or roll back", r.attempt, r.target, r.err)})
	}
}

// startLook samples every check over the analysis window so far and judges it.
func (e *Engine) startLook(now time.Time) {
	s := &e.state
	key := lookKey{attempt: s.Attempt, step: s.Step, since: s.AnalysisStartedAt}
	interval := time.Duration(e.spec.Analysis.Interval)
	ctx, cancel := context.WithTimeout(context.Background(), min(max(interval, minLookTimeout), maxLookTimeout))
	e.lookBusy, e.lookKey, e.lookCancel = true, key, cancel
	// The first point covers the first whole interval after the window opened.
	start := s.AnalysisStartedAt.Add(interval)
	weight := s.Weight // one window, one weight: a weight change opens a new window
	if len(s.Segments) > 0 {
		weight = -1 // a segment sends its users to the canary beside the weight: no share to expect
	}
	e.spawn(func() any {
		defer cancel()
		return lookResult{key: key, checks: e.look(ctx, start, now, interval, weight)}
	})
}

func (e *Engine) cancelLook() {
	if e.lookCancel != nil {
		e.lookCancel()
	}
	e.lookBusy, e.lookCancel = false, nil
	e.lookKey = lookKey{}
}

func (e *Engine) handleLook(r lookResult) {
	s := &e.state
	if r.key != e.lookKey || r.key != (lookKey{attempt: s.Attempt, step: s.Step, since: s.AnalysisStartedAt}) {
		return // from a step, attempt or window that is over
	}
	e.lookBusy, e.lookCancel = false, nil
	switch s.Phase {
	case PhaseRunning, PhasePaused, PhaseHolding:
	default:
		return
	}
	e.emit(Event{Type: EventAnalysis, Checks: r.checks})
	e.judgeLook(time.Now())
}

func (e *Engine) handleResult(res any) {
	switch r := res.(type) {
	case weightResult:
		e.handleWeight(r)
	case lookResult:
		e.handleLook(r)
	case segmentsResult:
		e.handleSegments(r)
	case flagResult:
		e.handleFlag(r)
	case hookResult:
		e.handleHook(r)
	}
}

// spawn runs an effect and delivers its result to the loop, unless the engine has stopped.
func (e *Engine) spawn(effect func() any) {
	e.effects.Add(1)
	go func() {
		defer e.effects.Done()
		res := effect()
		select {
		case e.results <- res:
		case <-e.quit:
		}
	}()
}

// look queries and judges every check concurrently; weight is the canary's confirmed weight
// over the window (-1 when unknown).
func (e *Engine) look(ctx context.Context, start, end time.Time, step time.Duration, weight int) []CheckResult {
	out := make([]CheckResult, len(e.spec.Checks))
	var wg sync.WaitGroup
	for i := range e.spec.Checks {
		wg.Go(func() {
			out[i] = JudgeCheck(ctx, e.source, e.spec.Checks[i], e.judges[i], e.family, start, end, step, weight)
		})
	}
	wg.Wait()
	return out
}

// JudgeCheck is one look at one check: it asks src for the check's samples over the window
// start..end at step and judges them with j, the check's criteria split across a family of
// tests. weight is the canary's percent of traffic over the window (-1 when unknown). A query
// that matched nothing, or a source that failed, makes the check inconclusive with the reason
// (and SourceError set for a failure): never a pass. The engine looks this way at each
// interval, and perch judge serve at each ask.
func JudgeCheck(ctx context.Context, src Source, c spec.Check, j metrics.Judge, family int, start, end time.Time, step time.Duration, weight int) CheckResult {
	res := CheckResult{Check: c.Name, LastCanary: metrics.Number(math.NaN()), LastBaseline: metrics.Number(math.NaN())}
	var missing string // a query that matched nothing: too little evidence, not an outage
	failed := func(q metrics.Query, err error, emptyIsZero bool) {
		switch {
		case err == nil:
		case errors.Is(err, metrics.ErrNoData) && emptyIsZero:
		case errors.Is(err, metrics.ErrNoData):
			missing = q.String()
		default:
			res.SourceError = err.Error()
			if !strings.Contains(res.SourceError, q.String()) {
				res.SourceError = fmt.Sprintf("%s: %v", q, err)
			}
		}
	}
	fetch := func(q metrics.Query, emptyIsZero bool) []metrics.Sample {
		if res.SourceError != "" || missing != "" {
			return nil
		}
		samples, err := src.Samples(ctx, q, start, end, step)
		if err == nil && len(samples) == 0 {
			err = metrics.ErrNoData
		}
		failed(q, err, emptyIsZero)
		return samples
	}
	fetchHistogram := func(q metrics.Query) metrics.Histogram {
		if res.SourceError != "" || missing != "" {
			return metrics.Histogram{}
		}
		hs, ok := src.(HistogramSource)
		if !ok { // New refuses such a rollout; a judges file may still ask
			failed(q, errors.New("this metrics source has no histograms"), false)
			return metrics.Histogram{}
		}
		h, err := hs.Histogram(ctx, q, start, end, step)
		if err == nil && len(h.Points) == 0 {
			err = metrics.ErrNoData
		}
		failed(q, err, false)
		return h
	}
	var canary, baseline metrics.Series
	var traffic *metrics.Traffic
	if c.Builtin != "" && (c.IsCounts() || c.IsHistogram()) && weight >= 0 {
		// A builtin check's baseline is the stable version taking the rest of the traffic, so
		// the judge can test the canary's share of requests (the totals) against its weight.
		traffic = &metrics.Traffic{Weights: []float64{float64(weight)}}
	}
	switch {
	case c.IsHistogram():
		canary, baseline = histograms(fetchHistogram(c.Histogram.Canary), fetchHistogram(c.Histogram.Baseline))
	case c.IsCounts():
		// An error counter that has never counted has no series yet: no events, not no data.
		canary = counts(fetch(c.Events.Canary, true), fetch(c.Total.Canary, false))
		baseline = counts(fetch(c.Events.Baseline, true), fetch(c.Total.Baseline, false))
		res.LastCanary, res.LastBaseline = lastRate(canary), lastRate(baseline)
	default:
		canary = metrics.Series{Values: values(fetch(c.Canary, false))}
		baseline = metrics.Series{Values: values(fetch(c.Baseline, false))}
		res.LastCanary, res.LastBaseline = lastValue(canary.Values), lastValue(baseline.Values)
	}
	if res.SourceError != "" || missing != "" {
		reason := "metrics source: " + res.SourceError
		if res.SourceError == "" {
			reason = "no data for " + missing
		}
		res.Result = metrics.Result{Verdict: metrics.Inconclusive, Reason: reason,
			Canary: metrics.Number(math.NaN()), Baseline: metrics.Number(math.NaN()), Deviation: metrics.Number(math.NaN())}
		return res
	}
	criteria := c.Criteria()
	criteria.Family = family
	res.Result = j.Judge(metrics.Input{Criteria: criteria, Canary: canary, Baseline: baseline, Traffic: traffic})
	if c.IsHistogram() {
		// The values shown interval by interval are what the judge shows: the share of requests
		// slower than the bound where the canary strays furthest.
		if bound, ok := res.Result.Stats["bound"]; ok {
			res.LastCanary, res.LastBaseline = lastShareSlower(canary, float64(bound)), lastShareSlower(baseline, float64(bound))
		}
	}
	return res
}

// histograms lines the two sides' histograms up by time, as the judge compares them interval
// by interval: a time only one side has data for is an interval without data on the other.
func histograms(canary, baseline metrics.Histogram) (metrics.Series, metrics.Series) {
	var times []int64
	rows := func(h metrics.Histogram) map[int64][]float64 {
		at := make(map[int64][]float64, len(h.Points))
		for _, p := range h.Points {
			t := p.Time.UnixNano()
			if _, seen := at[t]; !seen {
				times = append(times, t)
			}
			at[t] = p.Counts
		}
		return at
	}
	c, b := rows(canary), rows(baseline)
	slices.Sort(times)
	times = slices.Compact(times)
	cs := metrics.Series{Bounds: canary.Bounds, Buckets: make([][]float64, len(times))}
	bs := metrics.Series{Bounds: baseline.Bounds, Buckets: make([][]float64, len(times))}
	for i, t := range times {
		cs.Buckets[i], bs.Buckets[i] = c[t], b[t]
	}
	return cs, bs
}

// lastShareSlower is the share of requests slower than bound in the last interval that had any.
func lastShareSlower(s metrics.Series, bound float64) metrics.Number {
	k := slices.Index(s.Bounds, bound)
	for i := len(s.Buckets) - 1; i >= 0 && k >= 0; i-- {
		row := s.Buckets[i]
		if len(row) != len(s.Bounds) || !(row[len(row)-1] > 0) {
			continue
		}
		return metrics.Number((row[len(row)-1] - row[k]) / row[len(row)-1])
	}
	return metrics.Number(math.NaN())
}

// counts pairs each total with the event count taken at the same time; a time with a total
// and no event count had no events.
func counts(events, total []metrics.Sample) metrics.Series {
	at := make(map[int64]float64, len(events))
	for _, ev := range events {
		at[ev.Time.UnixNano()] = ev.Value
	}
	s := metrics.Series{Events: make([]float64, len(total)), Total: make([]float64, len(total))}
	for i, t := range total {
		s.Events[i] = at[t.Time.UnixNano()]
		s.Total[i] = t.Value
	}
	return s
}

func values(samples []metrics.Sample) []float64 {
	out := make([]float64, len(samples))
	for i, s := range samples {
		out[i] = s.Value
	}
	return out
}

func lastValue(v []float64) metrics.Number {
	if len(v) == 0 {
		return metrics.Number(math.NaN())
	}
	return metrics.Number(v[len(v)-1])
}

func lastRate(s metrics.Series) metrics.Number {
	n := s.Len()
	if n == 0 || s.Total[n-1] <= 0 {
		return metrics.Number(math.NaN())
	}
	return metrics.Number(s.Events[n-1] / s.Total[n-1])
}
