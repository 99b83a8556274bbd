// Package etcdtest starts a real etcd server for tests and benchmarks: Debian's etcd-server
// (etcd 3.4) on 127.0.0.1, on free ports, with a data directory of its own.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ErrNoEtcd is returned by Launch when no etcd binary is installed.
var ErrNoEtcd = errors.New("etcd is not installed (Debian: apt-get install etcd-server)")

// Server is a running etcd.
type Server struct {
	// Endpoint is its client address, HOST:PORT.
	Endpoint string
	cmd      *exec.Cmd
	log      *os.File
}

// Launch starts etcd with its data and log under dir and waits until it answers.
func Launch(dir string) (*Server, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, ErrNoEtcd
	}
	client, err := freePort()
	if err != nil {
		return nil, err
	}
	peer, err := freePort()
	if err != nil {
		return nil, err
	}
	curl, purl := "http://"+client, "http://"+peer
	cmd := exec.Command(bin, "--name", "perch-test", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		"--initial-cluster", "perch-test="+purl, "--logger", "zap", "--log-level", "error")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	s := &Server{Endpoint: client, cmd: cmd, log: logf}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		s.Stop()
		return nil, err
	}
	defer cli.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Put(ctx, "/perch-test-ready", "1")
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			log, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
			return nil, fmt.Errorf("etcd did not answer within 20s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills etcd and waits for it.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.log.Close()
}

// Start runs etcd until the test ends and returns its client endpoint (HOST:PORT). Without an
// etcd binary it skips the test, or fails it under CI=true, where one must be installed.
func Start(t testing.TB) string {
	t.Helper()
	s, err := Launch(t.TempDir())
	if errors.Is(err, ErrNoEtcd) {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err.Error() + "; skipping the tests against a real etcd")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s.Endpoint
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
