package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/providers/proxy"
)

// Access checks: how long each call may take, and how many analysis intervals back the
// metric queries look.
const (
	accessTimeout   = 30 * time.Second
	accessIntervals = 10
)

// checkAccess reaches the provider and the metrics source the rollout file names, the way
// a run would, and reports what it found. Problems go to stderr as FILE:LINE:COL: message.
func (a *app) checkAccess(ctx context.Context, file string, rollout *spec.Rollout, flags connectFlags) error {
	problems := 0
	problem := func(p accessProblem) {
		problems++
		// msg quotes what the provider or source answered: one printable line.
		fmt.Fprintln(a.stderr, p.located(rollout, printable.Line(p.msg)))
	}
	router, closeRouter, err := a.registry.router(ctx, rollout, flags)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.code == exitBadInput {
			return err // this build cannot reach the provider at all
		}
		problem(accessProblem{"traffic." + rollout.Traffic.Kind(), err.Error()})
	} else {
		defer closeRouter()
		what, w, ps := reachRouter(ctx, rollout, router)
		for _, p := range ps {
			problem(p)
		}
		if len(ps) == 0 {
			fmt.Fprintf(a.stdout, "traffic: %s: reachable, canary at %d%%\n", what, w)
			a.checkStrategies(ctx, rollout, router, problem)
		}
	}
	if len(rollout.Checks) > 0 {
		a.checkQueries(ctx, rollout, router, flags, problem)
	}
	if problems > 0 {
		return runtimeError(fmt.Errorf("%d problem(s) reaching what %s names", problems, file))
	}
	return nil
}

// accessProblem is something the rollout file names that could not be reached or used, with
// the path where the file names it.
type accessProblem struct{ path, msg string }

// located is msg as FILE:LINE:COL: PATH: msg, unless msg already says where in the file it is
// (a factory's own positioned error, e.g. an unset secret).
func (p accessProblem) located(rollout *spec.Rollout, msg string) string {
	if strings.HasPrefix(msg, rollout.File()+":") {
		return msg
	}
	return fmt.Sprintf("%s: %s: %s", rollout.Where(p.path), p.path, msg)
}

// preflight reaches a rollout's provider and source once before its first event, as
// validate --check-access does: a run that could not move traffic or read its metrics fails
// with one line, before it journals a start it would then hold on.
func preflight(ctx context.Context, rollout *spec.Rollout, b *backend) error {
	_, _, problems := reachRouter(ctx, rollout, b.router)
	if len(problems) == 0 {
		_, ps := reachStrategies(ctx, rollout, b.router, b.flags)
		problems = append(problems, ps...)
	}
	if len(problems) == 0 && b.source != nil {
		queries, results := runQueries(ctx, rollout, b.source)
		for i, r := range results {
			if r.err != nil && !errors.Is(r.err, metrics.ErrNoData) {
				problems = append(problems, queries[i].problem(r.err))
			}
		}
	}
	switch {
	case ctx.Err() != nil:
		return runtimeError(fmt.Errorf("stopped before the rollout started: %w", ctx.Err()))
	case len(problems) == 0:
		return nil
	}
	more := ""
	if len(problems) > 1 {
		more = fmt.Sprintf(" (and %d more: perch validate %s --check-access lists them)", len(problems)-1, rollout.File())
	}
	p := problems[0]
	return runtimeError(fmt.Errorf("cannot start: %s%s", p.located(rollout, p.msg), more))
}

// reachRouter reads the provider's weight, as a run does first, and for perch's own proxy
// sends a request to each backend. It returns what the provider points at and its weight, or
// what failed.
func reachRouter(ctx context.Context, rollout *spec.Rollout, router engine.Router) (what string, weight int, problems []accessProblem) {
	rctx, cancel := context.WithTimeout(ctx, accessTimeout)
	defer cancel()
	w, err := router.Weight(rctx)
	if err != nil {
		return "", 0, []accessProblem{{"traffic." + rollout.Traffic.Kind(), err.Error()}}
	}
	what = describeRouter(rollout, router)
	if px, ok := router.(*proxy.Server); ok && rollout.Traffic.Proxy != nil {
		p := rollout.Traffic.Proxy
		if problems := reachBackends(ctx, p); len(problems) > 0 {
			return "", 0, problems
		}
		what = fmt.Sprintf("proxy on %s (stable %s and canary %s answering)", px.Addr(), p.Stable, p.Canary)
	}
	return what, w, nil
}

