package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/internal/yamlpos"
	"github.com/perchhq/perch/providers/proxy/proxyd"
)

type proxyFlags struct {
	check     bool
	drain     time.Duration
	logFormat string
}

// defaultDrain is how long a stopping proxy waits for the requests in flight; systemd's own
// stop timeout (90 s by default) is longer.
const defaultDrain = 30 * time.Second

func (a *app) proxyCmd() *cobra.Command {
	var f proxyFlags
	c := &cobra.Command{
		Use:   "proxy PROXY.yaml",
		Short: "Run perch's proxy as a service that rollouts drive through its admin API",
		Long: `Run perch's weighted proxy as a long-lived service in front of a stable and a canary
backend. Rollouts drive it through its admin API (traffic: {proxy: {admin: …}}) and judge the
canary from its observations (metrics: {builtin: {}}); whatever happens to the perch running a
rollout, this proxy keeps routing at the weight it has. The weight and segments are kept in the
file's state, so a restart comes back at the same weight.

It needs no terminal and logs to stderr. SIGHUP reloads the backends, sticky and override
settings, timeouts and admin token from the file without dropping a connection (a file with
problems is logged and the running configuration kept). SIGTERM or SIGINT stops accepting
requests, waits up to --drain for those in flight, and exits 0.

Exit codes: 0 stopped by a signal (or --check found the file good), 2 problems in the file,
3 it could not start or a listener failed.`,
		Args: exactlyOneArg("proxy file"),
		RunE: func(c *cobra.Command, args []string) error {
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			return a.proxy(c.Context(), args[0], f, hup)
		},
	}
	c.Flags().BoolVar(&f.check, "check", false, "check the file and exit")
	c.Flags().DurationVar(&f.drain, "drain", defaultDrain, "on SIGTERM, how long to wait for requests in flight")
	c.Flags().StringVar(&f.logFormat, "log-format", "text", "stderr log lines: text (key=value) or json")
	return c
}

// proxy runs the standalone proxy until ctx ends, reloading its file at each value of reload.
func (a *app) proxy(ctx context.Context, path string, f proxyFlags, reload <-chan os.Signal) error {
	log, err := proxyLogger(a.stderr, f.logFormat)
	if err != nil {
		return err
	}
	cfg, err := loadProxyFile(path, a.getenv)
	if err != nil {
		return err
	}
	if f.check {
		fmt.Fprintf(a.stdout, "%s: ok — proxy on %s, stable %s, canary %s, admin %s\n", path, cfg.Listen, cfg.Stable, cfg.Canary, cfg.Admin)
		return nil
	}
	d, err := proxyd.Start(cfg, log.With("file", path))
	if err != nil {
		return runtimeError(err)
	}
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), f.drain)
			err := d.Shutdown(dctx)
			cancel()
			if err != nil {
				log.Warn("stopped before every request in flight finished", "error", err)
			} else {
				log.Info("stopped")
			}
			return nil
		case <-reload:
			next, err := proxyd.Load(path, a.getenv)
			if err == nil {
				err = d.Reload(next)
			}
			if err != nil {
				log.Error("reload failed: kept the running configuration", "file", path, "error", err)
			}
		case err := <-d.Failed():
			dctx, cancel := context.WithTimeout(context.Background(), f.drain)
			d.Shutdown(dctx)
			cancel()
			return runtimeError(err)
		}
	}
}

// loadProxyFile loads a proxy file; every problem in it is printed, one per line, as exit 2.
func loadProxyFile(path string, getenv func(string) string) (*proxyd.Config, error) {
	cfg, err := proxyd.Load(path, getenv)
	var errs yamlpos.Errors
	switch {
	case errors.As(err, &errs):
		return nil, badInput(fmt.Errorf("%w\n%d problem(s) in %s", errs, len(errs), path))
	case err != nil:
		return nil, badInput(err)
	}
	return cfg, nil
}

// proxyLogger writes the proxy's log to w, one line per record with labelled fields: text for
// journald and people, json for log shippers.
func proxyLogger(w io.Writer, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, badInput(fmt.Errorf("--log-format %q: want text or json", format))
}
