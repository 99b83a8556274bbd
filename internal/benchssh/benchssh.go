// Package benchssh is what perch's SSH benchmark programs (cmd/sshviewers, cmd/sshlimits,
// cmd/fleetbench) share: keys, a viewer that counts what it is sent, and the CPU and memory
// of the perch process they measure.
package benchssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// NewKey makes an ed25519 key and its authorized_keys line, with name as the comment (the
// name perch gives whoever connects with it).
func NewKey(name string) (ssh.Signer, string, error) {
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

// Dial connects as user "bench" with signer (nil: no key at all), trusting any host key:
// the server is the perch the benchmark started on loopback.
func Dial(addr string, signer ssh.Signer, timeout time.Duration) (*ssh.Client, error) {
	var auth []ssh.AuthMethod
	if signer != nil {
		auth = []ssh.AuthMethod{ssh.PublicKeys(signer)}
	}
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "bench", Auth: auth,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: timeout})
}

// Viewer is one SSH client with a terminal of Cols×Rows that counts the bytes it receives.
type Viewer struct {
	Addr       string
	Signer     ssh.Signer
	Cols, Rows int
	Received   *atomic.Int64 // bytes received, shared by every viewer
	Connected  *atomic.Int32 // viewers whose shell started
}

// Watch connects, opens a shell and reads until stop closes (then returns nil) or the
// connection fails.
func (v Viewer) Watch(stop <-chan struct{}) error {
	client, err := Dial(v.Addr, v.Signer, 30*time.Second)
	if err != nil {
		return err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return err
	}
	if err := sess.RequestPty("xterm-256color", v.Rows, v.Cols, ssh.TerminalModes{}); err != nil {
		return err
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		return err
	}
	if err := sess.Shell(); err != nil {
		return err
	}
	v.Connected.Add(1)
	go func() { <-stop; sess.Close(); client.Close() }()
	buf := make([]byte, 32*1024)
	for {
		n, err := out.Read(buf)
		v.Received.Add(int64(n))
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

// FreeAddr is a loopback address with a port free now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// WaitListening waits up to limit for something to accept connections on addr.
func WaitListening(addr string, limit time.Duration) error {
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

// CPUSeconds is the user+system CPU time of a process, from /proc.
func CPUSeconds(pid int) (float64, error) {
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

// RSSMiB is a process's resident memory, from /proc.
func RSSMiB(pid int) (float64, error) {
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
