package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/providers/proxy"
)

// hanging is a backend that never answers: it holds each request until the proxy lets go of
// it (or the test ends).
func hanging(t *testing.T) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	return srv
}

// resetting is a backend that reads each request's head and resets the connection.
func resetting(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				http.ReadRequest(bufio.NewReader(c))
				c.(*net.TCPConn).SetLinger(0) // close with a RST
				c.Close()
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// raw sends a request as written on a new connection and reads the answer (nil if the proxy
// closed the connection without one).
func raw(t *testing.T, addr, request string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMalformedBodyIsTheClients400(t *testing.T) {
	f := start(t, proxy.Config{OverrideHeader: "X-Perch-Version", OverrideToken: "s3cret"})
	f.setWeight(t, 50)
	from := time.Now()
	big := strings.Repeat("x", 100_000)
	requests := map[string]string{
		"bad chunk size":             "POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
		"bad chunk after a good one": fmt.Sprintf("POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\nzz\r\n", len(big), big),
	}
	for name, req := range requests {
		for _, pinned := range []bool{false, true} {
			r := req
			if pinned { // as the reproduction sent them: pinned to the canary
				r = strings.Replace(r, "Host: x\r\n", "Host: x\r\nX-Perch-Version: canary\r\nX-Perch-Token: s3cret\r\n", 1)
			}
			for range 20 {
				if resp := raw(t, f.proxy.Addr(), r); resp == nil || resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("%s (pinned %v): got %v, want a 400", name, pinned, resp)
				}
			}
		}
	}
	for _, v := range []string{metrics.VersionCanary, metrics.VersionStable} {
		if got := sum(t, f.proxy.Source(), metrics.MeasureErrors, v, from); got != 0 {
			t.Errorf("malformed requests counted %v %s errors, want 0", got, v)
		}
		if got := counterValue(t, f.proxy, v, "502"); got != 0 {
			t.Errorf("malformed requests counted %v %s 502s, want 0", got, v)
		}
	}
}

func TestClientHangingUpMidResponseIs499(t *testing.T) {
	streamer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("perch ", 3000))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(streamer.Close)
	f := start(t, proxy.Config{Canary: streamer.URL})
	f.setWeight(t, 100)
	from := time.Now()
	c, err := net.Dial("tcp", f.proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("response %v, %v", resp, err)
	}
	io.ReadFull(resp.Body, make([]byte, 50_000))
	c.Close() // mid-response
	eventually(t, "the request recorded", func() bool {
		return sum(t, f.proxy.Source(), metrics.MeasureRequests, metrics.VersionCanary, from) == 1
	})
	if got := sum(t, f.proxy.Source(), metrics.MeasureErrors, metrics.VersionCanary, from); got != 0 {
		t.Errorf("a client hanging up mid-response counted %v errors, want 0", got)
	}
	if got := counterValue(t, f.proxy, "canary", "499"); got != 1 {
		t.Errorf(`requests_total{canary,499} = %v, want 1`, got)
	}
}

func TestResetIs502(t *testing.T) {
	f := start(t, proxy.Config{Canary: resetting(t)})
	f.setWeight(t, 100)
	from := time.Now()
	for range 3 {
		if code, _ := f.get(t, "/", nil); code != http.StatusBadGateway {
			t.Fatalf("status %d from a backend that resets, want 502", code)
		}
	}
	if got := sum(t, f.proxy.Source(), metrics.MeasureErrors, metrics.VersionCanary, from); got != 3 {
		t.Errorf("resets counted %v canary errors, want 3", got)
	}
	if got := counterValue(t, f.proxy, "canary", "502"); got != 3 {
		t.Errorf(`requests_total{canary,502} = %v, want 3`, got)
	}
}

