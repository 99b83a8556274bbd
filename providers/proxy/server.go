package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is a Proxy listening on an address.
type Server struct {
	*Proxy
	listener net.Listener
	http     *http.Server
	served   chan error
	close    sync.Once
	closeErr error
}

// shutdownGrace is how long Close lets requests in flight finish.
const shutdownGrace = 5 * time.Second

// Listen starts a proxy on addr (HOST:PORT; port 0 picks a free one).
func Listen(addr string, cfg Config) (*Server, error) {
	p, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen on %s: %w", addr, err)
	}
	s := &Server{
		Proxy:    p,
		listener: ln,
		// No write timeout: responses may stream for as long as the backend streams them.
		http:   &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: cfg.ErrorLog},
		served: make(chan error, 1),
	}
	go func() { s.served <- s.http.Serve(ln) }()
	return s, nil
}

// Addr is the address the proxy listens on, with the port it got.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL is the proxy's base URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops accepting requests and waits a few seconds for those in flight.
func (s *Server) Close() error {
	s.close.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

func (s *Server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.http.Close()
	}
	if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
