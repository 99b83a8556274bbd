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
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
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
	operator, opLine, err := newKey("operator")
	if err != nil {
		return result{}, err
	}
	viewer, viewerLine, err := newKey("viewer")
	if err != nil {
		return result{}, err
	}
	os.WriteFile(filepath.Join(dir, "ops"), []byte(opLine), 0o600)
	os.WriteFile(filepath.Join(dir, "viewers"), []byte(viewerLine), 0o600)
	addr, err := freeAddr()
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
	if err := waitListening(addr, 30*time.Second); err != nil {
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
			if err := watch(addr, signer, &received, &connected, stop); err != nil {
				fmt.Fprintln(os.Stderr, "client:", err)
			}
		})
		time.Sleep(10 * time.Millisecond) // connect at a human-ish pace, not all in one instant
	}
	time.Sleep(warmup)
	cpu0, err := cpuSeconds(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	bytes0, start := received.Load(), time.Now()
	time.Sleep(window)
	cpu1, _ := cpuSeconds(cmd.Process.Pid)
	bytes1, elapsed := received.Load(), time.Since(start).Seconds()
	rss, err := rssMiB(cmd.Process.Pid)
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

// watch connects one client with a PTY and counts what it receives until stop.
func watch(addr string, signer ssh.Signer, received *atomic.Int64, connected *atomic.Int32, stop <-chan struct{}) error {
	client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "bench", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return err
	}
	if err := sess.RequestPty("xterm-256color", 40, 120, ssh.TerminalModes{}); err != nil {
		return err
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		return err
	}
	if err := sess.Shell(); err != nil {
		return err
	}
	connected.Add(1)
	go func() { <-stop; sess.Close(); client.Close() }()
	buf := make([]byte, 32*1024)
	for {
		n, err := out.Read(buf)
		received.Add(int64(n))
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			select {
			case <-stop:
				return nil
			default:
				return err
			}
		}
	}
}

func newKey(name string) (ssh.Signer, string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, "", err
	}
	return signer, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + name + "\n", nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitListening(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("perch never listened on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuSeconds is the user+system CPU time of a process, from /proc.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

// rssMiB is a process's resident memory, from /proc.
func rssMiB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}