// backendTimeout bounds the request to each of the proxy's backends.
const backendTimeout = 10 * time.Second

// reachBackends sends one request to each of the proxy's backends. Any HTTP answer, an error
// status included, counts: the proxy only needs them to answer. A refused or timed-out
// connection does not.
func reachBackends(ctx context.Context, p *spec.ProxyTraffic) []accessProblem {
	client := &http.Client{Timeout: backendTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a redirect is an answer
	}}
	var problems []accessProblem
	for _, b := range []struct{ side, url string }{{"stable", p.Stable}, {"canary", p.Canary}} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url, nil)
		if err == nil {
			var resp *http.Response
			if resp, err = client.Do(req); err == nil {
				resp.Body.Close()
				continue
			}
		}
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // the URL is in the message already
		}
		problems = append(problems, accessProblem{"traffic.proxy." + b.side, fmt.Sprintf("the %s backend %s does not answer: %v", b.side, b.url, err)})
	}
	return problems
}

// checkQueries connects the metrics source and runs every query once, reporting failures
// through problem.
func (a *app) checkQueries(ctx context.Context, rollout *spec.Rollout, router engine.Router, flags connectFlags, problem func(accessProblem)) {
	kind := rollout.Metrics.Kind()
	mk, ok := a.registry.sources[kind]
	switch {
	case !ok:
		problem(accessProblem{"metrics." + kind, fmt.Sprintf("metrics source %q is not available in this build of perch", kind)})
		return
	case router == nil && rollout.Metrics.Builtin != nil:
		problem(accessProblem{"metrics." + kind, "the builtin source is the proxy's own observations; it cannot be checked without the proxy"})
		return
	}
	source, err := mk(ctx, rollout, router, flags)
	if err != nil {
		problem(accessProblem{"metrics." + kind, err.Error()})
		return
	}
	defer (&backend{source: source}).close()
	window := spec.Duration(accessIntervals * time.Duration(rollout.Analysis.Interval)).String()
	queries, results := runQueries(ctx, rollout, source)
	for i, q := range queries {
		r := results[i]
		switch {
		case r.err != nil && !errors.Is(r.err, metrics.ErrNoData):
			problem(q.problem(r.err))
		case len(r.samples) == 0:
			fmt.Fprintf(a.stdout, "%s: %s: %s: no data over the last %s (%s)\n", rollout.Where(q.path), q.path, q.name(), window, noDataHint(q.side))
		case q.histogram:
			last := r.samples[len(r.samples)-1].Value
			fmt.Fprintf(a.stdout, "%s: %d histogram(s) over the last %s at %d bounds, latest of %s requests\n", q.name(), len(r.samples), window, r.bounds, metrics.FormatValue(last))
		default:
			last := r.samples[len(r.samples)-1].Value
			fmt.Fprintf(a.stdout, "%s: %d sample(s) over the last %s, latest %s\n", q.name(), len(r.samples), window, metrics.FormatValue(last))
		}
	}
}

// runQueries runs every check's queries once, concurrently, over the last accessIntervals
// analysis intervals.
func runQueries(ctx context.Context, rollout *spec.Rollout, source engine.Source) ([]namedQuery, []queryResult) {
	step := time.Duration(rollout.Analysis.Interval)
	end := time.Now()
	start := end.Add(-accessIntervals * step)
	queries := queriesOf(rollout)
	results := make([]queryResult, len(queries))
	var wg sync.WaitGroup
	for i, q := range queries {
		wg.Go(func() {
			qctx, cancel := context.WithTimeout(ctx, accessTimeout)
			defer cancel()
			if q.histogram {
				results[i] = askHistogram(qctx, source, q.query, start, end, step)
				return
			}
			samples, err := source.Samples(qctx, q.query, start, end, step)
			results[i] = queryResult{samples: samples, err: err}
		})
	}
	wg.Wait()
	return queries, results
}

func noDataHint(side string) string {
	switch {
	case strings.HasPrefix(side, "events"):
		return "fine for an error count that has not counted yet; otherwise check the query"
	case strings.HasSuffix(side, "canary"):
		return "expected while the canary takes no traffic; otherwise check the query"
	}
	return "check the query: the rollout would hold for want of data"
}

type queryResult struct {
	samples []metrics.Sample
	bounds  int // a histogram's bounds, +Inf among them
	err     error
}

