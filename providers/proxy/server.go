package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Server is a Proxy listening on an address.
type Server struct {
	*Proxy
	listener net.Listener
	server   *fasthttp.Server
	served   chan error
	close    sync.Once
	closeErr error
}

// shutdownGrace is how long Close lets requests in flight finish.
const shutdownGrace = 5 * time.Second

// maxHeaderSize bounds a request's head (nginx allows 4 buffers of 8 KiB).
const maxHeaderSize = 32 << 10

// Listen starts a proxy on addr (HOST:PORT; port 0 picks a free one).
func Listen(addr string, cfg Config) (*Server, error) {
	p, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("proxy: listen on %s: %w", addr, err)
	}
	s := &Server{
		Proxy:    p,
		listener: ln,
		server:   NewServer(p.ServeFast, p.timeouts, p.maxConns, cfg.ErrorLog),
		served:   make(chan error, 1),
	}
	go func() { s.served <- s.server.Serve(ln) }()
	return s, nil
}

// NewServer is the fasthttp server Listen runs, for a program that serves proxies itself (perch
// proxy, which swaps its proxy on a reload): handler serves every request (a Proxy's
// ServeFast); t and maxConns bound clients as Config's Timeouts and MaxConnections do, zeros
// taking the defaults; errorLog receives the server's errors (nil: the standard logger).
func NewServer(handler fasthttp.RequestHandler, t Timeouts, maxConns int, errorLog *log.Logger) *fasthttp.Server {
	t = t.withDefaults()
	if maxConns <= 0 {
		maxConns = DefaultMaxConnections
	}
	if errorLog == nil {
		errorLog = log.Default()
	}
	return &fasthttp.Server{
		Handler: handler,
		// No write timeout: responses may stream for as long as the backend streams them; a
		// backend that stalls is cut by Timeouts.Body.
		ReadTimeout:       t.Body,
		IdleTimeout:       t.Idle,
		Concurrency:       maxConns,
		ReadBufferSize:    maxHeaderSize,
		StreamRequestBody: true,
		// Pass the backend's Server, Date and Content-Type through as they are.
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		// A request too big for the buffer is streamed; this only bounds what is buffered.
		MaxRequestBodySize: 4 << 20,
		CloseOnShutdown:    true,
		Logger:             errorLog,
	}
}

// Addr is the address the proxy listens on, with the port it got.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL is the proxy's base URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops accepting requests, waits a few seconds for those in flight, then closes the
// proxy's connections.
func (s *Server) Close() error {
	s.close.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

func (s *Server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := s.server.ShutdownWithContext(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil // requests still in flight are cut when their connections close
	}
	if serr := <-s.served; serr != nil && !errors.Is(serr, net.ErrClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, s.Proxy.Close())
}

var _ io.Closer = (*Server)(nil)
