package main

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/demo"
	"github.com/perchhq/perch/engine"
)

type demoFlags struct {
	scenario    string
	headless    bool
	output      string
	record      string
	speed       float64
	metricsAddr string
}

func (a *app) demoCmd() *cobra.Command {
	var f demoFlags
	var list strings.Builder
	for _, s := range demo.Scenarios() {
		fmt.Fprintf(&list, "  %-19s %s\n", s.Name, s.Summary)
	}
	c := &cobra.Command{
		Use:   "demo",
		Short: "Watch a canary rollout on this machine, no cluster or cloud account needed",
		Long: `Run a rollout on loopback: a stable and a canary HTTP backend, perch's proxy in front of
them, and a load generator sending about 200 requests/s through it. The rollout goes
1% → 5% → 25% → 50% in steps of about 15 s and is judged from the proxy's own metrics.
The proxy's address is printed at the start so you can curl it while it runs (add
"X-Perch-Version: canary" to pin a request to the canary). The run is journaled like
'perch run', so 'perch replay' can play it back.

Scenarios:
` + list.String() + `
Exit codes: 0 promoted, 1 rolled back, 2 bad input, 3 stopped by an error or a signal.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return a.demo(c, f) },
	}
	c.Flags().StringVar(&f.scenario, "scenario", "healthy", "what the canary does: "+strings.Join(demo.ScenarioNames(), ", "))
	c.Flags().BoolVar(&f.headless, "headless", false, "print one line per event instead of the TUI")
	c.Flags().StringVarP(&f.output, "output", "o", outputText, "headless output: text or json (the journal events)")
	c.Flags().StringVar(&f.record, "record", "", "journal file (default ./perch-demo-SCENARIO-TIMESTAMP.jsonl)")
	c.Flags().Float64Var(&f.speed, "speed", 1, "run the rollout this many times faster; the load grows with it up to 2,000 requests/s, so past about 10× the first step may hold for want of data")
	addMetricsAddrFlag(c, &f.metricsAddr)
	return c
}

func (a *app) demo(c *cobra.Command, f demoFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if !f.headless {
		return badInput(errors.New("the terminal UI is not part of this build yet; use --headless"))
	}
	if f.speed <= 0 || math.IsInf(f.speed, 0) || math.IsNaN(f.speed) {
		return badInput(fmt.Errorf("--speed: want a positive number, got %v", f.speed))
	}
	if _, err := demo.FindScenario(f.scenario); err != nil {
		return badInput(fmt.Errorf("--scenario: %w", err))
	}
	stack, err := demo.Start(demo.Options{Scenario: f.scenario, Speed: f.speed})
	if err != nil {
		return runtimeError(err)
	}
	defer stack.Close()
	journal, err := a.createRecording(stack.Spec, f.record)
	if err != nil {
		return err
	}
	defer journal.Close()
	eng, err := engine.New(engine.Config{Spec: stack.Spec, Router: stack.Proxy, Source: stack.Source, Journal: journal})
	if err != nil {
		return runtimeError(err)
	}
	ctx := c.Context()
	stopMetrics, err := a.serveMetrics(f.metricsAddr, eng, stack.Proxy)
	if err != nil {
		return err
	}
	defer stopMetrics()
	fmt.Fprintf(a.stderr, "perch: demo %q: %s\n", stack.Scenario.Name, stack.Scenario.Summary)
	fmt.Fprintf(a.stderr, "perch: proxy on %s (try: curl %s/ or curl -H '%s: canary' %s/)\n",
		stack.Proxy.URL(), stack.Proxy.URL(), demo.OverrideHeader, stack.Proxy.URL())
	printed, driven := make(chan struct{}), make(chan struct{})
	go printEvents(eng.Events(), a.stdout, stack.Spec, f.output, printed)
	scenarioEvents := eng.Events()
	go func() {
		defer close(driven)
		stack.Drive(ctx, scenarioEvents)
	}()
	out, err := eng.Run(ctx)
	<-printed
	<-driven
	load := stack.Load.Stats()
	fmt.Fprintf(a.stderr, "perch: demo %q ended %s (this scenario is expected to end %s); %d requests sent, %d skipped at the concurrency limit\n",
		stack.Scenario.Name, out, stack.Scenario.Expect, load.Sent, load.Skipped)
	switch {
	case err != nil:
		return runtimeError(fmt.Errorf("stopped: %w", err))
	case out == engine.OutcomePromoted:
		return nil
	case out == engine.OutcomeRolledBack:
		return exitWith(exitRolledBack)
	}
	return runtimeError(errors.New("demo stopped before the rollout ended"))
}

// createRecording starts the journal a demo writes, at path or a default name in the current
// directory, and says where it is.
func (a *app) createRecording(spec *engine.Spec, path string) (*engine.Journal, error) {
	if path == "" {
		path = fmt.Sprintf("perch-%s-%s.jsonl", spec.Name, time.Now().UTC().Format("20060102T150405Z"))
	}
	j, err := engine.CreateJournal(path, spec, time.Now())
	if err != nil {
		return nil, badInput(err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	fmt.Fprintf(a.stderr, "perch: journal %s (replay it with: perch replay %s)\n", path, path)
	return j, nil
}
