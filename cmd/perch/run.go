package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
	"github.com/perchhq/perch/themes"
)

type runFlags struct {
	headless bool
	output   string
	journal  string
	resume   bool
	theme    string
	socket   string
	connect  connectFlags

	metricsAddr string
}

func (a *app) runCmd() *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "run ROLLOUT.yaml",
		Short: "Run a rollout",
		Long: `Run a rollout: set each step's weight, analyse, advance, and promote, or roll back the
moment the canary is worse. Every event is journaled first; after a crash or a signal,
run again with --resume --journal FILE to continue where it stopped.

Exit codes: 0 promoted, 1 rolled back, 2 bad input, 3 stopped by an error or a signal.`,
		Args: exactlyOneArg("rollout file"),
		RunE: func(c *cobra.Command, args []string) error { return a.run(c, args[0], f) },
	}
	c.Flags().BoolVar(&f.headless, "headless", false, "print one line per event instead of the TUI")
	c.Flags().StringVarP(&f.output, "output", "o", outputText, "headless output: text or json (the journal events)")
	c.Flags().StringVar(&f.journal, "journal", "", "journal file (default ./perch-NAME-TIMESTAMP.jsonl)")
	c.Flags().BoolVar(&f.resume, "resume", false, "continue the rollout recorded in --journal")
	c.Flags().StringVar(&f.theme, "theme", themes.Default, "TUI colours: "+strings.Join(themes.Names(), ", ")+", or a theme file NAME.yaml")
	c.Flags().StringVar(&f.socket, "socket", "", "control socket for perch pause|resume|advance|rollback|promote|status (default $XDG_RUNTIME_DIR/perch/NAME.sock, else beside the journal; none: no socket)")
	addConnectFlags(c, &f.connect)
	addMetricsAddrFlag(c, &f.metricsAddr)
	return c
}

func addConnectFlags(c *cobra.Command, f *connectFlags) {
	c.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	c.Flags().StringVar(&f.kubeContext, "context", "", "kubeconfig context (default the current context)")
	c.Flags().StringVar(&f.awsProfile, "aws-profile", "", "AWS shared-config profile (default $AWS_PROFILE or the default chain)")
}

func (a *app) run(c *cobra.Command, path string, f runFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	theme, err := a.checkTUI(f)
	if err != nil {
		return err
	}
	spec, err := loadSpec(path)
	if err != nil {
		return err
	}
	ctx := c.Context()
	b, err := a.registry.connect(ctx, spec, f.connect)
	if err != nil {
		return err
	}
	defer b.close()
	journal, rec, err := a.openJournal(spec, f)
	if err != nil {
		return err
	}
	defer journal.Close()
	// Until the engine runs, a new journal holds only its header: drop it if setup fails, so a
	// bad flag or an unset variable leaves no stray file behind.
	started := false
	defer func() {
		if !started && rec == nil {
			os.Remove(journal.Path())
		}
	}()
	eng, err := engine.New(engine.Config{Spec: spec, Router: b.router, Source: b.source, Journal: journal, Resume: rec})
	if err != nil {
		return badInput(err)
	}
	stopControl, err := a.serveControl(ctx, eng, spec, f.socket, journal.Path())
	if err != nil {
		return err
	}
	defer stopControl()
	stopMetrics, err := a.serveMetrics(f.metricsAddr, eng, b.router, b.source)
	if err != nil {
		return err
	}
	defer stopMetrics()
	integrations, held := a, (*heldWriter)(nil)
	if !f.headless {
		integrations, held = a.holdingStderr()
	}
	stop, err := integrations.startIntegrations(ctx, spec, eng)
	if err != nil {
		return err
	}
	started = true
	if !f.headless {
		out, err := a.runTUI(ctx, eng, theme, f.output, held, "")
		stop()
		return a.finish(out, err, eng.Snapshot(), path, journal.Path())
	}
	printed := make(chan struct{})
	go printEvents(eng.Events(), a.stdout, spec, f.output, printed)
	out, err := eng.Run(ctx)
	stop()
	<-printed
	return a.finish(out, err, eng.Snapshot(), path, journal.Path())
}

// openJournal creates the run's journal, or with --resume reopens the one named.
func (a *app) openJournal(spec *engine.Spec, f runFlags) (*engine.Journal, *engine.Recording, error) {
	if f.resume {
		if f.journal == "" {
			return nil, nil, badInput(errors.New("--resume needs --journal FILE (the journal of the run to continue)"))
		}
		j, rec, err := engine.OpenJournal(f.journal)
		if err != nil {
			return nil, nil, badInput(err)
		}
		for _, w := range rec.Warnings {
			fmt.Fprintf(a.stderr, "perch: %s: %s\n", f.journal, w)
		}
		return j, rec, nil
	}
	path := f.journal
	if path == "" {
		path = fmt.Sprintf("perch-%s-%s.jsonl", spec.Name, time.Now().UTC().Format("20060102T150405Z"))
	}
	j, err := engine.CreateJournal(path, spec, time.Now())
	if err != nil {
		return nil, nil, badInput(err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	fmt.Fprintf(a.stderr, "perch: journal %s\n", path)
	return j, nil, nil
}

// finish turns how the engine ended into the exit code, saying how to resume a stopped run.
func (a *app) finish(out engine.Outcome, err error, st engine.State, specPath, journalPath string) error {
	switch {
	case err != nil:
		return runtimeError(fmt.Errorf("stopped: %w", err))
	case out == engine.OutcomePromoted:
		return nil
	case out == engine.OutcomeRolledBack:
		return exitWith(exitRolledBack)
	}
	weight := "unknown"
	if st.Weight >= 0 {
		weight = fmt.Sprintf("%d%%", st.Weight)
	}
	return runtimeError(fmt.Errorf("stopped at step %d with the canary at %s; traffic was left as it is.\nResume with: perch run %s --resume --journal %s",
		st.Step+1, weight, specPath, journalPath))
}

// serveControl listens on the rollout's control socket until the returned function is called.
func (a *app) serveControl(ctx context.Context, eng *engine.Engine, spec *engine.Spec, socket, journalPath string) (func(), error) {
	switch socket {
	case "none":
		return func() {}, nil
	case "":
		socket = control.DefaultPath(a.getenv, spec.Name, journalPath)
	}
	srv, err := control.Listen(socket, eng)
	if err != nil {
		return nil, runtimeError(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx)
	}()
	fmt.Fprintf(a.stderr, "perch: control socket %s\n", srv.Path())
	return func() { cancel(); <-done }, nil
}
