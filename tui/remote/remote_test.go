package remote_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/log"
	gossh "golang.org/x/crypto/ssh"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/tui/remote"
)

// fakeEngine counts open subscriptions and records commands.
type fakeEngine struct {
	mu   sync.Mutex
	open int
	cmds []engine.Command
}

func (f *fakeEngine) Subscribe() (<-chan engine.State, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open++
	ch := make(chan engine.State, 1)
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.open--
		})
	}
}

func (f *fakeEngine) Do(_ context.Context, cmd engine.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	return nil
}

func (f *fakeEngine) subscriptions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open
}

// greeter is a model that subscribes like the TUI does and greets the session's actor; on
// "x" it sends a command claiming to be someone else.
type greeter struct {
	s remote.Session
}

func (g greeter) Init() tea.Cmd { return nil }
func (g greeter) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok && k.String() == "x" {
		g.s.Rollout.Do(context.Background(), engine.Command{Kind: engine.CommandPause, Actor: engine.Actor{Name: "impostor", Role: engine.RoleOperator}})
	}
	return g, nil
}
func (g greeter) View() string {
	return "hello " + g.s.Actor.Name + " (" + string(g.s.Actor.Role) + ")\n"
}

type keyPair struct {
	signer gossh.Signer
	line   string // authorized_keys line
}

func newKey(t *testing.T, name string) keyPair {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{signer: signer, line: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + name}
}

type fixture struct {
	stdin    io.Writer     // of the last session opened
	client   *gossh.Client // of the last session opened
	addr     string
	hostKey  string
	eng      *fakeEngine
	presence *remote.Presence
	log      *syncBuffer // the server's log
}

func serve(t *testing.T, keys *remote.Keyring, hostKey string) *fixture {
	t.Helper()
	return serveWith(t, remote.Config{Keys: keys, HostKeyPath: hostKey})
}

// serveWith serves cfg, filling in the address, engine, model and logger it leaves out.
func serveWith(t *testing.T, cfg remote.Config) *fixture {
	t.Helper()
	f := &fixture{hostKey: cfg.HostKeyPath, eng: &fakeEngine{}, log: &syncBuffer{}}
	cfg.Addr = "127.0.0.1:0"
	if cfg.Fleet == nil {
		cfg.Rollout = f.eng
	}
	if cfg.NewModel == nil {
		cfg.NewModel = func(s remote.Session) tea.Model {
			s.Rollout.Subscribe()
			return greeter{s: s}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(f.log)
	}
	srv, err := remote.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	f.addr, f.presence = ln.Addr().String(), srv.Presence()
	return f
}

// session connects with auth and opens a PTY shell, returning what the server prints.
func (f *fixture) session(t *testing.T, user string, auth ...gossh.AuthMethod) (*gossh.Session, *syncBuffer, error) {
	t.Helper()
	client, err := gossh.Dial("tcp", f.addr, &gossh.ClientConfig{User: user, Auth: auth, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { client.Close() })
	f.client = client
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	sess.Stdout, sess.Stderr = out, out
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	f.stdin = stdin
	if err := sess.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	return sess, out, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeKeys(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRolesAndRefusals(t *testing.T) {
	dir := t.TempDir()
	alice, bob, mallory := newKey(t, "alice@oncall"), newKey(t, "bob the manager"), newKey(t, "mallory")
	keys, err := remote.LoadKeyring(writeKeys(t, dir, "ops", "# operators", alice.line), writeKeys(t, dir, "viewers", bob.line))
	if err != nil {
		t.Fatal(err)
	}
	f := serve(t, keys, filepath.Join(dir, "host_ed25519"))

	sess, out, err := f.session(t, "root", gossh.PublicKeys(alice.signer))
	if err != nil {
		t.Fatalf("operator key refused: %v", err)
	}
	eventually(t, "the operator's greeting", func() bool { return strings.Contains(out.String(), "hello alice@oncall (operator)") })
	eventually(t, "alice in the presence list", func() bool { return len(f.presence.List()) == 1 })
	_ = sess
	if _, err := f.stdin.Write([]byte("x")); err == nil {
		eventually(t, "the command", func() bool { f.eng.mu.Lock(); defer f.eng.mu.Unlock(); return len(f.eng.cmds) == 1 })
		f.eng.mu.Lock()
		got := f.eng.cmds[0].Actor
		f.eng.mu.Unlock()
		if got.Name != "alice@oncall" || got.Source != "ssh" || !strings.HasPrefix(got.Fingerprint, "SHA256:") {
			t.Errorf("command sent as %+v: the session's identity must replace whatever the model claims", got)
		}
	}

	_, out, err = f.session(t, "root", gossh.PublicKeys(bob.signer))
	if err != nil {
		t.Fatalf("viewer key refused: %v", err)
	}
	eventually(t, "the viewer's greeting", func() bool { return strings.Contains(out.String(), "hello bob the manager (viewer)") })
	eventually(t, "two people present", func() bool { return len(f.presence.List()) == 2 })
	if l := f.presence.List(); l[0].Role != engine.RoleOperator {
		t.Errorf("presence %v: operators first", l)
	}

	if _, _, err := f.session(t, "root", gossh.PublicKeys(mallory.signer)); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("unknown key: %v, want refused before a session starts", err)
	}
	if _, _, err := f.session(t, "root", gossh.Password("hunter2")); err == nil {
		t.Error("password login accepted")
	}
	if _, _, err := f.session(t, "root", gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil })); err == nil {
		t.Error("keyboard-interactive login accepted")
	}
}

func TestDroppedSessionsReleaseSubscriptions(t *testing.T) {
	dir := t.TempDir()
	alice := newKey(t, "alice")
	keys, _ := remote.LoadKeyring(writeKeys(t, dir, "ops", alice.line), "")
	f := serve(t, keys, filepath.Join(dir, "host"))
	for i := range 5 {
		sess, out, err := f.session(t, "root", gossh.PublicKeys(alice.signer))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "greeting", func() bool { return strings.Contains(out.String(), "hello alice") })
		switch i % 3 {
		case 0:
			sess.Close() // only this session ends; the connection stays, as with ssh -o ControlMaster
		case 1:
			f.client.Close() // the connection drops
		default:
			sess.Signal(gossh.SIGKILL)
			sess.Close()
		}
	}
	eventually(t, "every subscription released", func() bool { return f.eng.subscriptions() == 0 })
	eventually(t, "nobody present", func() bool { return len(f.presence.List()) == 0 })
}

