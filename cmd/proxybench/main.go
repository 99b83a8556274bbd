// Command proxybench serves the two halves of the proxy benchmark (cmd/proxybench/proxy.sh): a minimal
// HTTP backend, and perch's proxy at a fixed weight in front of two of them.
//
//	proxybench backend -listen 127.0.0.1:18081
//	proxybench proxy -listen 127.0.0.1:18080 -stable http://127.0.0.1:18081 -canary http://127.0.0.1:18082 -weight 50
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/perchhq/perch/providers/proxy"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: proxybench backend|proxy [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "backend":
		err = backend(ctx, os.Args[2:])
	case "proxy":
		err = runProxy(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (want backend or proxy)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(1)
	}
}

// backend answers every request at once with a short body, as nginx's benchmarks' backends do.
func backend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:18081", "address to serve on")
	fs.Parse(args)
	body := []byte("hello from the benchmark backend\n")
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})}
	return serveUntil(ctx, srv.ListenAndServe, srv.Shutdown)
}

func runProxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:18080", "address to serve on")
	stable := fs.String("stable", "http://127.0.0.1:18081", "stable backend URL")
	canary := fs.String("canary", "http://127.0.0.1:18082", "canary backend URL")
	weight := fs.Int("weight", 50, "canary percent")
	fs.Parse(args)
	proxy.TuneGC(os.Getenv) // as perch does
	p, err := proxy.Listen(*listen, proxy.Config{Stable: *stable, Canary: *canary})
	if err != nil {
		return err
	}
	if err := p.SetWeight(ctx, *weight); err != nil {
		return err
	}
	<-ctx.Done()
	return p.Close()
}

func serveUntil(ctx context.Context, serve func() error, shutdown func(context.Context) error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
