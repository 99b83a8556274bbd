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
	"github.com/perchhq/perch/engine/spec"
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
	ctx := c.Context()
	r, err := a.openRollout(ctx, path, f)
	if err != nil {
		return err
	}
	defer r.close()
	spec, b, journal := r.spec, r.backend, r.journal
	// Under the TUI the engine stays after a rollback, so the operator can retry (R).
	eng, err := engine.New(engine.Config{Spec: spec, Router: b.router, Source: b.source, Flags: b.flags, Journal: journal, Resume: r.rec, Linger: !f.headless})
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
	r.started = true
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

// rollout is a rollout file connected to its provider and its journal, ready for an engine.
type rollout struct {
	spec    *spec.Rollout
	backend *backend
	journal *engine.Journal
	rec     *engine.Recording // with --resume: what the journal recorded
	// started is set once the engine has run; until then a journal this run created holds
	// only its header and is removed on close, so a failed start leaves no stray file.
	started bool
}

// openRollout loads the rollout file, connects to its provider and source and creates its
// journal, or with --resume reopens the journal named first, so that a provider that lives
// in perch (the proxy) comes back at the weight it had.
func (a *app) openRollout(ctx context.Context, path string, f runFlags) (*rollout, error) {
	spec, err := loadSpec(path)
	if err != nil {
		return nil, err
	}
	r := &rollout{spec: spec}
	if f.resume {
		if r.journal, r.rec, err = a.resumeJournal(f.journal); err != nil {
			return nil, err
		}
		f.connect.restoreWeight = r.rec.Fold().Weight
	}
	if r.backend, err = a.registry.connect(ctx, spec, f.connect); err != nil {
		r.close()
		return nil, err
	}
	if note := inProcessProxyNote(spec); note != "" {
		fmt.Fprintln(a.stderr, note)
	}
	if !f.resume {
		var journalPath string
		if r.journal, journalPath, err = createJournal(spec, f.journal); err != nil {
			r.close()
			return nil, err
		}
		fmt.Fprintf(a.stderr, "perch: journal %s\n", journalPath)
	}
	return r, nil
}

func (r *rollout) close() {
	if r.journal != nil {
		r.journal.Close()
		if !r.started && r.rec == nil {
			os.Remove(r.journal.Path())
		}
	}
	if r.backend != nil {
		r.backend.close()
	}
}

// resumeJournal reopens the journal of a run to continue.
func (a *app) resumeJournal(path string) (*engine.Journal, *engine.Recording, error) {
	if path == "" {
		return nil, nil, badInput(errors.New("--resume needs --journal FILE (the journal of the run to continue)"))
	}
	j, rec, err := engine.OpenJournal(path)
	if err != nil {
		return nil, nil, badInput(err)
	}
	for _, w := range rec.Warnings {
		fmt.Fprintf(a.stderr, "perch: %s: %s\n", path, w)
	}
	return j, rec, nil
}

// createJournal starts a new journal at path, or ./perch-NAME-TIMESTAMP.jsonl, and returns it
// with its absolute path, for the caller to say where it is.
func createJournal(spec *spec.Rollout, path string) (*engine.Journal, string, error) {
	if path == "" {
		path = fmt.Sprintf("perch-%s-%s.jsonl", spec.Name, time.Now().UTC().Format("20060102T150405Z"))
	}
	j, err := engine.CreateJournal(path, spec, time.Now())
	if err != nil {
		return nil, "", badInput(err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return j, path, nil
}

// finish turns how the engine ended into the exit code, saying how to resume a stopped run.
func (a *app) finish(out engine.Outcome, err error, st engine.State, specPath, journalPath string) error {
	switch {
	case err != nil:
		return runtimeError(fmt.Errorf("stopped: %w", err))
	case out == engine.OutcomePromoted:
		return nil
	case out == engine.OutcomeRolledBack, st.Phase == engine.PhaseRolledBack:
		return exitWith(exitRolledBack) // a lingering engine stopped after a rollback, too
	}
	weight := "unknown"
	if st.Weight >= 0 {
		weight = fmt.Sprintf("%d%%", st.Weight)
	}
	return runtimeError(fmt.Errorf("stopped at step %d with the canary at %s; traffic was left as it is.\nResume with: perch run %s --resume --journal %s",
		st.Step+1, weight, specPath, journalPath))
}

// serveControl listens on the rollout's control socket until the returned function is called.
func (a *app) serveControl(ctx context.Context, eng *engine.Engine, spec *spec.Rollout, socket, journalPath string) (func(), error) {
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
