package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// target is an engine that records the commands it is sent.
type target struct {
	st   engine.State
	mu   sync.Mutex
	cmds []engine.Command
}

func newTarget(t *testing.T) *target {
	t.Helper()
	r, err := spec.Parse("r.yaml", []byte(`name: web
traffic: {istio: {virtualService: web, stable: {host: web, subset: stable}, canary: {host: web, subset: canary}}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
checks:
  - {name: latency, canary: lat_canary, baseline: lat_stable, direction: lower_is_better, maxDeviationPercent: 20}
steps:
  - {setWeight: 10, analyze: 10m}
`))
	if err != nil {
		t.Fatal(err)
	}
	return &target{st: engine.NewState(r)}
}

func (f *target) Do(_ context.Context, cmd engine.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	return nil
}

func (f *target) Snapshot() engine.State { return f.st }

func (f *target) commands() []engine.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Command(nil), f.cmds...)
}

// logs collects what a server reports.
type logs struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start serves tgt on path until the test ends, after applying adjust to the server; the
// channel gets what Serve returns.
func start(t *testing.T, path string, tgt Target, opts Options, adjust ...func(*Server)) (*Server, <-chan error) {
	t.Helper()
	s, err := Listen(path, tgt, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range adjust {
		f(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served, finished := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(finished)
		served <- s.Serve(ctx)
	}()
	t.Cleanup(func() { cancel(); <-finished })
	return s, served
}

func send(t *testing.T, path string, req Request) *Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := Send(ctx, path, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestAcceptErrorsAreRetried: out of file descriptors, accepting a connection fails. The
// server used to return, removing its socket for good, silently: "a rollback is one command
// away" stopped being true. Now it reports the failure, retries with backoff, and answers
// the waiting client once descriptors are free again.
func TestAcceptErrorsAreRetried(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	var log logs
	_, served := start(t, path, newTarget(t), Options{Logf: log.logf})

	var saved syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	open, _ := os.ReadDir("/proc/self/fd")
	low := saved
	low.Cur = uint64(len(open) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip("cannot lower the descriptor limit:", err)
	}
	var fillers []*os.File
	release := func() {
		for _, f := range fillers {
			f.Close()
		}
		fillers = nil
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved)
	}
	defer release()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		fillers = append(fillers, f)
	}
	fillers[len(fillers)-1].Close() // one descriptor for the client; none left to accept with
	fillers = fillers[:len(fillers)-1]
	client, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "accept failed") {
		select {
		case err := <-served:
			t.Fatalf("the server gave up on an accept error: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no accept failure reported:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	release()

	client.SetDeadline(time.Now().Add(10 * time.Second))
	json.NewEncoder(client).Encode(Request{Command: "status"})
	var resp Response
	if err := json.NewDecoder(client).Decode(&resp); err != nil || !resp.OK {
		t.Fatalf("the client waiting through the failure got %+v, %v", resp, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the socket is gone: %v", err)
	}
	if resp := send(t, path, Request{Command: "status"}); !resp.OK {
		t.Errorf("a new request after recovering: %+v", resp)
	}
	if !strings.Contains(log.String(), "accepting again") {
		t.Errorf("the recovery is not reported:\n%s", log.String())
	}
}

// TestRequestsAreBounded: a request line is at most MaxRequest bytes, a reason at most
// MaxReason, and a peer that sends nothing is answered and dropped after the read timeout
// instead of holding its connection.
func TestRequestsAreBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	tgt := newTarget(t)
	start(t, path, tgt, Options{}, func(s *Server) { s.readTimeout = 300 * time.Millisecond })

	exchange := func(write func(net.Conn)) Response {
		t.Helper()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go write(c)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		var resp Response
		if err := json.NewDecoder(c).Decode(&resp); err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return resp
	}
	resp := exchange(func(net.Conn) {})
	if resp.Code != "bad_request" || !strings.Contains(resp.Error, "no complete request in time") {
		t.Errorf("a silent peer: %+v", resp)
	}
	resp = exchange(func(c net.Conn) {
		c.Write([]byte(`{"command":"status","reason":"`))
		c.Write(bytes.Repeat([]byte("a"), 1<<20))
	})
	if resp.Code != "bad_request" || !strings.Contains(resp.Error, "longer than 65536 bytes") {
		t.Errorf("a 1 MiB request: %+v", resp)
	}
	resp = exchange(func(c net.Conn) {
		json.NewEncoder(c).Encode(Request{Command: "pause", Reason: strings.Repeat("r", MaxReason+1)})
	})
	if resp.Code != "bad_request" || !strings.Contains(resp.Error, "the reason is 4097 bytes; at most 4096") {
		t.Errorf("a long reason: %+v", resp)
	}
	if cmds := tgt.commands(); len(cmds) != 0 {
		t.Errorf("commands reached the engine: %+v", cmds)
	}
	if resp := send(t, path, Request{Command: "pause", Reason: strings.Repeat("r", MaxReason)}); !resp.OK {
		t.Errorf("a reason of MaxReason bytes: %+v", resp)
	}
}

// TestPrivateDirectory: the default socket directory is perch's own, mode 0700: created so,
// repaired if perch's and open to others, refused if a symlink or another user's. Without
// $XDG_RUNTIME_DIR the default is $TMPDIR/perch-UID, where the verbs look too.
func TestPrivateDirectory(t *testing.T) {
	tmp := t.TempDir()
	noEnv := func(name string) string { return map[string]string{"TMPDIR": tmp}[name] } // no XDG_RUNTIME_DIR
	path := DefaultPath(noEnv, "web")
	dir := filepath.Join(tmp, "perch-"+strconv.Itoa(os.Geteuid()))
	if path != filepath.Join(dir, "web.sock") {
		t.Fatalf("DefaultPath without XDG_RUNTIME_DIR = %s, want it in %s", path, dir)
	}
	if xdg := DefaultPath(func(string) string { return "/run/user/7" }, "web"); xdg != "/run/user/7/perch/web.sock" {
		t.Errorf("DefaultPath with XDG_RUNTIME_DIR = %s", xdg)
	}
	// Find also looks in the fixed places (/run/user/UID, /tmp/perch-UID), where perches this
	// test did not start may be running: only what it finds under tmp is this test's.
	findHere := func() []string {
		found, _ := Find(noEnv)
		return slices.DeleteFunc(found, func(p string) bool { return !strings.HasPrefix(p, tmp+string(filepath.Separator)) })
	}
	var log logs
	srv, err := Listen(path, newTarget(t), Options{PrivateDir: true, Logf: log.logf})
	if err != nil {
		t.Fatal(err)
	}
	checkMode := func(p string, want fs.FileMode) {
		t.Helper()
		if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %04o", p, fi.Mode().Perm(), err, want)
		}
	}
	checkMode(dir, 0o700)
	checkMode(path, 0o600)
	if found := findHere(); len(found) != 1 || found[0] != path {
		t.Errorf("Find without XDG_RUNTIME_DIR = %v, want [%s]", found, path)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".p*")); len(left) != 0 {
		t.Errorf("the binding directory is left behind: %v", left)
	}
	srv.ln.Close()
	os.Remove(path)

	os.Chmod(dir, 0o755)
	srv, err = Listen(path, newTarget(t), Options{PrivateDir: true, Logf: log.logf})
	if err != nil {
		t.Fatal(err)
	}
	checkMode(dir, 0o700)
	if !strings.Contains(log.String(), "had mode 0755; set it to 0700") {
		t.Errorf("the repair is not reported:\n%s", log.String())
	}
	srv.ln.Close()
	os.Remove(path)

	other := t.TempDir()
	os.RemoveAll(dir)
	os.Symlink(other, dir)
	if _, err := Listen(path, newTarget(t), Options{PrivateDir: true}); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("a symlink for the directory: %v, want refused", err)
	}
	if found := findHere(); len(found) != 0 {
		t.Errorf("Find looked through a symlink: %v", found)
	}
	os.Remove(dir)

	if os.Geteuid() == 0 {
		os.Mkdir(dir, 0o700)
		os.Chown(dir, 65534, 65534)
		if _, err := Listen(path, newTarget(t), Options{PrivateDir: true}); err == nil || !strings.Contains(err.Error(), "belongs to another user") {
			t.Errorf("a directory of another user: %v, want refused", err)
		}
	}
}

