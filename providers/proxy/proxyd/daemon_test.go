package proxyd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/providers/proxy"
	"github.com/perchhq/perch/providers/proxy/admin"
)

// backend answers with its name, after delay if set.
func backend(t *testing.T, name string, delay time.Duration) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if r.Header.Get(OverrideTokenHeader) != "" {
			http.Error(w, "the override token reached the backend", http.StatusTeapot)
			return
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// syncBuffer is a log destination tests read while the daemon writes.
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

// world is a proxy file's directory with a stable and a canary backend.
type world struct {
	t              *testing.T
	dir            string
	stable, canary string
	log            syncBuffer
}

func newWorld(t *testing.T) *world {
	t.Helper()
	// Unix socket paths are short; t.TempDir's may not be.
	dir, err := os.MkdirTemp("", "proxyd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &world{t: t, dir: dir, stable: backend(t, "stable", 0).URL, canary: backend(t, "canary", 0).URL}
}

func (w *world) socket() string { return filepath.Join(w.dir, "run", "admin.sock") }

// file is a proxy file over the world's backends; extra lines are appended.
func (w *world) file(extra ...string) string {
	return fmt.Sprintf("listen: 127.0.0.1:0\nadmin: unix://%s\nstable: %s\ncanary: %s\nstate: state.json\n%s",
		w.socket(), w.stable, w.canary, strings.Join(extra, "\n"))
}

func (w *world) config(text string) *Config {
	w.t.Helper()
	c, err := Parse(filepath.Join(w.dir, "proxy.yaml"), []byte(text), getenv)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// start runs a daemon from text until the test ends.
func (w *world) start(text string) *Daemon {
	w.t.Helper()
	d, err := Start(w.config(text), slog.New(slog.NewTextHandler(&w.log, nil)))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { stop(d) })
	return d
}

func stop(d *Daemon) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.Shutdown(ctx)
}

func (w *world) client(d *Daemon, token string) *admin.Client {
	w.t.Helper()
	c, err := admin.New(admin.Config{Address: d.AdminAddress().String(), Token: token})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.Close() })
	return c
}

// get sends a request through the proxy and returns the status and body.
func get(t *testing.T, d *Daemon, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.ProxyAddr()+"/", nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWeightAndSegmentsSurviveARestart(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file())
	ctx := context.Background()
	c := w.client(d, "")
	if n, err := c.Weight(ctx); err != nil || n != 0 {
		t.Fatalf("new proxy: weight %d, %v; want 0", n, err)
	}
	if err := c.SetWeight(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, d, nil); code != 200 || body != "canary" {
		t.Errorf("at 100%%: %d %q, want the canary", code, body)
	}
	segs := []admin.Segment{{Name: "beta", Match: []byte(`{"header": {"name": "X-Beta", "value": "1"}}`)}}
	if _, err := c.SetSegments(ctx, segs); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWeight(ctx, 40); err != nil {
		t.Fatal(err)
	}
	stop(d)

	fi, err := os.Stat(filepath.Join(w.dir, "state.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, mode %v; want 0600", err, fi.Mode())
	}
	again := w.start(w.file())
	c = w.client(again, "")
	if n, err := c.Weight(ctx); err != nil || n != 40 {
		t.Errorf("restarted: weight %d, %v; want 40 from the state file", n, err)
	}
	got, err := c.Segments(ctx)
	if err != nil || len(got) != 1 || got[0].Name != "beta" || string(got[0].Match) != `{"header":{"name":"X-Beta","value":"1"}}` {
		t.Errorf("restarted: segments %s, %v", got, err)
	}
	if !strings.Contains(w.log.String(), "state restored") {
		t.Errorf("the restart did not say it restored the state:\n%s", w.log.String())
	}
}

func TestWithoutStateStartsAtZeroAndSaysSo(t *testing.T) {
	w := newWorld(t)
	d := w.start(strings.Replace(w.file(), "state: state.json\n", "", 1))
	if n, _ := w.client(d, "").Weight(context.Background()); n != 0 {
		t.Errorf("weight %d, want 0", n)
	}
	if !strings.Contains(w.log.String(), "no state file: the canary weight starts at 0%") {
		t.Errorf("no word of the missing state file:\n%s", w.log.String())
	}
}

