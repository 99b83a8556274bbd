package alerts

import (
	"context"
	"net/http"
)

// ListenHandler serves h, a handler wrapping r, as r.Listen serves r: for tests that watch
// what the receiver is sent.
func ListenHandler(ctx context.Context, addr string, h http.Handler, r *Receiver) (*Server, error) {
	s, err := listen(ctx, addr, h, r.tls, nil)
	if err != nil {
		return nil, err
	}
	s.onClose = r.Close
	return s, nil
}
