package proxy_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/providers/proxy"
)

// TestServeHTTP forwards through a net/http server around Proxy.ServeHTTP, the form a program
// embedding the proxy in its own server uses: the same forwarding and accounting as Listen's.
func TestServeHTTP(t *testing.T) {
	slow := hanging(t)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "shout" {
			conn, brw, _ := http.NewResponseController(w).Hijack()
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
			return
		}
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: 1\n\n")
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
			return
		}
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "canary %d %s xff=%s secret=%q", n, hex.EncodeToString(h.Sum(nil)), r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Secret"))
	}))
	t.Cleanup(echo.Close)
	serve := func(t *testing.T, canary string) (*proxy.Proxy, *httptest.Server) {
		p, err := proxy.New(proxy.Config{Stable: backend(t, "stable").URL, Canary: canary,
			OverrideHeader: "X-Perch-Version", OverrideToken: "s3cret", Timeouts: proxy.Timeouts{ResponseHeader: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(p)
		t.Cleanup(func() { srv.Close(); p.Close() })
		p.SetWeight(context.Background(), 100)
		return p, srv
	}

	t.Run("body and headers", func(t *testing.T) {
		_, srv := serve(t, echo.URL)
		body := strings.Repeat("perch ", 100_000)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader(body))) // chunked
		req.Header.Set("Connection", "X-Secret")
		req.Header.Set("X-Secret", "hop")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256([]byte(body))
		if want := fmt.Sprintf(`canary %d %s xff=127.0.0.1 secret=""`, len(body), hex.EncodeToString(sum[:])); string(got) != want {
			t.Errorf("backend saw %q, want %q", got, want)
		}
	})
	t.Run("stream", func(t *testing.T) {
		_, srv := serve(t, echo.URL)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if line, err := bufio.NewReader(resp.Body).ReadString('\n'); line != "data: 1\n" {
			t.Errorf("first event %q, %v", line, err)
		}
	})
	t.Run("upgrade", func(t *testing.T) {
		p, srv := serve(t, echo.URL)
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n")
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("%v, %v: want a 101", resp, err)
		}
		fmt.Fprint(conn, "hello\n")
		if got, _ := r.ReadString('\n'); got != "HELLO\n" {
			t.Errorf("got %q through the switched connection", got)
		}
		eventually(t, "the 101 counted", func() bool { return counterValue(t, p, "canary", "101") == 1 })
	})
	t.Run("down is 502", func(t *testing.T) {
		p, srv := serve(t, resetting(t))
		from := time.Now()
		resp, err := http.Get(srv.URL)
		if err != nil || resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("%v, %v: want a 502", resp, err)
		}
		resp.Body.Close()
		if got := sum(t, p.Source(), metrics.MeasureErrors, metrics.VersionCanary, from); got != 1 {
			t.Errorf("%v canary errors, want 1", got)
		}
	})
	t.Run("client gone is 499", func(t *testing.T) {
		p, srv := serve(t, slow.URL)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("no timeout")
		}
		eventually(t, "the 499", func() bool { return counterValue(t, p, "canary", "499") == 1 })
		eventually(t, "the backend's 504 after its 2s", func() bool { return counterValue(t, p, "canary", "504") == 1 })
	})
	t.Run("override", func(t *testing.T) {
		p, srv := serve(t, echo.URL)
		p.SetWeight(context.Background(), 0)
		for _, tc := range []struct{ token, want string }{{"", "stable"}, {"s3cret", "stable"}} {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			req.Header.Set("X-Perch-Version", "canary")
			req.Header.Set(proxy.TokenHeader, tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != tc.want {
				t.Errorf("at 0%% with token %q: reached %s, want %s", tc.token, got, tc.want)
			}
		}
	})
}