func TestDamagedStateRefusesToStart(t *testing.T) {
	w := newWorld(t)
	os.WriteFile(filepath.Join(w.dir, "state.json"), []byte(`{"canaryPercent": 4`), 0o600)
	_, err := Start(w.config(w.file()), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Errorf("started on a damaged state file: %v", err)
	}
}

func TestAdminSocketPermissions(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file())
	for path, want := range map[string]os.FileMode{filepath.Dir(w.socket()): 0o700 | os.ModeDir, w.socket(): 0o600 | os.ModeSocket} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode(), err, want)
		}
	}
	// A second proxy on the same socket is refused while the first answers.
	other := strings.Replace(w.file(), "state: state.json", "state: other.json", 1)
	if _, err := Start(w.config(other), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "another process answers") {
		t.Errorf("a second proxy on a live socket: %v", err)
	}
	stop(d)

	// A directory others may write to is refused: they could put their own socket there.
	os.Chmod(filepath.Dir(w.socket()), 0o770)
	if _, err := Start(w.config(w.file()), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("a group-writable socket directory: %v", err)
	}
	os.Chmod(filepath.Dir(w.socket()), 0o700)
	// Something that is not a socket is never removed to make room.
	os.WriteFile(w.socket(), []byte("precious"), 0o600)
	if _, err := Start(w.config(w.file()), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("a file in the socket's place: %v", err)
	}
}

func TestHTTPAdminToken(t *testing.T) {
	w := newWorld(t)
	text := strings.Replace(w.file(), "admin: unix://"+w.socket(), `admin: http://127.0.0.1:0`+"\nadminToken: \"${PERCH_ADMIN_TOKEN}\"", 1)
	d := w.start(text)
	url := "http://" + d.AdminAddress().HostPort
	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"no token", admin.PathWeight, "", http.StatusUnauthorized},
		{"wrong token", admin.PathWeight, "Bearer admin-token-0123456780", http.StatusUnauthorized},
		{"not bearer", admin.PathWeight, "Basic admin-token-0123456789", http.StatusUnauthorized},
		{"right token", admin.PathWeight, "Bearer admin-token-0123456789", http.StatusOK},
		{"health needs none", admin.PathHealth, "", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, url+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	err := w.client(d, "wrong-token-0123456789").SetWeight(context.Background(), 10)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "adminToken") {
		t.Errorf("client with a wrong token: %v", err)
	}
	if err := w.client(d, "admin-token-0123456789").SetWeight(context.Background(), 10); err != nil {
		t.Errorf("client with the token: %v", err)
	}
}

func TestAdminAPIRefusesBadRequests(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file())
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", w.socket())
	}}}
	big := `{"segments": [` + strings.Repeat(`{"name": "x", "match": {"a": 1}},`, 3000) + `{}]}`
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
		msg                      string
	}{
		{"weight out of range", "PUT", admin.PathWeight, `{"canaryPercent": 101}`, 400, "outside 0..100"},
		{"unknown field", "PUT", admin.PathWeight, `{"canaryPercent": 1, "weight": 2}`, 400, "unknown field"},
		{"not JSON", "PUT", admin.PathWeight, `canary please`, 400, "bad JSON"},
		{"two values", "PUT", admin.PathWeight, `{"canaryPercent": 1} {}`, 400, "more than one"},
		{"too big", "PUT", admin.PathSegments, big, 413, "over"},
		{"segment twice", "PUT", admin.PathSegments, `{"segments": [{"name": "a", "match": {"h": 1}}, {"name": "a", "match": {"h": 2}}]}`, 400, "used twice"},
		{"segment without match", "PUT", admin.PathSegments, `{"segments": [{"name": "a"}]}`, 400, "want a JSON object"},
		{"wrong method", "POST", admin.PathWeight, `{}`, 405, ""},
		{"unknown path", "GET", "/v2/weight", "", 404, "the admin API has"},
		{"samples without query", "GET", admin.PathSamples + "?start=0&end=10&step=1s", "", 400, "query: missing"},
		{"samples bad step", "GET", admin.PathSamples + "?query=requests%7Bversion%3D%22canary%22%7D&start=0&end=10&step=soon", "", 400, "step"},
		{"samples not builtin", "GET", admin.PathSamples + "?query=up&start=0&end=10&step=1s", "", 400, "not a builtin query"},
		{"histogram without query", "GET", admin.PathHistogram + "?start=0&end=10&step=1s", "", 400, "query: missing"},
		{"histogram of samples", "GET", admin.PathHistogram + "?query=requests%7Bversion%3D%22canary%22%7D&start=0&end=10&step=1s", "", 400, "is not a histogram"},
		{"histogram by POST", "POST", admin.PathHistogram, "", 405, "use GET"},
	} {
		req, _ := http.NewRequest(tc.method, "http://proxy"+tc.path, strings.NewReader(tc.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.msg) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, resp.StatusCode, b, tc.want, tc.msg)
		}
	}
	if n, _ := w.client(d, "").Weight(context.Background()); n != 0 {
		t.Errorf("bad requests moved the weight to %d", n)
	}
}

