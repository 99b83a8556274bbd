package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
	"github.com/perchhq/perch/engine/replica"
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
	group    string // --socket-group
	connect  connectFlags
	ha       haFlags

	metricsAddr string
}

func (a *app) runCmd() *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "run ROLLOUT.yaml…",
		Short: "Run a rollout",
		Long: `Run a rollout: set each step's weight, analyse, advance, and promote, or roll back the
moment the canary is worse. Before the first event it reaches the traffic provider and runs
each metric query once (as validate --check-access); if it cannot, it exits 3 without
starting. Every event is journaled first; after a crash or a signal (SIGINT, SIGTERM,
SIGHUP), run again with --resume --journal FILE to continue where it stopped.

With several files, each is a rollout with its own engine and journal
(./perch-NAME-TIMESTAMP.jsonl), all in this process; a rollout with dependsOn starts once
those have promoted. In a terminal the overview shows them all (enter opens a rollout's
dashboard, esc returns, ? lists the keys; q detaches from or stops every rollout); with
--headless, -o json or no terminal they run headless, each line starting with the rollout's
name. One control socket serves them all: name the rollout (perch pause NAME). perch ends
when every rollout has; it exits with the worst of their codes.

Exit codes: 0 promoted, 1 rolled back, 2 bad input, 3 stopped by an error or a signal.`,
		Args: atLeastOneArg("rollout file"),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return a.runFleet(c.Context(), args, f)
			}
			return a.run(c, args[0], f)
		},
	}
	c.Flags().BoolVar(&f.headless, "headless", false, "print one line per event instead of the TUI")
	c.Flags().StringVarP(&f.output, "output", "o", outputText, "headless output: text or json (the journal events)")
	c.Flags().StringVar(&f.journal, "journal", "", "journal file (default ./perch-NAME-TIMESTAMP.jsonl)")
	c.Flags().BoolVar(&f.resume, "resume", false, "continue the rollout recorded in --journal")
	c.Flags().StringVar(&f.theme, "theme", themes.Default, "TUI colours: "+strings.Join(themes.Names(), ", ")+", or a theme file NAME.yaml")
	addSocketFlags(c, &f.socket, &f.group)
	addConnectFlags(c, &f.connect)
	addMetricsAddrFlag(c, &f.metricsAddr)
	addHAFlags(c, &f.ha)
	return c
}

// addSocketFlags adds --socket and --socket-group to a verb that serves the control socket.
func addSocketFlags(c *cobra.Command, socket, group *string) {
	c.Flags().StringVar(socket, "socket", "", "control socket for perch pause|resume|advance|rollback|promote|status (default $XDG_RUNTIME_DIR/perch/NAME.sock, else $TMPDIR/perch-UID/NAME.sock; none: no socket)")
	c.Flags().StringVar(group, "socket-group", "", "let members of this group use the control socket too (mode 0660; its directory 0750)")
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
	if err := f.ha.check(f.journal, f.resume); err != nil {
		return err
	}
	var front frontEnd = headless{format: f.output}
	if !f.headless {
		front = localTUI{theme: theme, format: f.output}
	}
	open, stopped := func(ctx context.Context) (*rollout, error) { return a.openRollout(ctx, path, f) }, resumeHint(path)
	if f.ha.url != "" {
		open, stopped = func(ctx context.Context) (*rollout, error) {
			return a.openHA(ctx, path, f, func(fl *replica.Follower) (func(), error) {
				return a.serveControl(ctx, fl, fl.Snapshot().Spec, f.socket, f.group, "")
			})
		}, haStopped
	}
	return a.supervise(c.Context(), supervision{
		open:   open,
		linger: !f.headless, // under the TUI the engine stays after a rollback, so the operator can retry (R)
		socket: f.socket, socketGroup: f.group, metricsAddr: f.metricsAddr,
		front:   front,
		stopped: stopped,
	})
}

