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
	"github.com/perchhq/perch/engine/replica"
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
	limits       remote.Limits
}

func addSSHFlags(c *cobra.Command, f *sshFlags, demo bool) {
	c.Flags().StringVar(&f.addr, "ssh", "", "serve the TUI over SSH on HOST:PORT")
	keysHelp := "OpenSSH authorized_keys file of the operators (the comment of each key names the person)"
	if demo {
		keysHelp += "; without it only 127.0.0.1 may connect and everyone is an operator"
	}
	c.Flags().StringVar(&f.operatorKeys, "operator-keys", "", keysHelp)
	c.Flags().StringVar(&f.viewerKeys, "viewer-keys", "", "authorized_keys file of people who may watch but not change traffic")
	c.Flags().StringVar(&f.hostKey, "host-key", "", "SSH host key, created (mode 0600) if absent (default $XDG_CONFIG_HOME/perch/ssh_host_ed25519); refused if group or others may read it")
	c.Flags().DurationVar(&f.limits.LoginGrace, "ssh-login-grace", remote.DefaultLoginGrace, "close an SSH connection that has no session for this long (from connecting, or since its last session ended)")
	c.Flags().IntVar(&f.limits.MaxStartups, "ssh-max-startups", remote.DefaultMaxStartups, "SSH connections without a session held at once; one more closes the oldest")
	c.Flags().IntVar(&f.limits.MaxSessions, "ssh-max-sessions", remote.DefaultMaxSessions, "SSH sessions open at once")
	c.Flags().IntVar(&f.limits.MaxSessionsPerKey, "ssh-max-sessions-per-key", remote.DefaultMaxSessionsPerKey, "SSH sessions one key may have open at once")
	c.Flags().DurationVar(&f.limits.KeepaliveInterval, "ssh-keepalive", remote.DefaultKeepaliveInterval,
		fmt.Sprintf("ask each SSH client this often whether it is alive, and disconnect it after %d unanswered (0: never)", remote.DefaultKeepaliveCountMax))
}

// checkSSHLimits refuses limits that would shut everyone out; it makes a zero keepalive mean
// none.
func checkSSHLimits(f *sshFlags) error {
	l := &f.limits
	switch {
	case l.LoginGrace <= 0:
		return badInput(fmt.Errorf("--ssh-login-grace %s: want a positive duration", l.LoginGrace))
	case l.MaxStartups < 1, l.MaxSessions < 1, l.MaxSessionsPerKey < 1:
		return badInput(errors.New("--ssh-max-startups, --ssh-max-sessions and --ssh-max-sessions-per-key must be at least 1"))
	case l.KeepaliveInterval < 0:
		return badInput(fmt.Errorf("--ssh-keepalive %s: want a positive duration, or 0 for none", l.KeepaliveInterval))
	case l.KeepaliveInterval == 0:
		l.KeepaliveInterval = -1
	}
	return nil
}

type serveFlags struct {
	rollouts string // --rollouts DIR
	run      runFlags
	metrics  string
	ssh      sshFlags
	holdOpen time.Duration
}