// TestSamplesThroughTheAdminAPI: the builtin source answers over the API as it does in
// process, counting what the proxy forwarded.
func TestSamplesThroughTheAdminAPI(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file("observations: {resolution: 100ms}"))
	ctx := context.Background()
	c := w.client(d, "")
	c.SetWeight(ctx, 100)
	start := time.Now()
	for range 7 {
		get(t, d, nil)
	}
	time.Sleep(200 * time.Millisecond)
	end := time.Now()
	samples, err := c.Samples(ctx, metrics.BuiltinQuery(metrics.MeasureRequests, metrics.VersionCanary), start.Add(-time.Second), end, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, s := range samples {
		total += s.Value
	}
	if total != 7 {
		t.Errorf("canary requests over the window: %v in %d samples, want 7", total, len(samples))
	}
	if _, err := c.Samples(ctx, metrics.BuiltinQuery(metrics.MeasureRequests, metrics.VersionCanary), start, end, time.Millisecond); err == nil ||
		!strings.Contains(err.Error(), "finer than the builtin source's resolution") {
		t.Errorf("a step finer than the resolution: %v", err)
	}
}

// TestHistogramThroughTheAdminAPI: the latency_histogram measure answers over the API as in
// process, its counts at the fixed bounds; the answer stays small (at most 350 bytes a step).
func TestHistogramThroughTheAdminAPI(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file("observations: {resolution: 100ms}"))
	ctx := context.Background()
	c := w.client(d, "")
	c.SetWeight(ctx, 100)
	start := time.Now()
	for range 7 {
		get(t, d, nil)
	}
	time.Sleep(200 * time.Millisecond)
	end := time.Now()
	q := metrics.BuiltinQuery(metrics.MeasureLatencyHistogram, metrics.VersionCanary)
	h, err := c.Histogram(ctx, q, start.Add(-time.Second), end, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, p := range h.Points {
		total += p.Counts[len(p.Counts)-1]
	}
	if !slices.Equal(h.Bounds, proxy.HistogramBounds()) || total != 7 {
		t.Errorf("canary requests over the window: %v in %d points at %v, want 7 at the measure's bounds", total, len(h.Points), h.Bounds)
	}
	// What a look at a 15-minute window in 1 s steps costs on the wire.
	resp, err := w.adminGet(admin.PathHistogram + "?query=" + url.QueryEscape(q.Expr) + fmt.Sprintf("&start=%d&end=%d&step=1s", end.Unix()-899, end.Unix()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a 900-step histogram answer: %d bytes", len(resp))
	if len(resp) > 900*350 {
		t.Errorf("a 900-step histogram answer is %d bytes, want at most 350 a step", len(resp))
	}
	if _, err := c.Histogram(ctx, metrics.BuiltinQuery(metrics.MeasureLatencyP99, metrics.VersionCanary), start, end, time.Second); err == nil ||
		!strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), "is not a histogram") {
		t.Errorf("a histogram of a quantile: %v", err)
	}
}