// TestExistingFiles: a socket left by a dead perch is replaced, a live one is refused, and a
// file that is not a socket is never removed.
func TestExistingFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dead.SetUnlinkOnClose(false)
	dead.Close()
	start(t, path, newTarget(t), Options{})
	if resp := send(t, path, Request{Command: "status"}); !resp.OK {
		t.Errorf("status: %+v", resp)
	}
	if _, err := Listen(path, newTarget(t), Options{}); err == nil || !strings.Contains(err.Error(), "another perch is listening") {
		t.Errorf("a live socket: %v, want refused", err)
	}
	file := filepath.Join(dir, "notes.txt")
	os.WriteFile(file, []byte("keep me"), 0o600)
	if _, err := Listen(file, newTarget(t), Options{}); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("a regular file: %v, want refused", err)
	}
	if data, _ := os.ReadFile(file); string(data) != "keep me" {
		t.Error("the file was replaced")
	}
}

// peerEnv tells the test binary, run as another user, to send a request to a socket.
const peerEnv = "PERCH_CONTROL_PEER_SOCKET"

// TestPeerHelper is the other user's client, when run with peerEnv set.
func TestPeerHelper(t *testing.T) {
	path := os.Getenv(peerEnv)
	if path == "" {
		t.Skip("run by TestOtherUsersAreRefused")
	}
	resp, err := Send(context.Background(), path, Request{Command: "rollback", Reason: "not mine"})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(0)
	}
	json.NewEncoder(os.Stdout).Encode(resp)
	os.Exit(0)
}

