// Package proxyd runs perch's proxy as a long-lived service (`perch proxy PROXY.yaml`): the
// proxy on its listen address; its admin API (weight, segments, observations) on a Unix socket
// or on loopback HTTP with a token; the weight and segments kept in a state file across
// restarts; Prometheus metrics; reloads of backends and timeouts that drop no connection; and a
// drain of the requests in flight when it stops. Rollouts drive it through the admin API
// (package admin), so traffic keeps flowing whatever happens to the perch that runs them.
package proxyd

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

	"github.com/perchhq/perch/providers/proxy"
	"github.com/perchhq/perch/providers/proxy/admin"
)

// Daemon is a running standalone proxy. Make one with Start; stop it with Shutdown.
type Daemon struct {
	log   *slog.Logger
	uid   int // the proxy's own user, who may use the admin socket (with root)
	front front
	conns *conns

	data               *fasthttp.Server
	admin, metrics     *http.Server
	adminLn, metricsLn net.Listener
	adminAddr          admin.Address // with the port it got
	failed             chan error
	served             sync.WaitGroup

	adminToken atomic.Pointer[[32]byte] // SHA-256 of the token; nil: none

	mu       sync.Mutex // orders weight and segment changes and reloads
	cfg      *Config    // the file in force (restart-only settings as at start)
	segments []admin.Segment
}

// How long a client may take to send a request's headers (slow clients must not hold
// connections), and the admin API's own server bounds.
const (
	// maxIdle is the data server's own idle timeout, a backstop: conns enforces the file's.
	maxIdle                = time.Hour
	adminReadHeaderTimeout = 5 * time.Second
	adminReadTimeout       = 10 * time.Second
	adminIdleTimeout       = time.Minute
	adminShutdownGrace     = 2 * time.Second
)

// Start loads the state, starts the proxy at the weight and segments it keeps, and serves the
// proxy, the admin API and (if set) the metrics. Without a state file the proxy starts at 0%
// and says so.
func Start(cfg *Config, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{log: log, uid: os.Getuid(), cfg: cfg, failed: make(chan error, 3)}
	st := state{Segments: []admin.Segment{}}
	switch loaded, found, err := loadFileState(cfg.State); {
	case err != nil:
		return nil, err
	case cfg.State == "":
		log.Warn("no state file: the canary weight starts at 0% and a restart forgets it; set state: in the proxy file to keep it")
	case !found:
		// Written now, so that a state path the proxy cannot write fails the start, not the
		// first weight change of a rollout.
		if err := saveState(cfg.State, st); err != nil {
			return nil, err
		}
		log.Info("new state file: the canary weight starts at 0%", "state", cfg.State)
	default:
		st = loaded
		log.Info("state restored", "state", cfg.State, "canaryPercent", st.CanaryPercent, "segments", len(st.Segments))
	}
	d.segments = st.Segments
	p, err := proxy.New(cfg.proxyConfig())
	if err != nil {
		return nil, err
	}
	if err := p.SetWeight(context.Background(), st.CanaryPercent); err != nil {
		return nil, err
	}
	if err := routeSegments(p, st.Segments); err != nil {
		return nil, err
	}
	d.front.proxy.Store(p)
	d.setAdminToken(cfg.AdminToken)
	if err := d.listen(cfg); err != nil {
		return nil, err
	}
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	// The server's own idle timeout is a backstop: conns enforces the file's, so that a reload
	// can change it. conns also caps the connections, making the next one wait; the server's
	// own cap (which answers 503 at once) is set above it, since conns frees a slot when a
	// connection closes, a moment before the server frees its worker.
	d.data = proxy.NewServer(d.front.serve, proxy.Timeouts{Idle: maxIdle, Body: cfg.Timeouts.Body}, 2*cfg.MaxConnections, errorLog)
	d.data.ConnState = d.conns.connState
	d.admin = &http.Server{Handler: d.adminHandler(), ReadHeaderTimeout: adminReadHeaderTimeout, ReadTimeout: adminReadTimeout,
		WriteTimeout: samplesTimeout + 5*time.Second, IdleTimeout: adminIdleTimeout, MaxHeaderBytes: 16 << 10,
		ConnContext: withPeer, ErrorLog: errorLog}
	d.served.Go(func() {
		if err := d.data.Serve(d.conns); err != nil && !errors.Is(err, net.ErrClosed) {
			d.failed <- fmt.Errorf("proxy: %w", err)
		}
	})
	d.serve("admin API", d.admin, d.adminLn)
	if d.metricsLn != nil {
		d.metrics = &http.Server{Handler: d.metricsHandler(), ReadHeaderTimeout: adminReadHeaderTimeout, ErrorLog: errorLog}
		d.serve("metrics", d.metrics, d.metricsLn)
	}
	attrs := []any{"listen", d.ProxyAddr(), "stable", cfg.Stable, "canary", cfg.Canary, "canaryPercent", st.CanaryPercent,
		"admin", d.AdminAddress().String(), "maxConnections", cfg.MaxConnections, "override", cfg.Override != nil}
	if d.metricsLn != nil {
		attrs = append(attrs, "metrics", "http://"+d.metricsLn.Addr().String()+"/metrics")
	}
	log.Info("perch proxy started", attrs...)
	return d, nil
}