// adminGet asks the admin socket for path and returns the answer's body.
func (w *world) adminGet(path string) ([]byte, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", w.socket())
	}}}
	resp, err := hc.Get("http://proxy" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, err
}

func TestOverrideNeedsTheToken(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file(`override: {header: X-Perch-Version, token: "${PERCH_OVERRIDE_TOKEN}"}`, `sticky: {header: X-User}`))
	// At 1% alice is on stable unless a request of hers is pinned.
	if err := w.client(d, "").SetWeight(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   string
	}{
		{"no token", map[string]string{"X-Perch-Version": "canary"}, "stable"},
		{"wrong token", map[string]string{"X-Perch-Version": "canary", OverrideTokenHeader: "override-0123456780"}, "stable"},
		{"token", map[string]string{"X-Perch-Version": "canary", OverrideTokenHeader: "override-0123456789"}, "canary"},
		{"token alone", map[string]string{OverrideTokenHeader: "override-0123456789"}, "stable"},
	} {
		tc.header["X-User"] = "alice"
		// The backend answers 418 if the token reached it.
		if code, body := get(t, d, tc.header); code != 200 || body != tc.want {
			t.Errorf("%s: %d %q, want 200 %q", tc.name, code, body, tc.want)
		}
	}
	// Rolled back: nothing reaches the canary, pinned or not.
	if err := w.client(d, "").SetWeight(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, d, map[string]string{"X-Perch-Version": "canary", OverrideTokenHeader: "override-0123456789"}); code != 200 || body != "stable" {
		t.Errorf("pinned at 0%%: %d %q, want 200 \"stable\"", code, body)
	}
}

func TestNoOverrideWithoutOverrideBlock(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file())
	if _, body := get(t, d, map[string]string{"X-Perch-Version": "canary", OverrideTokenHeader: "anything-0123456789"}); body != "stable" {
		t.Errorf("with no override configured a request reached %q", body)
	}
}

// TestReloadSwapsBackendsWithoutFailingRequests: a request in flight finishes on the backend it
// started on; new requests go to the new canary; the weight and the observations carry on.
func TestReloadSwapsBackendsWithoutFailingRequests(t *testing.T) {
	w := newWorld(t)
	w.canary = backend(t, "old canary", 500*time.Millisecond).URL
	d := w.start(w.file("observations: {resolution: 100ms}"))
	ctx := context.Background()
	c := w.client(d, "")
	c.SetWeight(ctx, 100)
	start := time.Now()
	type result struct {
		code int
		body string
	}
	inFlight := make(chan result)
	go func() {
		code, body := get(t, d, nil)
		inFlight <- result{code, body}
	}()
	time.Sleep(100 * time.Millisecond)
	w.canary = backend(t, "new canary", 0).URL
	if err := d.Reload(w.config(w.file("observations: {resolution: 100ms}", "timeouts: {idle: 5s}"))); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, d, nil); code != 200 || body != "new canary" {
		t.Errorf("after the reload: %d %q, want the new canary", code, body)
	}
	if r := <-inFlight; r.code != 200 || r.body != "old canary" {
		t.Errorf("the request in flight during the reload: %d %q, want 200 from the old canary", r.code, r.body)
	}
	if n, _ := c.Weight(ctx); n != 100 {
		t.Errorf("weight after the reload %d, want 100", n)
	}
	time.Sleep(200 * time.Millisecond)
	samples, err := c.Samples(ctx, metrics.BuiltinQuery(metrics.MeasureRequests, metrics.VersionCanary), start.Add(-time.Second), time.Now(), 100*time.Millisecond)
	var total float64
	for _, s := range samples {
		total += s.Value
	}
	if err != nil || total != 2 {
		t.Errorf("observations across the reload: %v requests, %v; want both", total, err)
	}
}

