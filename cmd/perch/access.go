package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/metrics"
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
	problem := func(path, msg string) {
		problems++
		// msg quotes what the provider or source answered: one printable line.
		fmt.Fprintf(a.stderr, "%s: %s: %s\n", rollout.Where(path), path, printable.Line(msg))
	}
	trafficPath := "traffic." + rollout.Traffic.Kind()
	router, closeRouter, err := a.registry.router(ctx, rollout, flags)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.code == exitBadInput {
			return err // this build cannot reach the provider at all
		}
		problem(trafficPath, err.Error())
	} else {
		defer closeRouter()
		rctx, cancel := context.WithTimeout(ctx, accessTimeout)
		w, err := router.Weight(rctx)
		cancel()
		if err != nil {
			problem(trafficPath, err.Error())
		} else {
			fmt.Fprintf(a.stdout, "traffic: %s: reachable, canary at %d%%\n", describeRouter(rollout, router), w)
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

// checkQueries connects the metrics source and runs every query once, reporting failures
// through problem.
func (a *app) checkQueries(ctx context.Context, rollout *spec.Rollout, router engine.Router, flags connectFlags, problem func(path, msg string)) {
	kind := rollout.Metrics.Kind()
	mk, ok := a.registry.sources[kind]
	switch {
	case !ok:
		problem("metrics."+kind, fmt.Sprintf("metrics source %q is not available in this build of perch", kind))
		return
	case router == nil && rollout.Metrics.Builtin != nil:
		problem("metrics."+kind, "the builtin source is the proxy's own observations; it cannot be checked without the proxy")
		return
	}
	source, err := mk(ctx, rollout, router, flags)
	if err != nil {
		problem("metrics."+kind, err.Error())
		return
	}
	defer (&backend{source: source}).close()

	step := time.Duration(rollout.Analysis.Interval)
	end := time.Now()
	start := end.Add(-accessIntervals * step)
	window := spec.Duration(accessIntervals * step).String()
	queries := queriesOf(rollout)
	results := make([]queryResult, len(queries))
	var wg sync.WaitGroup
	for i, q := range queries {
		wg.Go(func() {
			qctx, cancel := context.WithTimeout(ctx, accessTimeout)
			defer cancel()
			samples, err := source.Samples(qctx, q.query, start, end, step)
			results[i] = queryResult{samples: samples, err: err}
		})
	}
	wg.Wait()
	for i, q := range queries {
		r := results[i]
		name := fmt.Sprintf("check %s %s", q.check, q.side)
		switch {
		case r.err != nil && !errors.Is(r.err, metrics.ErrNoData):
			problem(q.path, fmt.Sprintf("%s: %v", name, r.err))
		case len(r.samples) == 0:
			fmt.Fprintf(a.stdout, "%s: %s: %s: no data over the last %s (%s)\n", rollout.Where(q.path), q.path, name, window, noDataHint(q.side))
		default:
			last := r.samples[len(r.samples)-1].Value
			fmt.Fprintf(a.stdout, "%s: %d sample(s) over the last %s, latest %s\n", name, len(r.samples), window, metrics.FormatValue(last))
		}
	}
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
	err     error
}

// namedQuery is one query of a check, with the path where the file wrote it.
type namedQuery struct {
	check, side, path string
	query             metrics.Query
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
