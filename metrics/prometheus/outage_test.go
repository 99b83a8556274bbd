package prometheus_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	client "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
	"github.com/perchhq/perch/metrics/prometheus"
)

// healthyService counts requests of both versions alike, one error in a hundred.
func healthyService(t *testing.T) string {
	t.Helper()
	reg := client.NewRegistry()
	requests := client.NewCounterVec(client.CounterOpts{Name: "http_requests_total", Help: "Requests served."}, []string{"version", "code"})
	reg.MustRegister(requests)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, v := range []string{"stable", "canary"} {
				code := "200"
				if n%100 == 0 {
					code = "500"
				}
				requests.WithLabelValues(v, code).Inc()
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait(); srv.Close() })
	return strings.TrimPrefix(srv.URL, "http://")
}

// prometheusProcess is a Prometheus that can be stopped and started again on the same address
// and data, as an operator restarting it would.
type prometheusProcess struct {
	t                   *testing.T
	bin, listen, config string
	data                string
	cmd                 *exec.Cmd
}

func (p *prometheusProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "--config.file="+p.config, "--storage.tsdb.path="+p.data, "--web.listen-address="+p.listen, "--log.level=warn")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	waitFor(p.t, 15*time.Second, "prometheus to be ready", func() bool {
		resp, err := http.Get("http://" + p.listen + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (p *prometheusProcess) stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// TestOutageOfARealPrometheus stops the Prometheus a rollout is judged from in the middle of a
// step: the rollout holds at once, naming the outage, and never advances while it lasts; when
// Prometheus is back it continues by itself and is promoted.
func TestOutageOfARealPrometheus(t *testing.T) {
	bin := prometheusBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	p := &prometheusProcess{t: t, bin: bin, listen: listen, config: filepath.Join(dir, "prometheus.yml"), data: filepath.Join(dir, "data")}
	os.WriteFile(p.config, fmt.Appendf(nil, "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: svc\n    static_configs: [{targets: ['%s']}]\n", healthyService(t)), 0o600)
	p.start()
	t.Cleanup(p.stop)
	waitFor(t, 30*time.Second, "the first scrape", func() bool {
		src, _ := prometheus.New("http://"+listen, nil)
		_, err := src.Samples(context.Background(), metrics.Query{Expr: `sum(rate(http_requests_total[5s]))`}, time.Now().Add(-2*time.Second), time.Now(), time.Second)
		return err == nil
	})

	rollout, err := spec.Parse("outage.yaml", fmt.Appendf(nil, `name: outage
traffic: {istio: {virtualService: web, stable: {host: web, subset: stable}, canary: {host: web, subset: canary}}}
metrics: {prometheus: {address: "http://%s"}}
analysis: {interval: 2s, stabilization: 0s, judge: threshold, maxOutage: 5m}
checks:
  - name: errors
    critical: true
    direction: lower_is_better
    maxIncrease: 0.05
    events: {canary: 'sum(increase(http_requests_total{code="500",version="canary"}[2s]))', baseline: 'sum(increase(http_requests_total{code="500",version="stable"}[2s]))'}
    total: {canary: 'sum(increase(http_requests_total{version="canary"}[2s]))', baseline: 'sum(increase(http_requests_total{version="stable"}[2s]))'}
steps:
  - {setWeight: 10, analyze: 12s}
  - {setWeight: 50, analyze: 6s}
`, listen))
	if err != nil {
		t.Fatal(err)
	}
	src, err := prometheus.New("http://"+listen, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Spec: rollout, Router: &enginetest.Router{}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outcome := make(chan engine.Outcome, 1)
	go func() {
		out, _ := eng.Run(ctx)
		outcome <- out
	}()
	waitFor(t, 30*time.Second, "two looks at step 1", func() bool { st := eng.Snapshot(); return st.Step == 0 && st.Looks >= 2 })

	p.stop()
	var held engine.State
	waitFor(t, 20*time.Second, "an outage hold", func() bool { held = eng.Snapshot(); return held.Phase == engine.PhaseHolding })
	if held.Hold != engine.HoldOutage || !strings.Contains(held.HoldReason, "connection refused") || held.Step != 0 {
		t.Fatalf("hold %s at step %d: %q; want an outage hold at step 1 naming the refused connection", held.Hold, held.Step+1, held.HoldReason)
	}
	time.Sleep(15 * time.Second) // longer than the step's analysis time: it must not advance
	if st := eng.Snapshot(); st.Phase != engine.PhaseHolding || st.Step != 0 {
		t.Fatalf("during the outage the rollout went %s at step %d", st.Phase, st.Step+1)
	}

	p.start()
	select {
	case out := <-outcome:
		if out != engine.OutcomePromoted {
			t.Fatalf("after Prometheus came back the rollout ended %s, want promoted", out)
		}
	case <-ctx.Done():
		t.Fatalf("the rollout did not finish after Prometheus came back: %s at step %d", eng.Snapshot().Phase, eng.Snapshot().Step+1)
	}
	var recovered bool
	for _, ev := range eng.Snapshot().Log {
		recovered = recovered || ev.Type == engine.EventResumed && ev.Actor == nil && strings.Contains(ev.Reason, "recovered")
	}
	if !recovered {
		t.Error("no event says the metrics source recovered")
	}
}
