package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine/judgeapi"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/internal/yamlpos"
)

// judgeTokenEnv names the environment variable holding judge serve's token when no
// --token-file is given.
const judgeTokenEnv = "PERCH_JUDGE_TOKEN"

// defaultJudgeListen is loopback: off it, anyone who reaches the port asks for verdicts.
const defaultJudgeListen = "127.0.0.1:8095"

type judgeFlags struct {
	config    string
	listen    string
	tokenFile string
	maxRuns   int
	runTTL    time.Duration
	check     bool
	// awsProfile is for metrics.cloudwatch, as run's flag.
	awsProfile string
}

func (a *app) judgeCmd() *cobra.Command {
	judge := &cobra.Command{
		Use:   "judge",
		Short: "perch's judges for other release controllers (Argo Rollouts, Flagger)",
		Args:  cobra.NoArgs,
	}
	var f judgeFlags
	serve := &cobra.Command{
		Use:   "serve --config JUDGES.yaml [--listen ADDR]",
		Short: "Serve perch's verdicts to Argo Rollouts' web metric provider and Flagger's webhooks",
		Long: `Serve the verdicts of the analyses of a judges file over HTTP, for release controllers
that move traffic themselves and ask whether the canary is good:

  GET  /v1/analyses/NAME/verdict?run=RUN   Argo Rollouts' web metric provider:
       {"verdict": "pass|fail|inconclusive", "reason": …, "checks": […]}
  POST /v1/flagger/NAME[?hook=HOOK]        Flagger's webhooks: confirm-promotion,
       confirm-traffic-increase and no hook get 200 when the analysis passes, else 403;
       rollback gets 200 (roll back) when it fails, else 403
  GET  /healthz                            200

The judges file holds one metrics source and analyses of checks, written as a rollout file
writes them:

  metrics: {prometheus: {address: http://prometheus:9090}}
  analysis: {interval: 1m}               # and judge; defaults as in a rollout file
  analyses:
    checkout:
      checks: [{name: errors, events: …, total: …, direction: lower_is_better, maxIncrease: 0.01}]

A run's window opens when it first asks, and each ask judges the whole window so far, as a
rollout judges a step. The token (--token-file, else $` + judgeTokenEnv + `) is wanted as
"Authorization: Bearer TOKEN" on every endpoint but /healthz; Flagger may send it as its
webhook's metadata "token".

Exit codes: 0 stopped by a signal (or --check found the file good), 2 problems in the file or
flags, 3 the source or the listener failed.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return a.judgeServe(c, f)
		},
	}
	serve.Flags().StringVar(&f.config, "config", "", "the judges file (JUDGES.yaml)")
	serve.Flags().StringVar(&f.listen, "listen", defaultJudgeListen, "HOST:PORT to serve on")
	serve.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token callers must send (default: $"+judgeTokenEnv+"; none: no token)")
	serve.Flags().IntVar(&f.maxRuns, "max-runs", judgeapi.DefaultMaxRuns, "runs remembered at most (the least recently asked is forgotten first)")
	serve.Flags().DurationVar(&f.runTTL, "run-ttl", judgeapi.DefaultRunTTL, "a run is forgotten this long after its last ask")
	serve.Flags().BoolVar(&f.check, "check", false, "check the file and exit")
	serve.Flags().StringVar(&f.awsProfile, "aws-profile", "", "AWS shared-config profile for metrics.cloudwatch (default $AWS_PROFILE or the default chain)")
	judge.AddCommand(serve)
	return judge
}

func (a *app) judgeServe(c *cobra.Command, f judgeFlags) error {
	ctx := c.Context()
	if f.config == "" {
		return badInput(errors.New("judge serve needs --config JUDGES.yaml"))
	}
	if f.maxRuns <= 0 || f.runTTL <= 0 {
		return badInput(errors.New("--max-runs and --run-ttl must be positive"))
	}
	j, err := spec.LoadJudges(f.config)
	var errs yamlpos.Errors
	switch {
	case errors.As(err, &errs):
		return badInput(fmt.Errorf("%w\n%d problem(s) in %s", errs, len(errs), f.config))
	case err != nil:
		return badInput(err)
	}
	if f.check {
		fmt.Fprintf(a.stdout, "%s: ok — %s source, analyses %s\n", f.config, j.Metrics.Kind(), strings.Join(j.Names(), ", "))
		return nil
	}
	token, err := a.judgeToken(f.tokenFile)
	if err != nil {
		return badInput(err)
	}
	kind := j.Metrics.Kind()
	mkSource, ok := a.registry.sources[kind]
	if !ok {
		return badInput(fmt.Errorf("metrics source %q is not available in this build of perch", kind))
	}
	src, err := mkSource(ctx, j.Source(), nil, connectFlags{awsProfile: f.awsProfile, restoreWeight: -1})
	if err != nil {
		return runtimeError(fmt.Errorf("connect to %s: %w", kind, err))
	}
	b := &backend{source: src}
	defer b.close()
	s, err := judgeapi.New(judgeapi.Config{Judges: j, Source: src, Token: token, MaxRuns: f.maxRuns, RunTTL: f.runTTL,
		Log: func(format string, args ...any) {
			fmt.Fprintf(a.stderr, "perch: %s\n", printable.Line(fmt.Sprintf(format, args...)))
		}})
	if err != nil {
		return badInput(err)
	}
	err = s.Serve(ctx, f.listen, func(addr string) {
		fmt.Fprintf(a.stderr, "perch: judging %s from %s on http://%s\n", strings.Join(j.Names(), ", "), kind, addr)
		if token == "" && !loopback(addr) {
			fmt.Fprintf(a.stderr, "perch: warning: no token and %s is not loopback: anyone who reaches it can ask (set --token-file or $%s)\n", addr, judgeTokenEnv)
		}
	})
	if err != nil {
		return runtimeError(err)
	}
	return nil
}

// judgeToken reads the token from file, else from the environment; "" is no token.
func (a *app) judgeToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(a.getenv(judgeTokenEnv)), nil
	}
	info, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if info.Size() > 4096 {
		return "", fmt.Errorf("--token-file %s: %d bytes; a token is a line", file, info.Size())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("--token-file %s is empty", file)
	}
	return token, nil
}

// loopback reports whether addr (HOST:PORT) is a loopback address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() || host == "localhost"
}