// runFleet runs several rollout files in this process, shown in the overview when stdout is a
// terminal; with --headless, -o json (lines for a program) or no terminal they run headless.
func (a *app) runFleet(ctx context.Context, files []string, f runFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if err := f.ha.check(f.journal, f.resume); err != nil {
		return err
	}
	theme, err := themes.Load(f.theme)
	if err != nil {
		return badInput(fmt.Errorf("--theme: %w", err))
	}
	// A refused file leaves the others running, but with every file refused there is nothing
	// to run or show: that is bad input, as one bad file alone is.
	var refused []error
	for _, path := range files {
		if _, err := loadSpec(path); err != nil {
			refused = append(refused, err)
		}
	}
	if len(refused) == len(files) {
		return badInput(errors.Join(refused...))
	}
	if f.headless || f.output == outputJSON || !a.stdoutIsTerminal() {
		if !f.headless && f.output != outputJSON {
			fmt.Fprintln(a.stderr, "perch: no terminal on stdout: the rollouts run headless; steer them with perch status|pause|rollback… NAME")
		}
		return a.superviseFleet(ctx, fleetSupervision{files: files, run: f, linger: false})
	}
	// Under the overview a rolled-back engine stays, so the operator can retry (R) from its
	// dashboard, as under the terminal UI of one rollout.
	return a.superviseFleet(ctx, fleetSupervision{files: files, run: f, linger: true, front: localOverview{theme: theme}})
}

// openRollout loads the rollout file, connects to its provider and source, reaches them once
// (preflight) and creates its journal, or with --resume reopens the journal named first, so
// that a provider that lives in perch (the proxy) comes back at the weight it had.
func (a *app) openRollout(ctx context.Context, path string, f runFlags) (*rollout, error) {
	spec, err := loadSpec(path)
	if err != nil {
		return nil, err
	}
	return a.openSpec(ctx, spec, f)
}

// openSpec is openRollout for a rollout file read already.
func (a *app) openSpec(ctx context.Context, spec *spec.Rollout, f runFlags) (*rollout, error) {
	var err error
	r := &rollout{spec: spec}
	if f.resume {
		j, rec, err := a.resumeJournal(f.journal)
		if err != nil {
			return nil, err
		}
		r.journal, r.rec = j, rec
		f.connect.restoreWeight = r.rec.Fold().Weight
	}
	b, err := a.registry.connect(ctx, spec, f.connect)
	if err != nil {
		r.close()
		return nil, err
	}
	r.router, r.source, r.flags, r.release = b.router, b.source, b.flags, func() { b.close() }
	if err := preflight(ctx, spec, b); err != nil {
		r.close()
		return nil, err
	}
	if note := inProcessProxyNote(spec); note != "" {
		fmt.Fprintln(a.stderr, note)
	}
	if !f.resume {
		j, journalPath, err := createJournal(spec, f.journal)
		if err != nil {
			r.close()
			return nil, err
		}
		r.journal = j // set only on success: a nil *Journal would make a journal interface that is not nil
		fmt.Fprintf(a.stderr, "perch: journal %s\n", journalPath)
	}
	return r, nil
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
		// Two runs of one rollout started in the same second get -2, -3…, not a refusal.
		base := fmt.Sprintf("perch-%s-%s", spec.Name, time.Now().UTC().Format("20060102T150405Z"))
		path = base + ".jsonl"
		for n := 2; n < 100; n++ {
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				path = fmt.Sprintf("%s-%d.jsonl", base, n)
				continue
			}
			break
		}
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

// serveControl listens on the rollout's control socket until the returned function is called;
// it reports on a.stderr. journal is the run's journal, which the status names.
func (a *app) serveControl(ctx context.Context, eng control.Target, spec *spec.Rollout, socket, group, journal string) (func(), error) {
	return a.serveSocket(ctx, spec.Name, socket, group, func(path string, opts control.Options) (*control.Server, error) {
		opts.Journal = journal
		return control.Listen(path, eng, opts)
	})
}

// serveSocket listens with listen on socket (--socket: "" the default path for name, "none"
// no socket) until the returned function is called; it reports on a.stderr.
func (a *app) serveSocket(ctx context.Context, name, socket, group string, listen func(path string, opts control.Options) (*control.Server, error)) (func(), error) {
	opts := control.Options{Group: group, Logf: func(format string, args ...any) {
		fmt.Fprintf(a.stderr, "perch: "+format+"\n", args...)
	}}
	switch socket {
	case "none":
		if group != "" {
			return nil, badInput(errors.New("--socket-group goes with a control socket, not --socket none"))
		}
		return func() {}, nil
	case "":
		socket, opts.PrivateDir = control.DefaultPath(a.getenv, name), true
	}
	srv, err := listen(socket, opts)
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
