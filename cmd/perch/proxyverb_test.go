package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/providers/proxy/admin"
	"github.com/perchhq/perch/providers/proxy/proxyd"
)

// The standalone proxy's suite runs the real perch binary twice over: `perch proxy` as the
// service in front of real backends on loopback, and `perch run` driving it through its admin
// socket, killed with SIGKILL mid-rollout, resumed, and promoted, while clients keep sending
// requests through the proxy.

// switchable is a backend whose answer (its name, after a delay) the test can change.
type switchable struct {
	name  atomic.Pointer[string]
	delay atomic.Int64
	*httptest.Server
}

func newSwitchable(t *testing.T, name string) *switchable {
	b := &switchable{}
	b.name.Store(&name)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(b.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		fmt.Fprint(w, *b.name.Load())
	}))
	t.Cleanup(b.Close)
	return b
}

// proxyService is a `perch proxy` process and its file.
type proxyService struct {
	t      *testing.T
	dir    string
	file   string
	socket string
	listen string
	cmd    *exec.Cmd
	stderr *lockedBuffer
}

func newProxyService(t *testing.T, stable, canary string) *proxyService {
	t.Helper()
	dir, err := os.MkdirTemp("", "perch-proxy") // short: it holds the admin socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxyService{t: t, dir: dir, file: filepath.Join(dir, "proxy.yaml"), socket: filepath.Join(dir, "run", "admin.sock"), listen: ln.Addr().String()}
	ln.Close()
	p.write(stable, canary)
	return p
}

// write (re)writes the proxy file with these backends.
func (p *proxyService) write(stable, canary string) {
	p.t.Helper()
	text := fmt.Sprintf(`listen: %s
admin: unix://%s
stable: %s
canary: %s
state: state.json
timeouts: {responseHeader: 5s, idle: 30s, body: 5s}
observations: {resolution: 250ms, retention: 5m}
`, p.listen, p.socket, stable, canary)
	if err := os.WriteFile(p.file, []byte(text), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// start runs `perch proxy` and waits for its admin API to answer.
func (p *proxyService) start() {
	p.t.Helper()
	bin, err := perchBinary()
	if err != nil {
		p.t.Fatal(err)
	}
	p.stderr = &lockedBuffer{}
	p.cmd = exec.Command(bin, "proxy", p.file, "--drain", "10s")
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	cmd := p.cmd
	p.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	c := p.client()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c.Health(context.Background()) == nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("perch proxy did not answer on its admin socket; stderr:\n%s", p.stderr)
		}
	}
}

// stop sends sig and returns the exit code.
func (p *proxyService) stop(sig os.Signal) int {
	p.t.Helper()
	p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		p.t.Fatalf("perch proxy did not stop; stderr:\n%s", p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proxyService) client() *admin.Client {
	c, err := admin.New(admin.Config{Address: "unix://" + p.socket})
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

func (p *proxyService) weight() int {
	p.t.Helper()
	n, err := p.client().Weight(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

// waitLog waits for the proxy's stderr to hold s.
func (p *proxyService) waitLog(s string) {
	p.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.stderr.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			p.t.Fatalf("perch proxy never logged %q; stderr:\n%s", s, p.stderr)
		}
	}
}

// through sends n requests through the proxy and counts the answers by body; any failure
// fails the test.
func (p *proxyService) through(n int) map[string]int {
	p.t.Helper()
	got := map[string]int{}
	client := &http.Client{Timeout: 5 * time.Second}
	for range n {
		resp, err := client.Get("http://" + p.listen + "/")
		if err != nil {
			p.t.Fatalf("a request through the proxy failed: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			p.t.Fatalf("a request through the proxy: %d %s", resp.StatusCode, b)
		}
		got[string(b)]++
	}
	return got
}

// steadyLoad sends about 200 requests a second through the proxy until stopped, counting those
// that did not come back 200.
type steadyLoad struct {
	sent, failed atomic.Int64
	lastErr      atomic.Pointer[string]
	stop         func()
}

func startLoad(url string) *steadyLoad {
	l := &steadyLoad{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 5 * time.Second}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			l.sent.Add(1)
			resp, err := client.Get(url)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				l.failed.Add(1)
				msg := err.Error()
				l.lastErr.Store(&msg)
			}
		}
	}()
	l.stop = func() { cancel(); <-done }
	return l
}

