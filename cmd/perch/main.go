// Command perch supervises a canary release from a terminal: it moves traffic in steps,
// compares the canary with the baseline at each step, and rolls back the moment the canary is
// worse. See README.md for the verbs.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, registry: defaultRegistry(), getenv: os.Getenv,
		notifyHangup: notifyHangup}
	code := a.main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
