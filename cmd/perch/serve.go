package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/log"
	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/themes"
	"github.com/perchhq/perch/tui"
	"github.com/perchhq/perch/tui/remote"
)

// sshFlags say how to serve the TUI over SSH.
type sshFlags struct {
	addr         string
	operatorKeys string
	viewerKeys   string
	hostKey      string
}

func addSSHFlags(c *cobra.Command, f *sshFlags, demo bool) {
	c.Flags().StringVar(&f.addr, "ssh", "", "serve the TUI over SSH on HOST:PORT")
	keysHelp := "OpenSSH authorized_keys file of the operators (the comment of each key names the person)"
	if demo {
		keysHelp += "; without it only 127.0.0.1 may connect and everyone is an operator"
	}
	c.Flags().StringVar(&f.operatorKeys, "operator-keys", "", keysHelp)
	c.Flags().StringVar(&f.viewerKeys, "viewer-keys", "", "authorized_keys file of people who may watch but not change traffic")
	c.Flags().StringVar(&f.hostKey, "host-key", "", "SSH host key, created (mode 0600) if absent (default $XDG_CONFIG_HOME/perch/ssh_host_ed25519)")
}

type serveFlags struct {
	run      runFlags
	metrics  string
	ssh      sshFlags
	holdOpen time.Duration
}

func (a *app) serveCmd() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve ROLLOUT.yaml --ssh ADDR --operator-keys FILE",
		Short: "Run a rollout headless and serve its TUI over SSH to operators and viewers",
		Long: `Run a rollout headless (journaled as perch run) and serve the TUI over SSH. Every session
gets its own view of the one engine. Operators (--operator-keys) may steer it; viewers
(--viewer-keys) only watch: the engine refuses their commands too. Unknown keys are refused;
password and keyboard-interactive logins are never offered. Every command is recorded with the
name and key fingerprint of who sent it.

After a rollback the engine waits for an operator to retry (R) until perch is stopped; after a
promotion sessions stay open for --hold-open so everyone sees the end.

Exit codes: 0 promoted, 1 rolled back, 2 bad input, 3 stopped by an error or a signal.`,
		Args: exactlyOneArg("rollout file"),
		RunE: func(c *cobra.Command, args []string) error { return a.serve(c.Context(), args[0], f) },
	}
	c.Flags().StringVarP(&f.run.output, "output", "o", outputText, "event lines on stdout: text or json")
	c.Flags().StringVar(&f.run.journal, "journal", "", "journal file (default ./perch-NAME-TIMESTAMP.jsonl)")
	c.Flags().BoolVar(&f.run.resume, "resume", false, "continue the rollout recorded in --journal")
	c.Flags().StringVar(&f.run.socket, "socket", "", "control socket (default $XDG_RUNTIME_DIR/perch/NAME.sock, else beside the journal; none: no socket)")
	c.Flags().StringVar(&f.run.theme, "theme", themes.Default, "starting theme of each session: "+strings.Join(themes.Names(), ", ")+", or a theme file NAME.yaml")
	c.Flags().DurationVar(&f.holdOpen, "hold-open", time.Minute, "how long sessions stay open after the rollout is promoted")
	addSSHFlags(c, &f.ssh, false)
	addMetricsAddrFlag(c, &f.metrics)
	addConnectFlags(c, &f.run.connect)
	return c
}

func (a *app) serve(ctx context.Context, path string, f serveFlags) error {
	if err := checkOutput(f.run.output); err != nil {
		return err
	}
	if f.ssh.addr == "" || f.ssh.operatorKeys == "" {
		return badInput(errors.New("serve needs --ssh ADDR and --operator-keys FILE (use perch run for a local terminal)"))
	}
	keys, err := remote.LoadKeyring(f.ssh.operatorKeys, f.ssh.viewerKeys)
	if err != nil {
		return badInput(err)
	}
	theme, err := themes.Load(f.run.theme)
	if err != nil {
		return badInput(fmt.Errorf("--theme: %w", err))
	}
	r, err := a.openRollout(ctx, path, f.run)
	if err != nil {
		return err
	}
	defer r.close()
	spec, b, journal := r.spec, r.backend, r.journal
	eng, err := engine.New(engine.Config{Spec: spec, Router: b.router, Source: b.source, Flags: b.flags, Journal: journal, Resume: r.rec, Linger: true})
	if err != nil {
		return badInput(err)
	}
	stopControl, err := a.serveControl(ctx, eng, spec, f.run.socket, journal.Path())
	if err != nil {
		return err
	}
	defer stopControl()
	stopMetrics, err := a.serveMetrics(f.metrics, eng, b.router, b.source)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stopIntegrations, err := a.startIntegrations(ctx, spec, eng)
	if err != nil {
		return err
	}
	r.started = true
	out, runErr := a.runServed(ctx, eng, keys, f.ssh, theme, f.run.output, f.holdOpen)
	stopIntegrations()
	if errors.Is(runErr, errSSHStart) {
		return runErr
	}
	return a.finish(out, runErr, eng.Snapshot(), path, journal.Path())
}

