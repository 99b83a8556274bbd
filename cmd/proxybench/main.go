// Command proxybench runs perch's proxy at a fixed weight for the nginx comparison
// (cmd/proxybench/proxy.sh), optionally writing a CPU profile of everything it served, or an
// execution trace of a window of it.
//
//	proxybench -listen 127.0.0.1:18080 -stable http://127.0.0.1:18081 -canary http://127.0.0.1:18082 -weight 10
//
// With -trace FILE, a SIGUSR1 starts an execution trace (go tool trace FILE) that lasts
// -trace-for: a whole run would be hundreds of MB, and the window worth looking at (a
// saturated run, say) is for the caller to pick.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	"github.com/perchhq/perch/providers/proxy"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("proxybench", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:18080", "address to serve on")
	stable := fs.String("stable", "http://127.0.0.1:18081", "stable backend URL")
	canary := fs.String("canary", "http://127.0.0.1:18082", "canary backend URL")
	weight := fs.Int("weight", 10, "canary percent")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	traceFile := fs.String("trace", "", "on SIGUSR1, write an execution trace to this file for -trace-for")
	traceFor := fs.Duration("trace-for", time.Second, "how long the trace lasts (tens of MB a second when saturated)")
	fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	proxy.TuneGC(os.Getenv) // as perch does
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		stop, err := traceOnSignal(*traceFile, *traceFor)
		if err != nil {
			return err
		}
		defer stop()
	}
	p, err := proxy.Listen(*listen, proxy.Config{Stable: *stable, Canary: *canary})
	if err != nil {
		return err
	}
	if err := p.SetWeight(ctx, *weight); err != nil {
		p.Close()
		return err
	}
	<-ctx.Done()
	return p.Close()
}

// traceOnSignal writes an execution trace to file for d from the first SIGUSR1. stop ends a
// trace still running and closes the file.
func traceOnSignal(file string, d time.Duration) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case <-usr1:
		case <-done:
			return
		}
		if err := trace.Start(f); err != nil {
			fmt.Fprintln(os.Stderr, "proxybench: trace:", err)
			return
		}
		select {
		case <-time.After(d):
		case <-done:
		}
		trace.Stop()
	}()
	return func() {
		signal.Stop(usr1)
		close(done)
		<-ended
		f.Close()
	}, nil
}