// loadFileState reads the state file, if there is one to read.
func loadFileState(path string) (state, bool, error) {
	if path == "" {
		return state{}, false, nil
	}
	return loadState(path)
}

// listen opens the proxy's, the admin API's and the metrics' listeners, or none.
func (d *Daemon) listen(cfg *Config) error {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	d.conns = newConns(ln, cfg.MaxConnections, cfg.Timeouts.Idle)
	if d.adminLn, err = listenAdmin(cfg.admin); err != nil {
		d.conns.Close()
		return err
	}
	d.adminAddr = cfg.admin
	if !d.adminAddr.IsUnix() {
		d.adminAddr.HostPort = d.adminLn.Addr().String()
	}
	if cfg.Metrics != "" {
		if d.metricsLn, err = net.Listen("tcp", cfg.Metrics); err != nil {
			d.conns.Close()
			d.adminLn.Close()
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}

// serve runs srv on ln until it is shut down; a server that stops by itself is reported on
// Failed.
func (d *Daemon) serve(name string, srv *http.Server, ln net.Listener) {
	d.served.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.failed <- fmt.Errorf("%s: %w", name, err)
		}
	})
}

func (d *Daemon) setAdminToken(token string) {
	if token == "" {
		d.adminToken.Store(nil)
		return
	}
	sum := sha256.Sum256([]byte(token))
	d.adminToken.Store(&sum)
}

// ProxyAddr is where the proxy listens, with the port it got.
func (d *Daemon) ProxyAddr() string { return d.conns.Addr().String() }

// AdminAddress is where the admin API listens, with the port it got.
func (d *Daemon) AdminAddress() admin.Address { return d.adminAddr }

// MetricsAddr is where /metrics is served, or "".
func (d *Daemon) MetricsAddr() string {
	if d.metricsLn == nil {
		return ""
	}
	return d.metricsLn.Addr().String()
}

// Failed reports a server that stopped by itself (its listener failed).
func (d *Daemon) Failed() <-chan error { return d.failed }

// Reload puts cfg's backends, sticky and override settings, timeouts and admin token in force
// without dropping a connection: requests in flight finish on the configuration they started
// on, new ones take the new one, and the weight and the observations carry on. Settings that
// need a restart (where it listens, the state file, the connection cap, metrics, observations)
// are logged and kept as they are.
func (d *Daemon) Reload(cfg *Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.cfg
	for _, s := range cfg.restartOnly(old) {
		d.log.Warn("reload: this setting changes only on a restart; kept", "setting", s)
	}
	next, err := d.front.proxy.Load().Reconfigured(cfg.proxyConfig())
	if err != nil {
		return err
	}
	kept := *cfg
	kept.Listen, kept.Admin, kept.admin, kept.State = old.Listen, old.Admin, old.admin, old.State
	kept.MaxConnections, kept.Metrics, kept.Observations = old.MaxConnections, old.Metrics, old.Observations
	d.front.proxy.Store(next)
	d.conns.setIdle(kept.Timeouts.Idle)
	d.setAdminToken(kept.AdminToken)
	d.cfg = &kept
	t := kept.Timeouts
	d.log.Info("reloaded", "stable", kept.Stable, "canary", kept.Canary, "responseHeader", t.ResponseHeader, "idle", t.Idle, "body", t.Body,
		"override", kept.Override != nil)
	return nil
}