func TestHostKeyCreatedOnceWithMode0600(t *testing.T) {
	dir := t.TempDir()
	hostKey := filepath.Join(dir, "keys", "host_ed25519")
	alice := newKey(t, "alice")
	keys, _ := remote.LoadKeyring(writeKeys(t, dir, "ops", alice.line), "")
	fingerprint := func() string {
		f := serve(t, keys, hostKey)
		var seen string
		client, err := gossh.Dial("tcp", f.addr, &gossh.ClientConfig{User: "root", Auth: []gossh.AuthMethod{gossh.PublicKeys(alice.signer)},
			HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error { seen = gossh.FingerprintSHA256(key); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		client.Close()
		return seen
	}
	first := fingerprint()
	fi, err := os.Stat(hostKey)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key %v (%v), want a file with mode 0600", fi, err)
	}
	if again := fingerprint(); again != first {
		t.Errorf("host key changed across restarts: %s then %s", first, again)
	}
}

func TestKeyringErrors(t *testing.T) {
	dir := t.TempDir()
	alice := newKey(t, "alice")
	noComment := strings.TrimSuffix(alice.line, " alice")
	tests := []struct {
		name, ops, viewers, want string
	}{
		{"no comment", writeKeys(t, dir, "a", noComment), "", "a:1: key SHA256:"},
		{"garbage", writeKeys(t, dir, "b", "# x", "ssh-ed25519 notbase64 bob"), "", "b:2: not an authorized_keys line"},
		{"in both files", writeKeys(t, dir, "c", alice.line), writeKeys(t, dir, "d", alice.line), "d:1: key of alice is already listed (as alice, operator)"},
		{"empty", writeKeys(t, dir, "e", "# nobody"), "", "e: no keys"},
		{"missing", filepath.Join(dir, "nope"), "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := remote.LoadKeyring(tc.ops, tc.viewers)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestOpenModeIsLoopbackOperators(t *testing.T) {
	dir := t.TempDir()
	f := serve(t, nil, filepath.Join(dir, "host"))
	_, out, err := f.session(t, "carol")
	if err != nil {
		t.Fatalf("open mode refused a loopback client without a key: %v", err)
	}
	// The name is the client's, not "carol (open demo)": the actor's source says it is the open mode.
	eventually(t, "greeting "+out.String(), func() bool { return strings.Contains(out.String(), "hello carol (operator)") })
}

// TestAuthorizedKeysOptions: from= and expiry-time= are enforced as sshd enforces them;
// options that only take away what perch never offers load; any other option, or a
// certificate, is refused when the file is loaded, naming the file and line, rather than
// silently ignored.
func TestAuthorizedKeysOptions(t *testing.T) {
	dir := t.TempDir()
	type client struct {
		key  keyPair
		opts string
		in   bool
	}
	clients := []client{
		{newKey(t, "far"), `from="10.0.0.0/8"`, false},
		{newKey(t, "near"), `from="127.0.0.0/8"`, true},
		{newKey(t, "wild"), `from="127.0.0.?,192.0.2.1"`, true},
		{newKey(t, "negated"), `from="!127.0.0.1,*"`, false},
		{newKey(t, "expired"), `expiry-time="20200101"`, false},
		{newKey(t, "expires later"), `expiry-time="29991231235959"`, true},
		{newKey(t, "restricted"), `restrict,pty,no-agent-forwarding,permitopen="localhost:80",FROM="127.0.0.1"`, true},
	}
	var lines []string
	for _, c := range clients {
		lines = append(lines, c.opts+" "+c.key.line)
	}
	keys, err := remote.LoadKeyring(writeKeys(t, dir, "ops", lines...), "")
	if err != nil {
		t.Fatal(err)
	}
	f := serve(t, keys, filepath.Join(dir, "host"))
	for _, c := range clients {
		_, out, err := f.session(t, "root", gossh.PublicKeys(c.key.signer))
		switch {
		case c.in && err != nil:
			t.Errorf("%s (%s) refused: %v", strings.Fields(c.key.line)[2], c.opts, err)
		case c.in:
			eventually(t, "greeting", func() bool { return strings.Contains(out.String(), "hello") })
		case err == nil:
			t.Errorf("%s (%s) let in from 127.0.0.1", strings.Fields(c.key.line)[2], c.opts)
		}
	}
	for _, want := range []string{`reason="127.0.0.1:`, `is not in from=\"10.0.0.0/8\"`, `the key expired at 2020-01-01T00:00:00`} {
		if !strings.Contains(f.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, f.log.String())
		}
	}

	alice := newKey(t, "alice")
	refused := map[string]string{
		`command="/bin/sh"`:               "option command= is not supported by perch; remove it",
		`cert-authority`:                  "option cert-authority is not supported by perch; remove it",
		`environment="A=b"`:               "option environment= is not supported by perch; remove it",
		`principals="alice"`:              "option principals= is not supported by perch; remove it",
		`agent-forwarding`:                "option agent-forwarding is not supported by perch; remove it",
		`tunnel="1"`:                      "option tunnel= is not supported by perch; remove it",
		`verify-required`:                 "option verify-required is not supported by perch; remove it",
		`no-pty`:                          "option no-pty leaves this key no terminal",
		`restrict`:                        "option restrict without pty leaves this key no terminal",
		`from="bastion.example.com"`:      `option from="bastion.example.com": bastion.example.com names a host`,
		`from="10.0.0.1/8"`:               `option from="10.0.0.1/8": 10.0.0.1/8 has bits set past its mask`,
		`from`:                            `option from needs a value`,
		`expiry-time="2020"`:              `option expiry-time="2020": want YYYYMMDD`,
		`from="10.0.0.1",from="10.0.0.2"`: "option from= is given twice",
	}
	for opts, want := range refused {
		path := writeKeys(t, dir, "viewers.keys", "# viewers", alice.line, opts+" "+newKey(t, "bob").line)
		_, err := remote.LoadKeyring(writeKeys(t, dir, "ops2", newKey(t, "carol").line), path)
		if want = path + ":3: " + want; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", opts, err, want)
		}
	}
	cert := &gossh.Certificate{Key: alice.signer.PublicKey(), CertType: gossh.UserCert, ValidBefore: gossh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, alice.signer); err != nil {
		t.Fatal(err)
	}
	path := writeKeys(t, dir, "certs", strings.TrimSpace(string(gossh.MarshalAuthorizedKey(cert)))+" alice")
	if _, err := remote.LoadKeyring(path, ""); err == nil || !strings.Contains(err.Error(), path+":1: ssh-ed25519-cert-v01@openssh.com is a certificate") {
		t.Errorf("certificate line: %v, want refused", err)
	}
}

// TestSessionsSharingAConnection: sessions multiplexed on one connection (ssh -o
// ControlMaster) are each present, and leave one by one.
func TestSessionsSharingAConnection(t *testing.T) {
	dir := t.TempDir()
	alice := newKey(t, "alice")
	keys, _ := remote.LoadKeyring(writeKeys(t, dir, "ops", alice.line), "")
	f := serve(t, keys, filepath.Join(dir, "host"))
	client, err := gossh.Dial("tcp", f.addr, &gossh.ClientConfig{User: "root", Auth: []gossh.AuthMethod{gossh.PublicKeys(alice.signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var sessions []*gossh.Session
	for range 2 {
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		if err := sess.Shell(); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, sess)
	}
	eventually(t, "two sessions present", func() bool { return len(f.presence.List()) == 2 })
	sessions[0].Close()
	eventually(t, "one session left", func() bool { return len(f.presence.List()) == 1 })
	time.Sleep(200 * time.Millisecond)
	if n := len(f.presence.List()); n != 1 {
		t.Errorf("%d present after one of two sessions closed, want 1", n)
	}
}
