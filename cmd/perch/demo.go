package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/demo"
	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/internal/yamlpos"
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
	socketGroup string
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
	addSocketFlags(c, &f.socket, &f.socketGroup)
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
		return badInput(fmt.Errorf("--scenario: unknown scenario %q%s", f.scenario, yamlpos.Hint(f.scenario, demo.ScenarioNames())))
	}
	if _, err := os.Lstat(f.record); f.record != "" && err == nil {
		return badInput(fmt.Errorf("--record %s already exists; a demo records a new journal (it cannot be resumed): choose another name", f.record))
	}
	served := f.ssh.addr != ""
	theme, err := a.checkTUI(runFlags{headless: f.headless || served, theme: f.theme})
	if err != nil {
		return err
	}
	keys, err := demoKeys(f.ssh)
	if err != nil {
		return err
	}
	if err := checkSSHLimits(&f.ssh); err != nil {
		return err
	}
	var front frontEnd
	switch {
	case served:
		front = &sshFront{keys: keys, flags: f.ssh, theme: theme, format: f.output, holdOpen: f.holdOpen}
	case f.headless:
		front = headless{format: f.output}
	default:
		// Under the TUI the engine stays after a rollback, so the operator can retry (R), as
		// perch run's does; a demo cannot be resumed once stopped.
		front = localTUI{theme: theme, format: f.output, noResume: true}
	}
	var stack *demo.Stack
	return a.supervise(c.Context(), supervision{
		open: func(context.Context) (*rollout, error) {
			var err error
			stack, err = demo.Start(demo.Options{Scenario: f.scenario, Speed: f.speed})
			if err != nil {
				return nil, runtimeError(err)
			}
			return a.openDemo(stack, f.record)
		},
		linger: served || !f.headless, socket: f.socket, socketGroup: f.socketGroup, metricsAddr: f.metricsAddr, front: front,
		begin: func(ctx context.Context, eng *engine.Engine) func(engine.Outcome) {
			return a.driveDemo(ctx, eng, stack)
		},
		stopped: func(engine.State, string) error { return errors.New("demo stopped before the rollout ended") },
	})
}

// demoKeys loads the key files of demo --ssh; nil keys are the open demo mode, which listens
// on loopback only.
func demoKeys(f sshFlags) (*remote.Keyring, error) {
	var keys *remote.Keyring
	var err error
	switch {
	case f.operatorKeys != "":
		if keys, err = remote.LoadKeyring(f.operatorKeys, f.viewerKeys); err != nil {
			return nil, badInput(err)
		}
	case f.viewerKeys != "":
		return nil, badInput(errors.New("--viewer-keys needs --operator-keys: without them everyone on loopback is an operator"))
	}
	served := f.addr != ""
	if !served && (keys != nil || f.hostKey != "") {
		return nil, badInput(errors.New("--operator-keys, --viewer-keys and --host-key go with --ssh ADDR"))
	}
	if served && keys == nil {
		if host, _, err := net.SplitHostPort(f.addr); err != nil || !isLoopback(host) {
			return nil, badInput(fmt.Errorf("--ssh %s without --operator-keys: the open demo mode only listens on loopback (127.0.0.1:PORT); give key files to serve elsewhere", f.addr))
		}
	}
	return keys, nil
}

// openDemo journals the demo's rollout; closing it stops the stack.
func (a *app) openDemo(stack *demo.Stack, record string) (*rollout, error) {
	r := &rollout{spec: stack.Spec, router: stack.Proxy, source: stack.Source, flags: stack.Flags, release: func() { stack.Close() },
		note: fmt.Sprintf("demo %s · proxy %s", stack.Scenario.Name, stack.Proxy.URL())}
	journal, journalPath, err := createJournal(stack.Spec, record)
	if err != nil {
		r.close()
		return nil, err
	}
	r.journal = journal
	fmt.Fprintf(a.stderr, "perch: journal %s (replay it with: perch replay %s)\n", journalPath, journalPath)
	return r, nil
}

// driveDemo says what the demo is and where its proxy listens, and drives the scenario as the
// engine's events arrive; the function it returns waits for the driver and reports the load.
func (a *app) driveDemo(ctx context.Context, eng *engine.Engine, stack *demo.Stack) func(engine.Outcome) {
	fmt.Fprintf(a.stderr, "perch: demo %q: %s\n", stack.Scenario.Name, stack.Scenario.Summary)
	if stack.FlagsFile != "" {
		fmt.Fprintf(a.stderr, "perch: flagd file %s (watch the flag's split change in it)\n", stack.FlagsFile)
	}
	fmt.Fprintf(a.stderr, "perch: proxy on %s (try: curl %s/ or curl -H '%s: canary' -H '%s: %s' %s/)\n",
		stack.Proxy.URL(), stack.Proxy.URL(), demo.OverrideHeader, proxy.TokenHeader, stack.OverrideToken, stack.Proxy.URL())
	driven := make(chan struct{})
	events := eng.Events()
	go func() {
		defer close(driven)
		stack.Drive(ctx, events)
	}()
	return func(out engine.Outcome) {
		<-driven
		load := stack.Load.Stats()
		ended := out.Words()
		if st := eng.Snapshot(); st.Phase.Done() { // a lingering engine stopped after the end
			ended = st.Phase.Words()
		}
		fmt.Fprintf(a.stderr, "perch: demo %q ended %s (this scenario is expected to end %s); %d requests sent, %d skipped at the concurrency limit\n",
			stack.Scenario.Name, ended, stack.Scenario.Expect.Words(), load.Sent, load.Skipped)
	}
}

// isLoopback reports whether host names this machine's loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
