package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// trafficTimeout bounds perch traffic's calls to the provider, SDK retries included.
const trafficTimeout = time.Minute

type trafficFlags struct {
	set     int
	connect connectFlags
}

func (a *app) trafficCmd() *cobra.Command {
	var f trafficFlags
	c := &cobra.Command{
		Use:   "traffic ROLLOUT.yaml [--set N]",
		Short: "Read or set the traffic provider's canary weight directly",
		Long: `Print the canary weight the rollout file's traffic provider has now, and what it points at,
the segments perch routes to the canary and the feature flags its steps set.
With --set N, send N% of traffic to the canary (0 sends everything back to stable) and
exit 0 once the provider reports N% when read back. This is the operator's manual lever:
it needs no running engine. A running 'perch run' is not told, and will set its own
weight again at its next step.

Exit codes: 0 read (or set and confirmed), 2 bad input, 3 the provider failed or reports
another weight.`,
		Args: exactlyOneArg("rollout file"),
		RunE: func(c *cobra.Command, args []string) error {
			return a.traffic(c.Context(), args[0], f, c.Flags().Changed("set"))
		},
	}
	c.Flags().IntVar(&f.set, "set", 0, "send `N`% (0..100) of traffic to the canary")
	addConnectFlags(c, &f.connect)
	return c
}

func (a *app) traffic(ctx context.Context, path string, f trafficFlags, set bool) error {
	if set && (f.set < 0 || f.set > 100) {
		return badInput(fmt.Errorf("--set %d: want a canary weight from 0 to 100", f.set))
	}
	spec, err := loadSpec(path)
	if err != nil {
		return err
	}
	if spec.Traffic.Proxy != nil && !spec.Traffic.Proxy.Standalone() {
		// The weight of a proxy inside perch lives in the perch that runs it; a second proxy
		// here would only fight it for the listen address.
		return badInput(fmt.Errorf("%s routes through perch's own proxy, which lives in the running perch: read its weight with 'perch status', move it with 'perch rollback' or 'perch promote'", path))
	}
	ctx, cancel := context.WithTimeout(ctx, trafficTimeout)
	defer cancel()
	router, closeRouter, err := a.registry.router(ctx, spec, f.connect)
	if err != nil {
		return err
	}
	defer closeRouter()
	fmt.Fprintf(a.stdout, "%s: %s\n", spec.Name, describeRouter(spec, router))
	before, readErr := router.Weight(ctx)
	if !set {
		if readErr != nil {
			return runtimeError(fmt.Errorf("read the canary weight: %w", readErr))
		}
		fmt.Fprintf(a.stdout, "canary %d%%, stable %d%%\n", before, 100-before)
		return a.trafficStrategies(ctx, spec, router)
	}
	if err := router.SetWeight(ctx, f.set); err != nil {
		return runtimeError(fmt.Errorf("set the canary to %d%%: %w", f.set, err))
	}
	after, err := router.Weight(ctx)
	switch {
	case err != nil:
		return runtimeError(fmt.Errorf("set the canary to %d%%, but could not read it back: %w", f.set, err))
	case after != f.set:
		return runtimeError(fmt.Errorf("set the canary to %d%%, but the provider reports %d%%", f.set, after))
	}
	was := "unknown before"
	if readErr == nil {
		was = fmt.Sprintf("was %d%%", before)
	}
	fmt.Fprintf(a.stdout, "canary %d%%, stable %d%% (%s)\n", after, 100-after, was)
	return nil
}

// router connects only the rollout's traffic provider; close lets go of it.
func (r registry) router(ctx context.Context, spec *spec.Rollout, flags connectFlags) (engine.Router, func(), error) {
	kind := spec.Traffic.Kind()
	mk, ok := r.routers[kind]
	if !ok {
		return nil, nil, badInput(fmt.Errorf("traffic provider %q is not available in this build of perch", kind))
	}
	router, err := mk(ctx, spec, flags)
	if err != nil {
		return nil, nil, runtimeError(fmt.Errorf("connect to %s: %w", kind, err))
	}
	b := &backend{router: router}
	return router, func() { b.close() }, nil
}

// describeRouter says what the provider points at, when it can tell.
func describeRouter(spec *spec.Rollout, router engine.Router) string {
	if s, ok := router.(fmt.Stringer); ok {
		return s.String()
	}
	return spec.Traffic.Kind() + " traffic"
}

// trafficStrategies prints the segments perch routes to the canary, when the rollout has
// segment steps, and the percent of users each flag its setFlag steps set is on for.
func (a *app) trafficStrategies(ctx context.Context, spec *spec.Rollout, router engine.Router) error {
	if len(spec.Segments()) > 0 {
		sr, ok := router.(engine.SegmentRouter)
		if !ok {
			return runtimeError(fmt.Errorf("%s cannot route segments", describeRouter(spec, router)))
		}
		names, err := sr.RoutedSegments(ctx)
		if err != nil {
			return runtimeError(fmt.Errorf("read the segments: %w", err))
		}
		if len(names) == 0 {
			fmt.Fprintln(a.stdout, "segments routed to canary: none")
		} else {
			fmt.Fprintf(a.stdout, "segments routed to canary: %s\n", strings.Join(names, ", "))
		}
	}
	if len(spec.FlagNames()) == 0 {
		return nil
	}
	flags, err := a.registry.connectFlags(ctx, spec)
	if err != nil {
		return err
	}
	where := spec.Flags.Kind()
	if s, ok := flags.(fmt.Stringer); ok {
		where = s.String()
	}
	fmt.Fprintf(a.stdout, "flags: %s\n", where)
	for _, name := range spec.FlagNames() {
		p, _, err := flags.ReadFlag(ctx, name)
		if err != nil {
			return runtimeError(fmt.Errorf("read flag %s: %w", name, err))
		}
		fmt.Fprintf(a.stdout, "flag %s: %s\n", name, flagWords(p))
	}
	return nil
}
