package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/perchhq/perch/providers/proxy"
)

// BenchmarkForward is one request through the proxy to a loopback backend, as the nginx
// comparison in cmd/proxybench/proxy.sh runs it (allocations here are the proxy's and the client's).
func BenchmarkForward(b *testing.B) {
	body := []byte("hello from the benchmark backend\n")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	b.Cleanup(backend.Close) // after the timer stops: a shutdown is not a request
	p, err := proxy.Listen("127.0.0.1:0", proxy.Config{Stable: backend.URL, Canary: backend.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	p.SetWeight(context.Background(), 50)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(p.URL())
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