// TestStandaloneProxyOutlivesPerch: killing `perch run` mid-rollout leaves traffic flowing at
// the weight it had; --resume carries on against the same proxy and promotes; after perch has
// exited traffic keeps flowing at 100%; a restarted proxy comes back at 100% from its state.
func TestStandaloneProxyOutlivesPerch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the perch binary")
	}
	stable, canary := newSwitchable(t, "stable"), newSwitchable(t, "canary")
	p := newProxyService(t, stable.URL, canary.URL)
	p.start()
	load := startLoad("http://" + p.listen + "/")
	defer load.stop()

	w := &crashWorld{t: t, dir: p.dir, rollout: filepath.Join(p.dir, "rollout.yaml"), journal: filepath.Join(p.dir, "journal.jsonl")}
	rollout := fmt.Sprintf(`name: standalone
traffic: {proxy: {admin: "unix://%s"}}
metrics: {builtin: {}}
analysis: {interval: 1s, stabilization: 1s, judge: threshold}
checks:
  - {name: errors, builtin: error_rate, maxIncrease: 0.05, critical: true}
steps:
  - {setWeight: 20, analyze: 4s}
  - {setWeight: 50, analyze: 4s}
  - {setWeight: 80, analyze: 4s}
`, p.socket)
	if err := os.WriteFile(w.rollout, []byte(rollout), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runPerch(t, "", "validate", w.rollout, "--check-access"); code != exitOK ||
		!strings.Contains(stdout, "traffic: perch proxy at unix://"+p.socket+": reachable, canary at 0%") {
		t.Fatalf("validate --check-access: exit %d\n%s%s", code, stdout, stderr)
	}

	run := w.perch()
	w.killAt(run, engine.EventWeightSet, 2) // 50% confirmed, then SIGKILL
	if strings.Contains(fmt.Sprint(run.Stderr), "runs inside this perch") {
		t.Errorf("perch run said a standalone proxy stops with it:\n%s", run.Stderr)
	}
	if got := p.weight(); got != 50 {
		t.Fatalf("after perch was killed the proxy is at %d%%, want the 50%% it had", got)
	}
	split := p.through(400)
	if split["stable"]+split["canary"] != 400 || split["canary"] < 140 || split["canary"] > 260 {
		t.Errorf("with perch dead, 400 requests went %v, want about half to each", split)
	}

	resumed := w.perch("--resume")
	if code := w.exitCode(resumed); code != exitOK {
		t.Fatalf("resumed perch exited %d, want 0 (promoted); stderr:\n%s", code, resumed.Stderr)
	}
	w.check(engine.PhasePromoted)
	if got := p.weight(); got != 100 {
		t.Fatalf("after the promotion the proxy is at %d%%, want 100%%", got)
	}
	if split := p.through(100); split["canary"] != 100 {
		t.Errorf("after the promotion, with perch gone, 100 requests went %v, want all to the canary", split)
	}
	load.stop()
	if n := load.sent.Load(); n < 500 {
		t.Errorf("only %d requests were sent through the proxy during the rollout", n)
	}
	if n := load.failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed while perch was killed, resumed and exited (last: %s)", n, load.sent.Load(), *load.lastErr.Load())
	}

	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: perch proxy exited %d; stderr:\n%s", code, p.stderr)
	}
	p.start()
	if got := p.weight(); got != 100 {
		t.Errorf("the restarted proxy is at %d%%, want the 100%% its state file kept", got)
	}
	if split := p.through(20); split["canary"] != 20 {
		t.Errorf("after the restart 20 requests went %v, want all to the canary", split)
	}
}