// askHistogram runs a histogram query, its answer given as a sample per point: the point's
// requests (its +Inf count).
func askHistogram(ctx context.Context, source engine.Source, q metrics.Query, start, end time.Time, step time.Duration) queryResult {
	hs, ok := source.(engine.HistogramSource)
	if !ok {
		return queryResult{err: errors.New("this metrics source answers no bucket queries")}
	}
	h, err := hs.Histogram(ctx, q, start, end, step)
	r := queryResult{bounds: len(h.Bounds), err: err}
	for _, p := range h.Points {
		if len(p.Counts) > 0 {
			r.samples = append(r.samples, metrics.Sample{Time: p.Time, Value: p.Counts[len(p.Counts)-1]})
		}
	}
	return r
}

// namedQuery is one query of a check, with the path where the file wrote it.
type namedQuery struct {
	check, side, path string
	query             metrics.Query
	histogram         bool // a bucket query
}

// name says which query it is: "check p99 canary".
func (q namedQuery) name() string { return fmt.Sprintf("check %s %s", q.check, q.side) }

// problem is the query's failure, where the file wrote the query.
func (q namedQuery) problem(err error) accessProblem {
	return accessProblem{q.path, fmt.Sprintf("%s: %v", q.name(), err)}
}

// queriesOf lists every check's queries in file order.
func queriesOf(rollout *spec.Rollout) []namedQuery {
	var out []namedQuery
	for i, c := range rollout.Checks {
		p := fmt.Sprintf("checks[%d]", i)
		at := func(field string) string {
			if c.Builtin != "" {
				return p + ".builtin"
			}
			return p + "." + field
		}
		add := func(side string, q metrics.Query) {
			out = append(out, namedQuery{check: c.Name, side: side, path: at(side), query: q})
		}
		if c.IsHistogram() {
			add("histogram.canary", c.Histogram.Canary)
			add("histogram.baseline", c.Histogram.Baseline)
			out[len(out)-1].histogram, out[len(out)-2].histogram = true, true
			continue
		}
		if c.IsCounts() {
			add("events.canary", c.Events.Canary)
			add("events.baseline", c.Events.Baseline)
			add("total.canary", c.Total.Canary)
			add("total.baseline", c.Total.Baseline)
			continue
		}
		add("canary", c.Canary)
		add("baseline", c.Baseline)
	}
	return out
}

// checkStrategies reads the segments perch routes and each flag the steps set, as a run does
// first, and reports them or what failed through problem.
func (a *app) checkStrategies(ctx context.Context, rollout *spec.Rollout, router engine.Router, problem func(accessProblem)) {
	var flags engine.Flags
	if len(rollout.FlagNames()) > 0 {
		f, err := a.registry.connectFlags(ctx, rollout)
		if err != nil {
			problem(accessProblem{"flags." + rollout.Flags.Kind(), err.Error()})
			return
		}
		flags = f
	}
	found, problems := reachStrategies(ctx, rollout, router, flags)
	for _, p := range problems {
		problem(p)
	}
	for _, line := range found {
		fmt.Fprintln(a.stdout, line)
	}
}

// reachStrategies reads the segments perch routes, when the rollout has segment steps, and
// each flag its setFlag steps set: what it found, in lines, or what failed.
func reachStrategies(ctx context.Context, rollout *spec.Rollout, router engine.Router, flags engine.Flags) (found []string, problems []accessProblem) {
	ctx, cancel := context.WithTimeout(ctx, accessTimeout)
	defer cancel()
	if len(rollout.Segments()) > 0 {
		sr, ok := router.(engine.SegmentRouter)
		names, err := []string(nil), fmt.Errorf("%s cannot route segments", describeRouter(rollout, router))
		if ok {
			names, err = sr.RoutedSegments(ctx)
		}
		if err != nil {
			problems = append(problems, accessProblem{"traffic." + rollout.Traffic.Kind(), "reading the segments: " + err.Error()})
		} else {
			found = append(found, fmt.Sprintf("segments: %d routed to canary now", len(names)))
		}
	}
	if flags == nil {
		return found, problems
	}
	for _, name := range rollout.FlagNames() {
		if p, _, err := flags.ReadFlag(ctx, name); err != nil {
			problems = append(problems, accessProblem{"flags." + rollout.Flags.Kind(), fmt.Sprintf("flag %s: %v", name, err)})
		} else {
			found = append(found, fmt.Sprintf("flag %s: readable, %s", name, flagWords(p)))
		}
	}
	return found, problems
}

func flagWords(p int) string {
	if p < 0 {
		return "not a single percentage rollout"
	}
	return fmt.Sprintf("on for %d%% of users", p)
}
