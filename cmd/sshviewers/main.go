// Command sshviewers measures what watching a rollout over SSH costs perch: it starts
// `perch demo --ssh` with generated operator and viewer keys, connects N SSH clients
// (golang.org/x/crypto/ssh, each with a 120×40 PTY, reading everything perch draws), and
// reports the perch process's CPU, resident memory and the bytes each client received per
// second over a steady window.
//
//	go build -o /tmp/perch ./cmd/perch
//	go run ./cmd/sshviewers -perch /tmp/perch -clients 10,50,100
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perchhq/perch/internal/benchssh"
)

func main() {
	perch := flag.String("perch", "perch", "the perch binary")
	counts := flag.String("clients", "10,50,100", "client counts to measure, comma-separated")
	warmup := flag.Duration("warmup", 10*time.Second, "time after every client connected before measuring")
	window := flag.Duration("window", 30*time.Second, "how long to measure")
	speed := flag.String("speed", "0.25", "the demo's --speed (lower runs longer than the measurement)")
	flag.Parse()
	fmt.Printf("%8s %10s %12s %14s %16s\n", "clients", "connected", "server CPU", "server RSS MiB", "bytes/client/s")
	for _, field := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			fail(fmt.Errorf("-clients: %q is not a count", field))
		}
		r, err := measure(*perch, n, *speed, *warmup, *window)
		if err != nil {
			fail(err)
		}
		fmt.Printf("%8d %10d %11.0f%% %14.1f %16.0f\n", n, r.connected, r.cpu*100, r.rssMiB, r.bytesPerClientSec)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sshviewers:", err)
	os.Exit(1)
}

type result struct {
	connected         int
	cpu               float64 // cores
	rssMiB            float64
	bytesPerClientSec float64
}

func measure(perch string, clients int, speed string, warmup, window time.Duration) (result, error) {
	dir, err := os.MkdirTemp("", "sshviewers")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	operator, opLine, err := benchssh.NewKey("operator")
	if err != nil {
		return result{}, err
	}
	viewer, viewerLine, err := benchssh.NewKey("viewer")
	if err != nil {
		return result{}, err
	}
	os.WriteFile(filepath.Join(dir, "ops"), []byte(opLine), 0o600)
	os.WriteFile(filepath.Join(dir, "viewers"), []byte(viewerLine), 0o600)
	addr, err := benchssh.FreeAddr()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(perch, "demo", "--speed", speed, "--ssh", addr, "--operator-keys", filepath.Join(dir, "ops"),
		"--viewer-keys", filepath.Join(dir, "viewers"), "--host-key", filepath.Join(dir, "host"),
		"--record", filepath.Join(dir, "j.jsonl"), "--socket", "none", "--hold-open", "0s")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := benchssh.WaitListening(addr, 30*time.Second); err != nil {
		return result{}, err
	}

	var received atomic.Int64
	var connected atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range clients {
		signer := viewer
		if i == 0 {
			signer = operator
		}
		wg.Go(func() {
			if err := (benchssh.Viewer{Addr: addr, Signer: signer, Cols: 120, Rows: 40, Received: &received, Connected: &connected}).Watch(stop); err != nil {
				fmt.Fprintln(os.Stderr, "client:", err)
			}
		})
		time.Sleep(10 * time.Millisecond) // connect at a human-ish pace, not all in one instant
	}
	time.Sleep(warmup)
	cpu0, err := benchssh.CPUSeconds(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	bytes0, start := received.Load(), time.Now()
	time.Sleep(window)
	cpu1, _ := benchssh.CPUSeconds(cmd.Process.Pid)
	bytes1, elapsed := received.Load(), time.Since(start).Seconds()
	rss, err := benchssh.RSSMiB(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	n := int(connected.Load())
	close(stop)
	wg.Wait()
	if n == 0 {
		return result{}, errors.New("no client connected")
	}
	return result{connected: n, cpu: (cpu1 - cpu0) / elapsed, rssMiB: rss,
		bytesPerClientSec: float64(bytes1-bytes0) / elapsed / float64(n)}, nil
}