func TestHangingBackendIs504(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := start(t, proxy.Config{Canary: hanging(t).URL, Timeouts: proxy.Timeouts{ResponseHeader: timeout}})
	f.setWeight(t, 100)
	from := time.Now()
	began := time.Now()
	if code, _ := f.get(t, "/", nil); code != http.StatusGatewayTimeout {
		t.Fatalf("status %d from a backend that hangs, want 504", code)
	}
	if took := time.Since(began); took < timeout || took > 10*timeout {
		t.Errorf("the 504 came after %s, want about %s", took, timeout)
	}
	if got := sum(t, f.proxy.Source(), metrics.MeasureErrors, metrics.VersionCanary, from); got != 1 {
		t.Errorf("a timeout counted %v canary errors, want 1", got)
	}
}

// TestAbandonedHangingRequestCountsAsTimeout: clients that give up before the proxy does must
// not hide a backend that hangs. The client's 499 is recorded when it leaves, and the
// backend's 504, an error, when its time runs out.
func TestAbandonedHangingRequestCountsAsTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	f := start(t, proxy.Config{Canary: hanging(t).URL, Timeouts: proxy.Timeouts{ResponseHeader: timeout}})
	f.setWeight(t, 100)
	from := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.proxy.URL(), nil)
	if resp, err := f.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the request to a hanging backend did not time out")
	}
	eventually(t, "the client's 499", func() bool { return counterValue(t, f.proxy, "canary", "499") == 1 })
	if got := sum(t, f.proxy.Source(), metrics.MeasureErrors, metrics.VersionCanary, from); got != 0 {
		t.Errorf("%v errors as the client left, want 0: the backend's time is not up", got)
	}
	eventually(t, "the backend's 504", func() bool { return counterValue(t, f.proxy, "canary", "504") == 1 })
	if got := sum(t, f.proxy.Source(), metrics.MeasureErrors, metrics.VersionCanary, from); got != 1 {
		t.Errorf("%v errors once the backend's time was up, want 1", got)
	}
}

func TestStalledUploadIs408(t *testing.T) {
	f := start(t, proxy.Config{Timeouts: proxy.Timeouts{Body: 200 * time.Millisecond}})
	f.setWeight(t, 100)
	from := time.Now()
	resp := raw(t, f.proxy.Addr(), "POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 70_000))
	if resp == nil || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("a stalled upload got %v, want a 408", resp)
	}
	if got := sum(t, f.proxy.Source(), metrics.MeasureErrors, metrics.VersionCanary, from); got != 0 {
		t.Errorf("a stalled upload counted %v canary errors, want 0", got)
	}
	if got := counterValue(t, f.proxy, "canary", "408"); got != 1 {
		t.Errorf(`requests_total{canary,408} = %v, want 1`, got)
	}
}

func TestBackendStallingMidBodyIs504(t *testing.T) {
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	staller := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write([]byte(strings.Repeat("x", 50_000)))
		http.NewResponseController(w).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(staller.Close)
	f := start(t, proxy.Config{Canary: staller.URL, Timeouts: proxy.Timeouts{Body: 200 * time.Millisecond}})
	f.setWeight(t, 100)
	from := time.Now()
	resp, err := f.client.Get(f.proxy.URL())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, resp.Body); err == nil || n >= 100_000 {
		t.Errorf("read %d bytes, %v: want the body cut short", n, err)
	}
	resp.Body.Close()
	eventually(t, "the 504", func() bool { return counterValue(t, f.proxy, "canary", "504") == 1 })
	if got := sum(t, f.proxy.Source(), metrics.MeasureErrors, metrics.VersionCanary, from); got != 1 {
		t.Errorf("a stalled response counted %v canary errors, want 1", got)
	}
}