// TestPerchProxySignals: SIGHUP reloads the backends without failing a request in flight, a
// file with problems on reload is logged and the running configuration kept, and SIGTERM lets
// the requests in flight finish before exiting 0.
func TestPerchProxySignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the perch binary")
	}
	stable, oldCanary, newCanary := newSwitchable(t, "stable"), newSwitchable(t, "old canary"), newSwitchable(t, "new canary")
	oldCanary.delay.Store(int64(700 * time.Millisecond))
	p := newProxyService(t, stable.URL, oldCanary.URL)
	p.start()
	if err := p.client().SetWeight(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	inFlight := func() <-chan string {
		out := make(chan string, 1)
		go func() {
			resp, err := http.Get("http://" + p.listen + "/")
			if err != nil {
				out <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out <- fmt.Sprint(resp.StatusCode, " ", string(b))
		}()
		time.Sleep(200 * time.Millisecond) // it has reached the backend
		return out
	}

	during := inFlight()
	p.write(stable.URL, newCanary.URL)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("msg=reloaded")
	if got := <-during; got != "200 old canary" {
		t.Errorf("the request in flight during the reload: %s, want 200 old canary", got)
	}
	if split := p.through(10); split["new canary"] != 10 {
		t.Errorf("after the reload 10 requests went %v, want all to the new canary", split)
	}
	if got := p.weight(); got != 100 {
		t.Errorf("after the reload the weight is %d%%, want 100%%", got)
	}

	os.WriteFile(p.file, []byte("listen: [\n"), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("reload failed: kept the running configuration")
	if split := p.through(10); split["new canary"] != 10 {
		t.Errorf("after a bad reload 10 requests went %v, want all still to the new canary", split)
	}

	newCanary.delay.Store(int64(700 * time.Millisecond))
	draining := inFlight()
	if code := p.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0; stderr:\n%s", code, p.stderr)
	}
	if got := <-draining; got != "200 new canary" {
		t.Errorf("the request in flight at SIGTERM: %s, want 200 new canary", got)
	}
	if _, err := net.Dial("tcp", p.listen); err == nil {
		t.Error("the stopped proxy still accepts connections")
	}
	if !strings.Contains(p.stderr.String(), "msg=draining") {
		t.Errorf("no word of the drain:\n%s", p.stderr)
	}
}

func TestProxyVerbRefusesABadFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:8080\nadmin: http://0.0.0.0:9901\nstable: http://a:1\ncanary: http://b:1\nmaxConection: 5\n"), 0o644)
	code, _, stderr := runPerch(t, "", "proxy", file)
	if code != exitBadInput {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{file + ":2:8: admin: an HTTP admin API listens on loopback only",
		file + `:5:1: unknown field "maxConection" (did you mean "maxConnections"?)`, "2 problem(s) in " + file} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestProxyVerbCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:8080\nadmin: unix:///run/perch/x.sock\nstable: http://a:1\ncanary: http://b:1\n"), 0o644)
	code, stdout, stderr := runPerch(t, "", "proxy", file, "--check")
	if code != exitOK || !strings.Contains(stdout, file+": ok") {
		t.Errorf("--check: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat("/run/perch/x.sock"); err == nil {
		t.Error("--check started the proxy")
	}
}

// TestInProcessProxySaysTrafficStopsWithPerch: a proxy inside perch says, when it starts, that
// its traffic stops with perch, and names perch proxy.
func TestInProcessProxySaysTrafficStopsWithPerch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the perch binary")
	}
	w := newCrashWorld(t, false)
	cmd := w.perch()
	w.killAt(cmd, engine.EventWeightSet, 1)
	stderr := fmt.Sprint(cmd.Stderr)
	if !strings.Contains(stderr, "runs inside this perch: its traffic stops when perch stops") || !strings.Contains(stderr, "'perch proxy PROXY.yaml'") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// TestTrafficDrivesAStandaloneProxy: perch traffic is the manual lever of a standalone proxy
// too, through its HTTP admin API with the token from the environment.
func TestTrafficDrivesAStandaloneProxy(t *testing.T) {
	stable, canary := newSwitchable(t, "stable"), newSwitchable(t, "canary")
	dir := t.TempDir()
	cfg, err := proxyd.Parse(filepath.Join(dir, "proxy.yaml"), []byte(fmt.Sprintf(
		"listen: 127.0.0.1:0\nadmin: http://127.0.0.1:0\nadminToken: admin-token-0123456789\nstable: %s\ncanary: %s\n", stable.URL, canary.URL)), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	d, err := proxyd.Start(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	rollout := filepath.Join(dir, "rollout.yaml")
	os.WriteFile(rollout, []byte(fmt.Sprintf(`name: lever
traffic: {proxy: {admin: "%s", adminToken: "${PERCH_TEST_ADMIN_TOKEN}"}}
metrics: {builtin: {}}
steps:
  - {setWeight: 10}
`, d.AdminAddress())), 0o644)

	t.Setenv("PERCH_TEST_ADMIN_TOKEN", "admin-token-0123456789")
	code, stdout, stderr := runPerch(t, "", "traffic", rollout, "--set", "30")
	if code != exitOK || !strings.Contains(stdout, "lever: perch proxy at "+d.AdminAddress().String()) || !strings.Contains(stdout, "canary 30%, stable 70% (was 0%)") {
		t.Errorf("traffic --set 30: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Setenv("PERCH_TEST_ADMIN_TOKEN", "wrong-token-0123456789")
	code, _, stderr = runPerch(t, "", "traffic", rollout)
	if code != exitRuntime || !strings.Contains(stderr, "401 Unauthorized") {
		t.Errorf("with a wrong token: exit %d\n%s", code, stderr)
	}
	t.Setenv("PERCH_TEST_ADMIN_TOKEN", "")
	code, _, stderr = runPerch(t, "", "traffic", rollout)
	if code != exitRuntime || !strings.Contains(stderr, "rollout.yaml:2:") || !strings.Contains(stderr, "PERCH_TEST_ADMIN_TOKEN is not set") {
		t.Errorf("with no token in the environment: exit %d\n%s", code, stderr)
	}
}
