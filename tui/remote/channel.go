package remote

import (
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// maxEnv bounds the environment variables one session may set (each is a request the
// session library keeps until the session ends).
const maxEnv = 64

// sessionChannel opens a session channel as the SSH library does, with its requests
// filtered first (see filterRequests), and at most channelsPerConn at once per connection.
func (s *Server) sessionChannel(srv *ssh.Server, sc *gossh.ServerConn, ch gossh.NewChannel, ctx ssh.Context) {
	if c, ok := ctx.Value(connKey{}).(*conn); ok {
		if !s.tracker.openChannel(c) {
			ch.Reject(gossh.ResourceShortage, "perch: too many sessions on one connection")
			return
		}
		defer s.tracker.closeChannel(c)
	}
	ssh.DefaultSessionHandler(srv, sc, filteredChannel{ch}, ctx)
}

// filteredChannel is a session channel whose requests pass filterRequests.
type filteredChannel struct{ gossh.NewChannel }

func (f filteredChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, in, err := f.NewChannel.Accept()
	if err != nil {
		return ch, in, err
	}
	out := make(chan *gossh.Request)
	go filterRequests(in, out)
	return ch, out, nil
}

// filterRequests passes a session's requests on, after clamping the terminal sizes of
// pty-req and window-change to MaxWidth×MaxHeight, and refusing agent and X11 forwarding
// (perch forwards nothing) and environment variables past maxEnv.
func filterRequests(in <-chan *gossh.Request, out chan<- *gossh.Request) {
	defer close(out)
	env := 0
	for req := range in {
		switch req.Type {
		case "pty-req":
			var p ptyRequest
			if gossh.Unmarshal(req.Payload, &p) == nil {
				p.Columns, p.Rows = clamp(p.Columns, MaxWidth), clamp(p.Rows, MaxHeight)
				req.Payload = gossh.Marshal(p)
			}
		case "window-change":
			var w windowChange
			if gossh.Unmarshal(req.Payload, &w) == nil {
				w.Columns, w.Rows = clamp(w.Columns, MaxWidth), clamp(w.Rows, MaxHeight)
				req.Payload = gossh.Marshal(w)
			}
		case "auth-agent-req@openssh.com", "x11-req":
			refuse(req)
			continue
		case "env":
			if env++; env > maxEnv {
				refuse(req)
				continue
			}
		}
		out <- req
	}
}

func refuse(req *gossh.Request) {
	if req.WantReply {
		req.Reply(false, nil)
	}
}

func clamp(v uint32, most int) uint32 { return min(v, uint32(most)) }

// ptyRequest is the payload of a pty-req (RFC 4254, 6.2).
type ptyRequest struct {
	Term                             string
	Columns, Rows, WidthPx, HeightPx uint32
	Modes                            string
}

// windowChange is the payload of a window-change (RFC 4254, 6.7).
type windowChange struct {
	Columns, Rows, WidthPx, HeightPx uint32
}

// keepalive asks the client of sc whether it is alive every interval, and calls dead once
// countMax requests in a row have gone unanswered. It returns when ctx ends (the
// connection closed) or after calling dead.
func keepalive(ctx ssh.Context, sc gossh.Conn, interval time.Duration, countMax int, dead func()) {
	var unanswered atomic.Int32
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if int(unanswered.Load()) >= countMax {
			dead()
			return
		}
		unanswered.Add(1)
		go func() {
			// Any answer, even a refusal (OpenSSH refuses requests it does not know), is a
			// sign of life; an error means the connection closed.
			if _, _, err := sc.SendRequest("keepalive@openssh.com", true, nil); err == nil {
				unanswered.Add(-1)
			}
		}()
	}
}