func (a *app) serveCmd() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve (ROLLOUT.yaml | --rollouts DIR) --ssh ADDR --operator-keys FILE",
		Short: "Run a rollout headless and serve its TUI over SSH to operators and viewers",
		Long: `Run a rollout headless (journaled as perch run) and serve the TUI over SSH. Every session
gets its own view of the one engine. Operators (--operator-keys) may steer it; viewers
(--viewer-keys) only watch: the engine refuses their commands too. Unknown keys are refused;
password and keyboard-interactive logins are never offered. Every command is recorded with the
name and key fingerprint of who sent it.

After a rollback the engine waits for an operator to retry (R) until perch is stopped; after a
promotion sessions stay open for --hold-open so everyone sees the end.

With --rollouts DIR, every *.yaml and *.yml file in DIR is a rollout, each with its own engine
and journal (./perch-NAME-TIMESTAMP.jsonl), run in this one process until perch is stopped.
DIR is scanned again every 2 seconds: a new file starts a rollout once it validates; a file
that does not (or repeats a name, or whose dependsOn names no rollout or forms a cycle) is
reported and left out, and the others carry on; a removed file leaves its rollout running to
its end; a running rollout's file is not read again. A rollout with dependsOn starts once
those rollouts have promoted, and is cancelled if one of them rolls back. One control socket
serves every rollout: name it (perch pause NAME). Each line printed starts with the rollout's
name. SSH sessions open on the overview of every rollout (enter opens one's dashboard, esc
returns); the SSH server listens before any rollout starts.

Exit codes: 0 promoted, 1 rolled back, 2 bad input, 3 stopped by an error or a signal.`,
		Args: func(c *cobra.Command, args []string) error {
			if f.rollouts != "" {
				if len(args) > 0 {
					return badInput(fmt.Errorf("serve takes a rollout file or --rollouts DIR, not both (got %s)", strings.Join(args, " ")))
				}
				return nil
			}
			return exactlyOneArg("rollout file (or --rollouts DIR)")(c, args)
		},
		RunE: func(c *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			return a.serve(c.Context(), path, f)
		},
	}
	c.Flags().StringVar(&f.rollouts, "rollouts", "", "supervise every rollout file (*.yaml, *.yml) in this directory, watching it for new files")
	c.Flags().StringVarP(&f.run.output, "output", "o", outputText, "event lines on stdout: text or json")
	c.Flags().StringVar(&f.run.journal, "journal", "", "journal file (default ./perch-NAME-TIMESTAMP.jsonl)")
	c.Flags().BoolVar(&f.run.resume, "resume", false, "continue the rollout recorded in --journal")
	addSocketFlags(c, &f.run.socket, &f.run.group)
	c.Flags().StringVar(&f.run.theme, "theme", themes.Default, "starting theme of each session: "+strings.Join(themes.Names(), ", ")+", or a theme file NAME.yaml")
	c.Flags().DurationVar(&f.holdOpen, "hold-open", time.Minute, "how long sessions stay open after the rollout is promoted")
	addSSHFlags(c, &f.ssh, false)
	addMetricsAddrFlag(c, &f.metrics)
	addConnectFlags(c, &f.run.connect)
	addHAFlags(c, &f.run.ha)
	return c
}

func (a *app) serve(ctx context.Context, path string, f serveFlags) error {
	if err := checkOutput(f.run.output); err != nil {
		return err
	}
	if f.ssh.addr == "" || f.ssh.operatorKeys == "" {
		return badInput(errors.New("serve needs --ssh ADDR and --operator-keys FILE (use perch run for a local terminal)"))
	}
	if err := checkSSHLimits(&f.ssh); err != nil {
		return err
	}
	keys, err := remote.LoadKeyring(f.ssh.operatorKeys, f.ssh.viewerKeys)
	if err != nil {
		return badInput(err)
	}
	theme, err := themes.Load(f.run.theme)
	if err != nil {
		return badInput(fmt.Errorf("--theme: %w", err))
	}
	front := &sshFront{keys: keys, flags: f.ssh, theme: theme, format: f.run.output, holdOpen: f.holdOpen}
	if f.rollouts != "" {
		if err := f.run.ha.check(f.run.journal, f.run.resume); err != nil {
			return err
		}
		f.run.metricsAddr = f.metrics
		return a.superviseFleet(ctx, fleetSupervision{dir: f.rollouts, run: f.run, linger: true, front: sshFleet{front: front}})
	}
	if err := f.run.ha.check(f.run.journal, f.run.resume); err != nil {
		return err
	}
	open, stopped := func(ctx context.Context) (*rollout, error) { return a.openRollout(ctx, path, f.run) }, resumeHint(path)
	if f.run.ha.url != "" {
		open, stopped = func(ctx context.Context) (*rollout, error) {
			return a.openHA(ctx, path, f.run, func(fl *replica.Follower) (func(), error) {
				return a.standbySSH(ctx, fl, keys, f, theme)
			})
		}, haStopped
	}
	return a.supervise(ctx, supervision{
		open:   open,
		linger: true, socket: f.run.socket, socketGroup: f.run.group, metricsAddr: f.metrics,
		front:   front,
		stopped: stopped,
	})
}