func TestConnectionCapRefusesBeyondIt(t *testing.T) {
	f := start(t, proxy.Config{MaxConnections: 2})
	var held []net.Conn
	for range 2 { // two keep-alive connections, open
		c, err := net.Dial("tcp", f.proxy.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d: %v, %v", len(held)+1, resp, err)
		}
		held = append(held, c)
	}
	if resp := raw(t, f.proxy.Addr(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a third connection got %v, want a 503", resp)
	}
	held[0].Close()
	eventually(t, "a connection served once one closed", func() bool {
		resp := raw(t, f.proxy.Addr(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		return resp != nil && resp.StatusCode == http.StatusOK
	})
}

func TestIdleKeepAliveConnectionsClose(t *testing.T) {
	f := start(t, proxy.Config{Timeouts: proxy.Timeouts{Idle: 200 * time.Millisecond}})
	c, err := net.Dial("tcp", f.proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	began := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want the proxy to close it", err)
	}
	if idle := time.Since(began); idle < 150*time.Millisecond || idle > 2*time.Second {
		t.Errorf("closed after %s idle, want about 200ms", idle)
	}
}

func TestOverrideNeedsItsToken(t *testing.T) {
	seen := make(chan string, 1)
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r.Header.Get(proxy.TokenHeader):
		default:
		}
		fmt.Fprint(w, "canary")
	}))
	t.Cleanup(canary.Close)
	f := start(t, proxy.Config{Canary: canary.URL, OverrideHeader: "X-Perch-Version", OverrideToken: "s3cret", StickyHeader: "X-User"})
	pin := func(token string) http.Header {
		h := http.Header{"X-Perch-Version": {"canary"}, "X-User": {"alice"}} // alice is on stable below 73%
		if token != "" {
			h.Set(proxy.TokenHeader, token)
		}
		return h
	}
	f.setWeight(t, 1)
	from := time.Now()
	for _, tc := range []struct {
		name, token, want string
	}{{"no token", "", "stable"}, {"wrong token", "s3cre", "stable"}, {"longer token", "s3cret!", "stable"}, {"the token", "s3cret", "canary"}} {
		stable := 0
		for range 20 {
			if _, body := f.get(t, "/", pin(tc.token)); body == "stable" {
				stable++
			}
		}
		if (tc.want == "stable") != (stable == 20) {
			t.Errorf("%s: %d of 20 requests on stable, want %s", tc.name, stable, tc.want)
		}
	}
	select {
	case tok := <-seen:
		if tok != "" {
			t.Errorf("the canary received the override token %q", tok)
		}
	default:
		t.Error("no request reached the canary")
	}
	// Pinned requests are served, never analysed.
	if got := sum(t, f.proxy.Source(), metrics.MeasureRequests, metrics.VersionCanary, from); got >= 20 {
		t.Errorf("builtin source counted %v canary requests, want none of the 20 pinned ones", got)
	}
	if got := overriddenValue(t, f.proxy, "canary", "200"); got != 20 {
		t.Errorf(`perch_proxy_overridden_requests_total{canary,200} = %v, want 20`, got)
	}
	// Rolled back: nothing reaches the canary, pinned or not.
	f.setWeight(t, 0)
	for range 5 {
		if _, body := f.get(t, "/", pin("s3cret")); body != "stable" {
			t.Fatalf("at 0%% a pinned request reached %s, want stable", body)
		}
	}
}

// overriddenValue reads perch_proxy_overridden_requests_total for a version and code (0 if
// absent).
func overriddenValue(t *testing.T, c prometheus.Collector, version, code string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "perch_proxy_overridden_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "version") == version && label(m, "code") == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestStatusesSurviveConcurrentLoad(t *testing.T) {
	// Many requests at once over a few connections: every one answered and counted once.
	f := start(t, proxy.Config{})
	f.setWeight(t, 50)
	from := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				if code, _ := f.get(t, "/", nil); code != http.StatusOK {
					t.Errorf("status %d", code)
					return
				}
			}
		})
	}
	wg.Wait()
	n := sum(t, f.proxy.Source(), metrics.MeasureRequests, metrics.VersionCanary, from) +
		sum(t, f.proxy.Source(), metrics.MeasureRequests, metrics.VersionStable, from)
	if n != 800 {
		t.Errorf("counted %v requests, want 800", n)
	}
}
