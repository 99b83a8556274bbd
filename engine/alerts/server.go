package alerts

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

// Limits of the server, beyond the receiver's own (Options).
const (
	readHeaderTimeout = 5 * time.Second  // a client has this long to send its headers
	readTimeout       = 10 * time.Second // and this long for the whole request
	idleTimeout       = time.Minute      // a kept-alive connection is closed after this idle
	maxHeaderBytes    = 64 << 10         // Alertmanager sends a few hundred bytes
)

// Server serves a Receiver on a TCP address until closed.
type Server struct {
	srv     *http.Server
	ln      net.Listener
	https   bool
	done    chan error
	onClose func()
}

// Listen serves the receiver on addr (HOST:PORT; port 0 picks a free one), over HTTPS when
// its alerts block has tls. Closing the server closes the receiver.
func (r *Receiver) Listen(ctx context.Context, addr string) (*Server, error) {
	s, err := listen(ctx, addr, r, r.tls, log.New(logWriter(r.logServerError), "", 0))
	if err != nil {
		return nil, err
	}
	s.onClose = r.Close
	return s, nil
}

// listen starts serving h on addr, over TLS with tlsConf unless it is nil; the server's own
// complaints (failed TLS handshakes, say) go to errorLog.
func listen(ctx context.Context, addr string, h http.Handler, tlsConf *tls.Config, errorLog *log.Logger) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("alerts: listen on %s: %w", addr, err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			TLSConfig:         tlsConf,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			// Waiting for a slot and then for the engine are each bounded by the timeout.
			WriteTimeout:   2*DefaultTimeout + 10*time.Second,
			IdleTimeout:    idleTimeout,
			MaxHeaderBytes: maxHeaderBytes,
			ErrorLog:       errorLog,
		},
		ln:    ln,
		https: tlsConf != nil,
		done:  make(chan error, 1),
	}
	go func() {
		if tlsConf != nil {
			s.done <- s.srv.ServeTLS(ln, "", "")
			return
		}
		s.done <- s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is where Alertmanager should post: http:// or https:// and the address.
func (s *Server) URL() string {
	if s.https {
		return "https://" + s.Addr() + "/"
	}
	return "http://" + s.Addr() + "/"
}

// Close stops accepting payloads and waits for those being handled until ctx ends, then drops
// what is left.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close() // ctx ended first: drop the connections still open
	}
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if s.onClose != nil {
		s.onClose()
	}
	return err
}

// logWriter turns the lines an http.Server logs into calls of a function.
type logWriter func(line string)

func (w logWriter) Write(p []byte) (int, error) {
	w(strings.TrimSpace(string(p)))
	return len(p), nil
}

// logServerError logs what the HTTP server reports (a failed TLS handshake: no client
// certificate, a wrong one) as it logs refusals: the first of an interval in full.
func (r *Receiver) logServerError(line string) {
	if r.quota.refused(time.Now(), "server errors") {
		r.opts.Logf("alerts: %s", line)
	}
}