func TestReloadKeepsRestartOnlySettings(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file())
	addr := d.ProxyAddr()
	if err := d.Reload(w.config(strings.Replace(w.file(), "listen: 127.0.0.1:0", "listen: 127.0.0.1:1", 1))); err != nil {
		t.Fatal(err)
	}
	if d.ProxyAddr() != addr || !strings.Contains(w.log.String(), "changes only on a restart") {
		t.Errorf("listen changed by a reload (%s → %s), or no word of it:\n%s", addr, d.ProxyAddr(), w.log.String())
	}
	if code, _ := get(t, d, nil); code != 200 {
		t.Errorf("after the reload: %d", code)
	}
}

// TestIdleConnectionsClose: a keep-alive connection waiting longer than timeouts.idle for its
// next request is closed, and a reload changes the timeout of connections already open.
func TestIdleConnectionsClose(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file("timeouts: {idle: 10m}"))
	conn, br := rawRequest(t, d)
	if err := d.Reload(w.config(w.file("timeouts: {idle: 200ms}"))); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	began := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF (closed by the proxy)", err)
	}
	if waited := time.Since(began); waited > 2*time.Second {
		t.Errorf("closed after %s, want about 200ms", waited)
	}
}

// rawRequest sends one keep-alive request on a new connection and reads its answer.
func rawRequest(t *testing.T, d *Daemon) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", d.ProxyAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return conn, br
}

func TestMaxConnections(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file("maxConnections: 1"))
	first, _ := rawRequest(t, d)
	answered := make(chan int, 1)
	go func() {
		code, _ := get(t, d, nil)
		answered <- code
	}()
	select {
	case code := <-answered:
		t.Fatalf("a second connection was served (%d) while the one allowed was open", code)
	case <-time.After(300 * time.Millisecond):
	}
	first.Close()
	select {
	case code := <-answered:
		if code != 200 {
			t.Errorf("once the first closed: %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was never served")
	}
}

// TestStalledBodyIsGivenUp: a client that stops sending its body mid-way does not hold the
// request for longer than timeouts.body.
func TestStalledBodyIsGivenUp(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file("timeouts: {body: 200ms}"))
	conn, err := net.Dial("tcp", d.ProxyAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	began := time.Now()
	io.Copy(io.Discard, conn) // until the proxy answers and closes, or closes
	if waited := time.Since(began); waited > 2*time.Second {
		t.Errorf("a stalled body held its request %s, want about 200ms", waited)
	}
}

func TestBackendThatNeverAnswersTimesOut(t *testing.T) {
	w := newWorld(t)
	w.canary = backend(t, "hangs", time.Hour).URL
	d := w.start(w.file("timeouts: {responseHeader: 200ms}"))
	w.client(d, "").SetWeight(context.Background(), 100)
	began := time.Now()
	code, _ := get(t, d, nil)
	if code < 500 || time.Since(began) > 2*time.Second {
		t.Errorf("a hanging backend: %d after %s, want a 5xx after about 200ms", code, time.Since(began))
	}
}

// TestShutdownDrains: requests in flight finish; new connections are refused.
func TestShutdownDrains(t *testing.T) {
	w := newWorld(t)
	w.stable = backend(t, "slow stable", 500*time.Millisecond).URL
	d, err := Start(w.config(w.file()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := d.ProxyAddr()
	done := make(chan string)
	go func() {
		code, body := get(t, d, nil)
		done <- fmt.Sprint(code, " ", body)
	}()
	time.Sleep(100 * time.Millisecond)
	stop(d)
	if got := <-done; got != "200 slow stable" {
		t.Errorf("the request in flight at shutdown: %s, want 200 slow stable", got)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("a new connection was accepted after shutdown")
	}
	if _, err := os.Stat(w.socket()); err == nil {
		t.Error("the admin socket is still there after shutdown")
	}
}

func TestMetrics(t *testing.T) {
	w := newWorld(t)
	d := w.start(w.file("metrics: 127.0.0.1:0"))
	w.client(d, "").SetWeight(context.Background(), 30)
	get(t, d, nil)
	resp, err := http.Get("http://" + d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"perch_proxy_canary_weight_percent 30", "perch_proxy_requests_total{", "perch_proxy_open_connections", "go_goroutines"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
