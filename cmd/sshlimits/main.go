// Command sshlimits measures what hostile SSH clients cost `perch demo --ssh`: the peak
// resident memory of perch while one client asks for a huge terminal, and how many of N
// silent TCP connections (that never start the SSH handshake) perch keeps open, and whether
// an operator still gets in while they are held.
//
//	go build -o /tmp/perch ./cmd/perch
//	go run ./cmd/sshlimits -perch /tmp/perch -width 8000 -height 8000 -silent 200
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/perchhq/perch/internal/benchssh"
)

func main() {
	perch := flag.String("perch", "perch", "the perch binary")
	width := flag.Int("width", 8000, "columns the big-terminal client asks for")
	height := flag.Int("height", 8000, "rows the big-terminal client asks for")
	watch := flag.Duration("watch", 20*time.Second, "how long to watch perch's memory with the big terminal")
	limit := flag.Float64("kill-at", 2048, "stop perch once its resident memory passes this many MiB")
	silent := flag.Int("silent", 200, "silent TCP connections to open")
	flag.Parse()
	if err := run(*perch, *width, *height, *watch, *limit, *silent); err != nil {
		fmt.Fprintln(os.Stderr, "sshlimits:", err)
		os.Exit(1)
	}
}

func run(perch string, width, height int, watch time.Duration, limit float64, silent int) error {
	dir, err := os.MkdirTemp("", "sshlimits")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	operator, line, err := benchssh.NewKey("operator")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ops"), []byte(line), 0o600); err != nil {
		return err
	}

	// Memory with one huge terminal.
	p, err := start(perch, dir)
	if err != nil {
		return err
	}
	base, _ := benchssh.RSSMiB(p.Process.Pid)
	client, err := benchssh.Dial(p.addr, operator, 10*time.Second)
	if err != nil {
		p.stop()
		return err
	}
	sess, err := client.NewSession()
	if err != nil {
		p.stop()
		return err
	}
	if err := sess.RequestPty("xterm-256color", height, width, ssh.TerminalModes{}); err != nil {
		p.stop()
		return err
	}
	out, _ := sess.StdoutPipe()
	go io.Copy(io.Discard, out)
	if err := sess.Shell(); err != nil {
		p.stop()
		return err
	}
	peak, killed := base, false
	for end := time.Now().Add(watch); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		rss, err := benchssh.RSSMiB(p.Process.Pid)
		if err != nil {
			break // perch died
		}
		peak = max(peak, rss)
		if rss > limit {
			killed = true
			break
		}
	}
	client.Close()
	p.stop()
	fmt.Printf("terminal %d×%d: perch resident memory %.0f MiB before, peak %.0f MiB over %s", width, height, base, peak, watch)
	if killed {
		fmt.Printf(" (stopped at the %.0f MiB limit, still growing)", limit)
	}
	fmt.Println()

	// Silent connections.
	p, err = start(perch, dir)
	if err != nil {
		return err
	}
	defer p.stop()
	conns := make([]net.Conn, 0, silent)
	for range silent {
		c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second)
	open := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var b [256]byte
		for {
			_, err := c.Read(b[:])
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				open++ // still open: perch sent its version and waits
				break
			}
			if err != nil {
				break // closed by perch
			}
		}
	}
	start := time.Now()
	opClient, err := benchssh.Dial(p.addr, operator, 10*time.Second)
	operatorIn := "no: " + fmt.Sprint(err)
	if err == nil {
		operatorIn = fmt.Sprintf("yes, in %s", time.Since(start).Round(time.Millisecond))
		opClient.Close()
	}
	fmt.Printf("%d silent TCP connections opened: %d still open after 1 s; an operator connecting then gets in: %s\n", len(conns), open, operatorIn)
	for _, c := range conns {
		c.Close()
	}
	return nil
}

type proc struct {
	*exec.Cmd
	addr string
}

func (p *proc) stop() { p.Process.Kill(); p.Wait() }

func start(perch, dir string) (*proc, error) {
	addr, err := benchssh.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(perch, "demo", "--speed", "0.25", "--ssh", addr, "--operator-keys", filepath.Join(dir, "ops"),
		"--host-key", filepath.Join(dir, "host"), "--record", filepath.Join(dir, fmt.Sprintf("j%d.jsonl", time.Now().UnixNano())),
		"--socket", "none", "--hold-open", "0s")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{Cmd: cmd, addr: addr}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := benchssh.Dial(addr, nil, 10*time.Second); err == nil {
			c.Close()
			break
		} else if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("perch never answered on %s: %v", addr, err)
		} else if !strings.Contains(err.Error(), "connection refused") {
			break // it answers (and refuses a client without a key)
		}
	}
	return p, nil
}