// setWeight persists the weight, then routes by it, and reads it back.
func (d *Daemon) setWeight(ctx context.Context, percent int) (now, was int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.front.proxy.Load()
	if was, err = p.Weight(ctx); err != nil {
		return 0, 0, err
	}
	if d.cfg.State != "" && percent != was {
		if err := saveState(d.cfg.State, state{CanaryPercent: percent, Segments: d.segments}); err != nil {
			return was, was, fmt.Errorf("weight kept at %d%%: %w", was, err)
		}
	}
	if err := p.SetWeight(ctx, percent); err != nil {
		return was, was, err
	}
	now, err = p.Weight(ctx)
	return now, was, err
}

// setSegments persists the segments, then routes by them.
func (d *Daemon) setSegments(segs []admin.Segment) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	parsed, err := admin.ParseSegments(segs)
	if err != nil {
		return err
	}
	if d.cfg.State != "" {
		weight, err := d.front.proxy.Load().Weight(context.Background())
		if err != nil {
			return err
		}
		if err := saveState(d.cfg.State, state{CanaryPercent: weight, Segments: segs}); err != nil {
			return fmt.Errorf("segments kept as they were: %w", err)
		}
	}
	d.segments = segs
	// A reload swaps the proxy under d.mu too, so the one in force gets them.
	return d.front.proxy.Load().RouteSegments(context.Background(), parsed)
}

// routeSegments sends the requests of the stored segments to p's canary.
func routeSegments(p *proxy.Proxy, segs []admin.Segment) error {
	parsed, err := admin.ParseSegments(segs)
	if err != nil {
		return err
	}
	return p.RouteSegments(context.Background(), parsed)
}

// Shutdown stops accepting requests and waits for those in flight until ctx ends, when it
// closes the connections still open; then it stops the admin API and the metrics.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.log.Info("draining", "connections", d.conns.count())
	d.conns.Close() // no new connections, and none waiting for a slot
	err := d.data.ShutdownWithContext(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		d.log.Warn("drain time is up: closing the connections still open", "connections", d.conns.count())
		d.conns.closeAll()
	}
	actx, cancel := context.WithTimeout(context.Background(), adminShutdownGrace)
	defer cancel()
	for _, srv := range []*http.Server{d.admin, d.metrics} {
		if srv != nil && srv.Shutdown(actx) != nil {
			srv.Close()
		}
	}
	d.served.Wait()
	return errors.Join(err, d.front.proxy.Load().Close())
}

// metricsHandler serves /metrics: the proxy's series (those of whichever proxy is in force;
// a reload keeps them), its weight and open connections, and the process's.
func (d *Daemon) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		currentProxy{&d.front},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "perch_proxy_canary_weight_percent",
			Help: "Percent of requests the standalone perch proxy sends to the canary.",
		}, func() float64 {
			w, _ := d.front.proxy.Load().Weight(context.Background())
			return float64(w)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "perch_proxy_open_connections",
			Help: "Client connections open on the standalone perch proxy.",
		}, func() float64 { return float64(d.conns.count()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// currentProxy collects the series of the proxy in force.
type currentProxy struct{ f *front }

func (c currentProxy) Describe(ch chan<- *prometheus.Desc) { c.f.proxy.Load().Describe(ch) }
func (c currentProxy) Collect(ch chan<- prometheus.Metric) { c.f.proxy.Load().Collect(ch) }
