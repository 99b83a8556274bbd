package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/internal/printable"
)

// Exit codes of the CLI contract.
const (
	exitOK         = 0 // promoted, or a replay/validate that succeeded
	exitRolledBack = 1
	exitBadInput   = 2 // bad usage or bad input
	exitRuntime    = 3 // stopped by a runtime error (or a signal)
)

// app is what every verb runs with; tests build their own.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	registry       registry
	getenv         func(string) string
	// notifyHangup delivers SIGHUP to a channel until the function it returns is called; nil
	// watches for none (tests).
	notifyHangup func(chan<- os.Signal) (stop func())
}

// exitError carries the exit code a verb ends with. An error that is not one is a usage
// error from flag or argument parsing, so it exits 2.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// badInput ends a verb with exit 2.
func badInput(err error) error { return &exitError{code: exitBadInput, err: err} }

// runtimeError ends a verb with exit 3.
func runtimeError(err error) error { return &exitError{code: exitRuntime, err: err} }

// exitWith ends a verb with code and no message of its own (the verb printed what it had to).
func exitWith(code int) error { return &exitError{code: code} }

func (a *app) main(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			// Errors quote what providers, sources and journals said: show it, not obey it.
			fmt.Fprintln(a.stderr, "perch:", printable.Text(ee.err.Error()))
		}
		return ee.code
	}
	fmt.Fprintf(a.stderr, "perch: %s\nRun 'perch --help' for usage.\n", printable.Text(err.Error()))
	return exitBadInput
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "perch",
		Short:         "Supervise a canary release from a terminal",
		Long:          "perch moves traffic to a canary in steps, compares it with the baseline at each step,\nand rolls back the moment the canary is worse.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionText(debug.ReadBuildInfo()),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		//lint:ignore ST1005 printed as is, the usage hint on a line of its own
		return badInput(fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath()))
	})
	groups := []struct {
		id, title string
		cmds      []*cobra.Command
	}{
		{"rollouts", "Rollouts:", []*cobra.Command{a.runCmd(), a.serveCmd(), a.demoCmd(), a.replayCmd()}},
		{"control", "Steer a running perch (through its control socket):", a.controlCmds()},
		{"tools", "Files, metrics and traffic:", []*cobra.Command{a.validateCmd(), a.analyzeCmd(), a.trafficCmd(), a.proxyCmd(), a.judgeCmd(), a.versionCmd()}},
	}
	for _, g := range groups {
		root.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
		for _, c := range g.cmds {
			c.GroupID = g.id
			root.AddCommand(c)
		}
	}
	return root
}

// exactlyOneArg wants one positional argument, named in the message.
func exactlyOneArg(name string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != 1 {
			//lint:ignore ST1005 printed as is, the usage hint on a line of its own
			return badInput(fmt.Errorf("%s takes one %s (got %d arguments)\nRun '%s --help' for usage.", c.CommandPath(), name, len(args), c.CommandPath()))
		}
		return nil
	}
}

// atLeastOneArg refuses a verb given no name argument.
func atLeastOneArg(name string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			//lint:ignore ST1005 printed as is, the usage hint on a line of its own
			return badInput(fmt.Errorf("%s takes one %s or more (got none)\nRun '%s --help' for usage.", c.CommandPath(), name, c.CommandPath()))
		}
		return nil
	}
}
