package proxy_test

import (
	"bufio"
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

	"github.com/perchhq/perch/providers/proxy"
)

func TestBodiesAndHopByHopHeaders(t *testing.T) {
	f := start(t, proxy.Config{})
	f.setWeight(t, 100)
	body := strings.Repeat("perch ", 200_000) // 1.2 MB
	sum := sha256.Sum256([]byte(body))
	resp, err := f.client.Post(f.proxy.URL()+"/hash", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("canary %d %s", len(body), hex.EncodeToString(sum[:])); string(got) != want {
		t.Errorf("backend saw %q, want %q", got, want)
	}
	// A header the client names in Connection is hop-by-hop: it must not reach the backend.
	_, seen := f.get(t, "/headers", http.Header{"Connection": {"X-Secret"}, "X-Secret": {"hop"}})
	if !strings.Contains(seen, `secret=""`) {
		t.Errorf("backend saw %s; the hop-by-hop X-Secret must be dropped", seen)
	}
	if !strings.Contains(seen, `host="`+f.proxy.Addr()+`"`) {
		t.Errorf("backend saw %s; want the Host the client asked for", seen)
	}
}

func TestStreamingIsNotBuffered(t *testing.T) {
	next := make(chan struct{})
	streamer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			http.NewResponseController(w).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(streamer.Close)
	f := start(t, proxy.Config{Canary: streamer.URL})
	f.setWeight(t, 100)
	resp, err := f.client.Get(f.proxy.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	for i := range 3 {
		// Each event arrives while the backend is still waiting to send the next one.
		line, err := lines.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: got %q, %v", i, line, err)
		}
		lines.ReadString('\n')
		next <- struct{}{}
	}
}

func TestUpgradedConnectionsPassThrough(t *testing.T) {
	// A backend speaking a tiny upgraded protocol: after 101 it echoes each line in capitals.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "shout" {
			http.Error(w, "want Upgrade: shout", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
		}
	}))
	t.Cleanup(echo.Close)
	f := start(t, proxy.Config{Canary: echo.URL})
	f.setWeight(t, 100)
	conn, err := net.Dial("tcp", f.proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n")
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	for _, word := range []string{"hello\n", "perch\n"} {
		fmt.Fprint(conn, word)
		got, err := r.ReadString('\n')
		if err != nil || got != strings.ToUpper(word) {
			t.Fatalf("sent %q, got %q, %v", word, got, err)
		}
	}
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(t, f.proxy, "canary", "101") != 1 {
		if time.Now().After(deadline) {
			t.Fatal(`perch_proxy_requests_total{version="canary",code="101"} never reached 1`)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLargeBodiesStream sends bodies bigger than what the proxy buffers, of known and unknown
// length, both ways.
func TestLargeBodiesStream(t *testing.T) {
	f := start(t, proxy.Config{})
	f.setWeight(t, 100)
	body := strings.Repeat("0123456789abcdef", 400_000) // 6.4 MB
	sum := sha256.Sum256([]byte(body))
	want := fmt.Sprintf("canary %d %s", len(body), hex.EncodeToString(sum[:]))
	for _, chunked := range []bool{false, true} {
		var r io.Reader = strings.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // no length known: sent chunked
		}
		resp, err := f.client.Post(f.proxy.URL()+"/hash", "text/plain", r)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Errorf("chunked %v: backend saw %q, want %q", chunked, got, want)
		}
	}
}

// TestLargeResponsesArriveWhole: responses past the proxy's small-body buffer, with a length and
// without, arrive byte for byte.
func TestLargeResponsesArriveWhole(t *testing.T) {
	body := strings.Repeat("perch! ", 150_000) // 1 MB
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("length") == "yes" {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(big.Close)
	f := start(t, proxy.Config{Canary: big.URL})
	f.setWeight(t, 100)
	for _, length := range []string{"yes", "no"} {
		code, got := f.get(t, "/?length="+length, nil)
		if code != http.StatusOK || got != body {
			t.Errorf("length %s: status %d, %d bytes, want 200 and the %d bytes sent", length, code, len(got), len(body))
		}
	}
}