// errSSHStart marks a failure to start serving, before the engine ran.
var errSSHStart = errors.New("ssh")

// runServed runs eng headless, printing its events, while serving its TUI over SSH; after a
// promotion sessions stay open for holdOpen so everyone sees the end.
func (a *app) runServed(ctx context.Context, eng *engine.Engine, keys *remote.Keyring, f sshFlags, theme themes.Theme, format string, holdOpen time.Duration) (engine.Outcome, error) {
	sshCtx, stopSSH := context.WithCancel(context.Background())
	defer stopSSH()
	sshDone, err := a.startSSH(sshCtx, eng, keys, f, theme)
	if err != nil {
		return engine.OutcomeStopped, fmt.Errorf("%w: %w", errSSHStart, err)
	}
	printed := make(chan struct{})
	go printEvents(eng.Events(), a.stdout, eng.Spec(), format, printed)
	out, runErr := eng.Run(ctx)
	<-printed
	if out == engine.OutcomePromoted && holdOpen > 0 {
		fmt.Fprintf(a.stderr, "perch: promoted; sessions stay open for %s\n", holdOpen)
		select {
		case <-time.After(holdOpen):
		case <-ctx.Done():
		}
	}
	stopSSH()
	<-sshDone
	return out, runErr
}

// startSSH serves the TUI of eng over SSH until ctx ends; the returned channel closes once
// every session is gone. Keys nil is the demo's open mode.
func (a *app) startSSH(ctx context.Context, eng *engine.Engine, keys *remote.Keyring, f sshFlags, theme themes.Theme) (<-chan struct{}, error) {
	hostKey := f.hostKey
	if hostKey == "" {
		dir := a.getenv("XDG_CONFIG_HOME")
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, badInput(fmt.Errorf("no --host-key given and no home directory for the default: %w", err))
			}
			dir = filepath.Join(home, ".config")
		}
		hostKey = filepath.Join(dir, "perch", "ssh_host_ed25519")
	}
	if err := os.MkdirAll(filepath.Dir(hostKey), 0o700); err != nil {
		return nil, runtimeError(fmt.Errorf("host key directory: %w", err))
	}
	logger := log.NewWithOptions(a.stderr, log.Options{Prefix: "perch ssh", ReportTimestamp: true, TimeFormat: time.RFC3339})
	srv, err := remote.New(remote.Config{
		Addr: f.addr, HostKeyPath: hostKey, Keys: keys, Rollout: eng, Logger: logger,
		NewModel: func(s remote.Session) tea.Model {
			return tui.New(tui.Options{Snapshots: s.Rollout, Commander: s.Rollout, Actor: s.Actor, Mode: tui.ModeRemote,
				Theme: theme, Renderer: s.Renderer, Presence: s.Presence.List})
		},
	})
	if err != nil {
		return nil, runtimeError(err)
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, runtimeError(fmt.Errorf("listen for SSH on %s: %w", f.addr, err))
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if keys == nil {
		fmt.Fprintf(a.stderr, "perch: serving the TUI on ssh -p %s %s — open demo mode: no keys, loopback only, everyone is an operator\n", port, host)
	} else {
		ops, viewers := keys.Counts()
		fmt.Fprintf(a.stderr, "perch: serving the TUI on ssh -p %s %s (%d operator key(s), %d viewer key(s)); host key %s\n", port, host, ops, viewers, hostKey)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			logger.Error("ssh server stopped", "error", err)
		}
	}()
	return done, nil
}
