// Command proxybench runs perch's proxy at a fixed weight for the nginx comparison
// (cmd/proxybench/proxy.sh), optionally writing a CPU profile of everything it served.
//
//	proxybench -listen 127.0.0.1:18080 -stable http://127.0.0.1:18081 -canary http://127.0.0.1:18082 -weight 10
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

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
