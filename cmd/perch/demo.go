package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/demo"
	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/providers/proxy"
	"github.com/perchhq/perch/themes"
	"github.com/perchhq/perch/tui/remote"
)

type demoFlags struct {
	scenario    string
	headless    bool
	output      string
	record      string
	speed       float64
	metricsAddr string
	theme       string
	socket      string
	ssh         sshFlags
	holdOpen    time.Duration
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
them, and a load generator sending about ` + fmt.Sprint(demo.DefaultRate) + ` requests/s through it. The rollout goes
1% → 5% → 25% → 50% in steps of about 15 s and is judged from the proxy's own metrics.
The proxy's address is printed at the start so you can curl it while it runs (add
"X-Perch-Version: canary" and the run's token, printed with it, to pin a request to the
canary). The run is journaled like
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
	c.Flags().Float64Var(&f.speed, "speed", 1, fmt.Sprintf("run the rollout this many times faster; the load grows with it up to %d requests/s, so past about %.1f× the first step may hold for want of data", demo.MaxRate, float64(demo.MaxRate)/demo.DefaultRate))
	addMetricsAddrFlag(c, &f.metricsAddr)
	c.Flags().StringVar(&f.theme, "theme", themes.Default, "TUI colours: "+strings.Join(themes.Names(), ", ")+", or a theme file NAME.yaml")
	c.Flags().StringVar(&f.socket, "socket", "", "control socket (default $XDG_RUNTIME_DIR/perch/NAME.sock, else beside the journal; none: no socket)")
	addSSHFlags(c, &f.ssh, true)
	c.Flags().DurationVar(&f.holdOpen, "hold-open", time.Minute, "with --ssh: how long sessions stay open after the rollout is promoted")
	return c
}

func (a *app) demo(c *cobra.Command, f demoFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if f.speed <= 0 || math.IsInf(f.speed, 0) || math.IsNaN(f.speed) {
		return badInput(fmt.Errorf("--speed: want a positive number, got %v", f.speed))
	}
	if _, err := demo.FindScenario(f.scenario); err != nil {
		return badInput(fmt.Errorf("--scenario: %w", err))
	}
	served := f.ssh.addr != ""
	theme, err := a.checkTUI(runFlags{headless: f.headless || served, theme: f.theme})
	if err != nil {
		return err
	}
	var keys *remote.Keyring // nil: the open demo mode, loopback only
	switch {
	case f.ssh.operatorKeys != "":
		if keys, err = remote.LoadKeyring(f.ssh.operatorKeys, f.ssh.viewerKeys); err != nil {
			return badInput(err)
		}
	case f.ssh.viewerKeys != "":
		return badInput(errors.New("--viewer-keys needs --operator-keys: without them everyone on loopback is an operator"))
	}
	if !served && (keys != nil || f.ssh.hostKey != "") {
		return badInput(errors.New("--operator-keys, --viewer-keys and --host-key go with --ssh ADDR"))
	}
	if served && keys == nil {
		if host, _, err := net.SplitHostPort(f.ssh.addr); err != nil || !isLoopback(host) {
			return badInput(fmt.Errorf("--ssh %s without --operator-keys: the open demo mode only listens on loopback (127.0.0.1:PORT); give key files to serve elsewhere", f.ssh.addr))
		}
	}
	stack, err := demo.Start(demo.Options{Scenario: f.scenario, Speed: f.speed})
	if err != nil {
		return runtimeError(err)
	}
	defer stack.Close()
	journal, journalPath, err := createJournal(stack.Spec, f.record)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "perch: journal %s (replay it with: perch replay %s)\n", journalPath, journalPath)
	defer journal.Close()
	eng, err := engine.New(engine.Config{Spec: stack.Spec, Router: stack.Proxy, Source: stack.Source, Journal: journal, Linger: served})
	if err != nil {
		return runtimeError(err)
	}
	ctx := c.Context()
	stopControl, err := a.serveControl(ctx, eng, stack.Spec, f.socket, journal.Path())
	if err != nil {
		return err
	}
	defer stopControl()
	stopMetrics, err := a.serveMetrics(f.metricsAddr, eng, stack.Proxy)
	if err != nil {
		return err
	}
	defer stopMetrics()
	fmt.Fprintf(a.stderr, "perch: demo %q: %s\n", stack.Scenario.Name, stack.Scenario.Summary)
	fmt.Fprintf(a.stderr, "perch: proxy on %s (try: curl %s/ or curl -H '%s: canary' -H '%s: %s' %s/)\n",
		stack.Proxy.URL(), stack.Proxy.URL(), demo.OverrideHeader, proxy.TokenHeader, stack.OverrideToken, stack.Proxy.URL())
	driven := make(chan struct{})
	scenarioEvents := eng.Events()
	go func() {
		defer close(driven)
		stack.Drive(ctx, scenarioEvents)
	}()
	var out engine.Outcome
	switch {
	case served:
		out, err = a.runServed(ctx, eng, keys, f.ssh, theme, f.output, f.holdOpen)
	case f.headless:
		printed := make(chan struct{})
		go printEvents(eng.Events(), a.stdout, stack.Spec, f.output, printed)
		out, err = eng.Run(ctx)
		<-printed
	default:
		b, held := a.holdingStderr()
		note := fmt.Sprintf("demo %s · proxy %s", stack.Scenario.Name, stack.Proxy.URL())
		out, err = b.runTUI(ctx, eng, theme, f.output, held, note)
	}
	<-driven
	load := stack.Load.Stats()
	fmt.Fprintf(a.stderr, "perch: demo %q ended %s (this scenario is expected to end %s); %d requests sent, %d skipped at the concurrency limit\n",
		stack.Scenario.Name, out, stack.Scenario.Expect, load.Sent, load.Skipped)
	switch {
	case errors.Is(err, errSSHStart):
		return err
	case err != nil:
		return runtimeError(fmt.Errorf("stopped: %w", err))
	case out == engine.OutcomePromoted:
		return nil
	case out == engine.OutcomeRolledBack, eng.Snapshot().Phase == engine.PhaseRolledBack:
		return exitWith(exitRolledBack)
	}
	return runtimeError(errors.New("demo stopped before the rollout ended"))
}

// isLoopback reports whether host names this machine's loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
