package remote_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	gossh "golang.org/x/crypto/ssh"

	"github.com/perchhq/perch/tui/remote"
)

// sizes is a model that records every window size it is given.
type sizes struct {
	mu   *sync.Mutex
	seen *[]tea.WindowSizeMsg
}

func (s sizes) Init() tea.Cmd { return nil }
func (s sizes) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if w, ok := msg.(tea.WindowSizeMsg); ok {
		s.mu.Lock()
		*s.seen = append(*s.seen, w)
		s.mu.Unlock()
	}
	return s, nil
}
func (s sizes) View() string { return "sized\n" }

func dial(t *testing.T, addr string, signer gossh.Signer) *gossh.Client {
	t.Helper()
	client, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: "root", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// TestHugeTerminalsAreClamped: a client asking for an 8000×8000 terminal (64 million cells,
// gigabytes of frames) is drawn at most MaxWidth×MaxHeight, at the start and on resize; and
// agent forwarding, which perch never does, is refused rather than pretended.
func TestHugeTerminalsAreClamped(t *testing.T) {
	dir := t.TempDir()
	alice := newKey(t, "alice")
	keys, _ := remote.LoadKeyring(writeKeys(t, dir, "ops", alice.line), "")
	var mu sync.Mutex
	var seen []tea.WindowSizeMsg
	f := serveWith(t, remote.Config{Keys: keys, HostKeyPath: filepath.Join(dir, "host"),
		NewModel: func(remote.Session) tea.Model { return sizes{mu: &mu, seen: &seen} }})
	client := dial(t, f.addr, alice.signer)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := sess.SendRequest("auth-agent-req@openssh.com", true, nil); ok {
		t.Error("agent forwarding accepted; perch forwards nothing")
	}
	if err := sess.RequestPty("xterm-256color", 8000, 8000, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	last := func() tea.WindowSizeMsg {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return tea.WindowSizeMsg{}
		}
		return seen[len(seen)-1]
	}
	eventually(t, "the first size", func() bool { return last().Width != 0 })
	if got := last(); got.Width != remote.MaxWidth || got.Height != remote.MaxHeight {
		t.Errorf("an 8000×8000 terminal reached the model as %d×%d, want %d×%d", got.Width, got.Height, remote.MaxWidth, remote.MaxHeight)
	}
	if err := sess.WindowChange(30, 7000); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the resize", func() bool { return last().Height == 30 })
	if got := last(); got.Width != remote.MaxWidth {
		t.Errorf("a resize to 7000×30 reached the model as %d×%d, want %d×30", got.Width, got.Height, remote.MaxWidth)
	}
	if err := sess.WindowChange(40, 120); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an ordinary size, unchanged", func() bool { return last() == tea.WindowSizeMsg{Width: 120, Height: 40} })
}

// isOpen reports, for each connection, whether the server still holds it open: reading
// times out rather than ending.
func isOpen(conns []net.Conn) []bool {
	open := make([]bool, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			var b [512]byte
			for {
				_, err := c.Read(b[:])
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					open[i] = true
					return
				}
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return open
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// TestSilentConnectionsAreBounded: 200 TCP connections that never speak SSH used to stay
// open for ever, and enough of them used up perch's file descriptors (the proxy's too).
// Now at most MaxStartups connections without a session are held, the newest; an operator
// still gets in (pushing out the oldest); and each is closed after LoginGrace, whether it
// never finished its login or logged in and opened no session.
func TestSilentConnectionsAreBounded(t *testing.T) {
	dir := t.TempDir()
	alice := newKey(t, "alice")
	keys, _ := remote.LoadKeyring(writeKeys(t, dir, "ops", alice.line), "")
	const grace = 2 * time.Second
	f := serveWith(t, remote.Config{Keys: keys, HostKeyPath: filepath.Join(dir, "host"),
		Limits: remote.Limits{MaxStartups: 10, LoginGrace: grace}})
	var conns []net.Conn
	for range 200 {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	open := isOpen(conns)
	if n := count(open); n != 10 {
		t.Errorf("%d of 200 silent connections held open, want 10 (MaxStartups)", n)
	}

	_, out, err := f.session(t, "root", gossh.PublicKeys(alice.signer))
	if err != nil {
		t.Fatalf("an operator could not connect past 200 silent connections: %v", err)
	}
	eventually(t, "the operator's greeting", func() bool { return strings.Contains(out.String(), "hello alice") })

	quiet := dial(t, f.addr, alice.signer) // logs in, opens no session
	closed := make(chan struct{})
	go func() { quiet.Wait(); close(closed) }()
	time.Sleep(grace + time.Second)
	if n := count(isOpen(conns)); n != 0 {
		t.Errorf("%d silent connections still open after the login grace", n)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Error("a connection that logged in and opened no session was kept past the login grace")
	}
	if !strings.Contains(out.String(), "hello alice") || len(f.presence.List()) != 1 {
		t.Error("the operator's session did not survive the grace of the others")
	}
}

// TestSessionCaps: a key may have MaxSessionsPerKey sessions open, and perch MaxSessions in
// all; one more is told why and closed, and a connection may not open more than 10 session
// channels at once.
func TestSessionCaps(t *testing.T) {
	dir := t.TempDir()
	alice, bob := newKey(t, "alice"), newKey(t, "bob")
	keys, _ := remote.LoadKeyring(writeKeys(t, dir, "ops", alice.line, bob.line), "")
	f := serveWith(t, remote.Config{Keys: keys, HostKeyPath: filepath.Join(dir, "host"),
		Limits: remote.Limits{MaxSessionsPerKey: 2, MaxSessions: 3}})
	open := func(signer gossh.Signer, want string) *gossh.Session {
		t.Helper()
		sess, out, err := f.session(t, "root", gossh.PublicKeys(signer))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, fmt.Sprintf("%q in %q", want, out.String()), func() bool { return strings.Contains(out.String(), want) })
		return sess
	}
	first := open(alice.signer, "hello alice")
	open(alice.signer, "hello alice")
	third := open(alice.signer, "perch: alice has as many sessions open as one key may (2); close one first")
	if err := third.Wait(); err == nil || !strings.Contains(err.Error(), "exited with status 1") {
		t.Errorf("the refused session ended with %v, want exit status 1", err)
	}
	open(bob.signer, "hello bob")
	open(bob.signer, "perch: all 3 sessions this perch serves are taken; try again later")
	if !strings.Contains(f.log.String(), "refused a session") {
		t.Errorf("refusals not logged:\n%s", f.log.String())
	}
	first.Close()
	eventually(t, "alice's first session gone", func() bool { return len(f.presence.List()) == 2 })
	open(alice.signer, "hello alice")

	client := dial(t, f.addr, bob.signer)
	for i := range 11 {
		_, err := client.NewSession()
		if i < 10 && err != nil {
			t.Fatalf("session channel %d refused: %v", i+1, err)
		}
		if i == 10 && (err == nil || !strings.Contains(err.Error(), "too many sessions on one connection")) {
			t.Errorf("an 11th session channel on one connection: %v, want refused", err)
		}
	}
}

// freezable is a client connection that stops reading (and so answering) when frozen, as
// a client behind a dead network does.
type freezable struct {
	net.Conn
	frozen atomic.Bool
	thaw   chan struct{}
}

func (c *freezable) Read(b []byte) (int, error) {
	if c.frozen.Load() {
		<-c.thaw
		return 0, io.EOF
	}
	return c.Conn.Read(b)
}

// TestKeepalivesCloseDeadConnections: a client that stops answering is disconnected after
// KeepaliveCountMax unanswered keepalives, releasing its session; one that answers is kept.
func TestKeepalivesCloseDeadConnections(t *testing.T) {
	dir := t.TempDir()
	alice, bob := newKey(t, "alice"), newKey(t, "bob")
	keys, _ := remote.LoadKeyring(writeKeys(t, dir, "ops", alice.line, bob.line), "")
	f := serveWith(t, remote.Config{Keys: keys, HostKeyPath: filepath.Join(dir, "host"),
		Limits: remote.Limits{KeepaliveInterval: 200 * time.Millisecond, KeepaliveCountMax: 3}})

	_, live, err := f.session(t, "root", gossh.PublicKeys(bob.signer))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob's greeting", func() bool { return strings.Contains(live.String(), "hello bob") })

	raw, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn := &freezable{Conn: raw, thaw: make(chan struct{})}
	t.Cleanup(func() { close(conn.thaw); raw.Close() })
	cc, chans, reqs, err := gossh.NewClientConn(conn, f.addr, &gossh.ClientConfig{User: "root",
		Auth: []gossh.AuthMethod{gossh.PublicKeys(alice.signer)}, HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	client := gossh.NewClient(cc, chans, reqs)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	sess.Stdout = out
	if err := sess.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's greeting", func() bool { return strings.Contains(out.String(), "hello alice") })
	eventually(t, "two present", func() bool { return len(f.presence.List()) == 2 })
	conn.frozen.Store(true)

	start := time.Now()
	eventually(t, "the dead client's session released", func() bool { return len(f.presence.List()) == 1 })
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Errorf("closed after %s, before 3 keepalives could go unanswered", took)
	}
	if l := f.presence.List(); l[0].Name != "bob" {
		t.Errorf("the live client was disconnected: %v", l)
	}
	if !strings.Contains(f.log.String(), "closed a dead connection") || !strings.Contains(f.log.String(), "comment=alice") {
		t.Errorf("the disconnection is not logged with who it was:\n%s", f.log.String())
	}
}

// TestHostKeyReadableByOthersIsRefused: a host key group or others may read is refused, as
// sshd refuses it: whoever reads it can pose as this perch to every operator.
func TestHostKeyReadableByOthersIsRefused(t *testing.T) {
	dir := t.TempDir()
	alice := newKey(t, "alice")
	keys, _ := remote.LoadKeyring(writeKeys(t, dir, "ops", alice.line), "")
	hostKey := filepath.Join(dir, "host")
	serve(t, keys, hostKey) // creates it, 0600
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(hostKey, mode)
		_, err := remote.New(remote.Config{Addr: "127.0.0.1:0", HostKeyPath: hostKey, Keys: keys})
		want := fmt.Sprintf("permissions %04o for '%s' are too open", mode, hostKey)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("host key mode %04o: %v, want an error saying %q", mode, err, want)
		}
	}
	os.Chmod(hostKey, 0o400)
	if _, err := remote.New(remote.Config{Addr: "127.0.0.1:0", HostKeyPath: hostKey, Keys: keys}); err != nil {
		t.Errorf("host key mode 0400 refused: %v", err)
	}
}

// TestServerLogNamesThePerson: the server log says who connected — the person (the key's
// comment), their role and key fingerprint, and the SSH user name — as labelled fields.
func TestServerLogNamesThePerson(t *testing.T) {
	dir := t.TempDir()
	bob, mallory := newKey(t, "bob the manager"), newKey(t, "mallory")
	alice := newKey(t, "alice")
	keys, _ := remote.LoadKeyring(writeKeys(t, dir, "ops", alice.line), writeKeys(t, dir, "viewers", bob.line))
	f := serve(t, keys, filepath.Join(dir, "host"))
	sess, out, err := f.session(t, "deploy", gossh.PublicKeys(bob.signer))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "greeting", func() bool { return strings.Contains(out.String(), "hello bob") })
	sess.Close()
	f.session(t, "root", gossh.PublicKeys(mallory.signer))
	fp := gossh.FingerprintSHA256(bob.signer.PublicKey())
	eventually(t, "the session's end logged", func() bool { return strings.Contains(f.log.String(), "session ended") })
	logged := f.log.String()
	for _, want := range []string{
		"session started user=deploy comment=\"bob the manager\" role=viewer fingerprint=" + fp,
		"session ended user=deploy comment=\"bob the manager\" role=viewer fingerprint=" + fp,
		"refused an unknown key user=root fingerprint=" + gossh.FingerprintSHA256(mallory.signer.PublicKey()),
	} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
}

// TestOpenSSHClient runs the real OpenSSH client against the limits: it answers keepalives
// (with a refusal, which counts as alive) and keeps its session; a session past the per-key
// cap prints why and exits 1; a key used from outside its from= is denied.
func TestOpenSSHClient(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ssh is missing: CI must install the Debian package openssh-client (.ci/run)")
		}
		t.Skip("the OpenSSH client is not installed: apt-get install openssh-client")
	}
	dir := t.TempDir()
	identity := func(name, opts string) (string, string) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := gossh.MarshalPrivateKey(priv, name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		signer, _ := gossh.NewSignerFromKey(priv)
		return path, strings.TrimSpace(opts + " " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + name)
	}
	alice, aliceLine := identity("alice", `from="127.0.0.1"`)
	bob, bobLine := identity("bob", `restrict,pty,from="10.0.0.0/8"`)
	keys, err := remote.LoadKeyring(writeKeys(t, dir, "ops", aliceLine, bobLine), "")
	if err != nil {
		t.Fatal(err)
	}
	f := serveWith(t, remote.Config{Keys: keys, HostKeyPath: filepath.Join(dir, "host"),
		Limits: remote.Limits{KeepaliveInterval: 100 * time.Millisecond, KeepaliveCountMax: 2, MaxSessionsPerKey: 1}})
	_, port, _ := net.SplitHostPort(f.addr)
	ssh := func(key string) (*exec.Cmd, *syncBuffer) {
		cmd := exec.Command("ssh", "-tt", "-p", port, "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "root@127.0.0.1")
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		stdin, _ := cmd.StdinPipe() // stays open: the session reads a terminal that types nothing
		t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, out
	}
	_, first := ssh(alice)
	eventually(t, "alice's greeting", func() bool { return strings.Contains(first.String(), "hello alice") })
	time.Sleep(time.Second) // 10 keepalives, each answered
	if len(f.presence.List()) != 1 {
		t.Fatalf("OpenSSH's session was closed although it answers keepalives:\n%s", f.log.String())
	}
	second, out := ssh(alice)
	err = second.Wait()
	if !strings.Contains(out.String(), "perch: alice has as many sessions open as one key may (1); close one first") || second.ProcessState.ExitCode() != 1 {
		t.Errorf("a second session: exit %v, %q; want refused with the reason and exit status 1", err, out.String())
	}
	denied, out := ssh(bob)
	denied.Wait()
	if !strings.Contains(out.String(), "Permission denied (publickey)") {
		t.Errorf("a key used outside its from=: %q, want permission denied", out.String())
	}
}