// standbySSH serves a standby's control socket and its TUI over SSH until the returned
// function stops both; the follower relays their commands to the leader.
func (a *app) standbySSH(ctx context.Context, fl *replica.Follower, keys *remote.Keyring, f serveFlags, theme themes.Theme) (func(), error) {
	stopControl, err := a.serveControl(ctx, fl, fl.Snapshot().Spec, f.run.socket, f.run.group, "")
	if err != nil {
		return nil, err
	}
	sctx, stopSSH := context.WithCancel(context.Background())
	done, err := a.startSSH(sctx, rolloutSSH(fl, theme, "standby replica: commands go to the leader"), keys, f.ssh)
	if err != nil {
		stopSSH()
		stopControl()
		return nil, err
	}
	return func() {
		stopSSH()
		<-done
		stopControl()
	}, nil
}

// rolloutSSH serves one rollout's TUI to every session; note, if any, stays in their status
// bar (a standby says its commands go to the leader).
func rolloutSSH(r remote.Rollout, theme themes.Theme, note string) remote.Config {
	return remote.Config{Rollout: r, NewModel: func(s remote.Session) tea.Model {
		return tui.New(tui.Options{Snapshots: s.Rollout, Commander: s.Rollout, Actor: s.Actor, Mode: tui.ModeRemote,
			Theme: theme, Renderer: s.Renderer, Presence: s.Presence.List, Note: note})
	}}
}

// sshFront runs the engine headless, printing its events, while serving its TUI over SSH;
// after a promotion sessions stay open for holdOpen so everyone sees the end.
type sshFront struct {
	keys     *remote.Keyring // nil: the demo's open mode
	flags    sshFlags
	theme    themes.Theme
	format   string
	holdOpen time.Duration

	stopSSH context.CancelFunc // ends every session
	done    <-chan struct{}    // closed once every session is gone
}

// prepare listens for SSH before the engine starts, so a port in use fails the start.
func (f *sshFront) prepare(s *session) error {
	// Not the run's context: sessions should see the engine's last events, so the server stops
	// only once the engine has.
	ctx, stop := context.WithCancel(context.Background())
	done, err := s.app.startSSH(ctx, rolloutSSH(s.eng, f.theme, ""), f.keys, f.flags)
	if err != nil {
		stop()
		return err
	}
	f.stopSSH, f.done = stop, done
	return nil
}

func (f *sshFront) run(ctx context.Context, s *session) (engine.Outcome, error) {
	out, err := headless{format: f.format}.run(ctx, s)
	if out == engine.OutcomePromoted && f.holdOpen > 0 {
		fmt.Fprintf(s.app.stderr, "perch: promoted; sessions stay open for %s\n", f.holdOpen)
		select {
		case <-time.After(f.holdOpen):
		case <-ctx.Done():
		}
	}
	f.stopSSH()
	<-f.done
	return out, err
}

// startSSH serves cfg's rollout or fleet over SSH, each session a model from cfg.NewModel,
// until ctx ends; the returned channel closes once every session is gone. Keys nil is the
// demo's open mode.
func (a *app) startSSH(ctx context.Context, cfg remote.Config, keys *remote.Keyring, f sshFlags) (<-chan struct{}, error) {
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
	cfg.Addr, cfg.HostKeyPath, cfg.Keys, cfg.Logger, cfg.Limits = f.addr, hostKey, keys, logger, f.limits
	srv, err := remote.New(cfg)
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