// asNobody runs TestPeerHelper as the user nobody against the socket at path.
func asNobody(t *testing.T, path string) Response {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != filepath.Dir(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		if strings.HasPrefix(d, os.TempDir()) && d != os.TempDir() {
			os.Chmod(d, 0o755)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "peer.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestPeerHelper$")
	cmd.Env = append(os.Environ(), peerEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the other user's client: %v\n%s", err, out)
	}
	var resp Response
	if err := json.Unmarshal(bytes.TrimSpace(out), &resp); err != nil {
		t.Fatalf("the other user's client printed %q", out)
	}
	return resp
}

// TestOtherUsersAreRefused: whoever reaches the socket used to be an operator. Another user
// who can connect (a socket with a lax mode, as in the moment between binding and chmod, or a
// --socket in a shared directory) is now refused by its peer credentials; members of
// --socket-group are let in, recorded by name.
func TestOtherUsersAreRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a client as another user")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "s.sock")
	tgt := newTarget(t)
	var log logs
	start(t, path, tgt, Options{Logf: log.logf})
	os.Chmod(path, 0o666)
	resp := asNobody(t, path)
	if resp.OK || resp.Code != "forbidden" || !strings.Contains(resp.Error, "uid 65534) is not the user running perch (uid 0)") {
		t.Errorf("another user's rollback: %+v, want forbidden", resp)
	}
	if cmds := tgt.commands(); len(cmds) != 0 {
		t.Errorf("another user's command reached the engine: %+v", cmds)
	}
	if !strings.Contains(log.String(), "forbidden") {
		t.Errorf("the refusal is not reported:\n%s", log.String())
	}

	gpath := filepath.Join(dir, "g.sock")
	start(t, gpath, tgt, Options{Group: "65534"})
	if fi, err := os.Stat(gpath); err != nil || fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != 65534 {
		t.Errorf("group socket: %v %v, want mode 0660 and group 65534", fi.Mode(), err)
	}
	if resp := asNobody(t, gpath); !resp.OK {
		t.Errorf("a member of --socket-group: %+v, want let in", resp)
	}
	if cmds := tgt.commands(); len(cmds) != 1 || cmds[0].Actor.Name != "nobody" || cmds[0].Kind != engine.CommandRollback {
		t.Errorf("the group member's command: %+v, want a rollback by nobody", cmds)
	}
}
