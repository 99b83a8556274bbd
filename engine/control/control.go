// Package control serves a running engine on a Unix socket, so the local user can pause, roll
// back or read the status of a rollout from a shell even when every TUI is frozen, and
// provides the client the `perch pause|resume|advance|rollback|promote|status` verbs use.
//
// The protocol is one JSON request and one JSON response per connection. The socket is
// created with mode 0600 in a 0700 directory: whoever can connect is the user who started
// perch, and commands are recorded as that user (named from the peer's credentials).
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// Target is the running engine the socket serves: it takes the commands clients send and
// gives the state `perch status` reads.
type Target interface {
	Do(ctx context.Context, cmd engine.Command) error
	Snapshot() engine.State
}

// Request is what a client sends: a command, or "status".
type Request struct {
	Command string `json:"command"`
	// Step is the step (0-based) the command is meant for; nil means the current one.
	Step   *int   `json:"step,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Response is the server's answer.
type Response struct {
	OK     bool    `json:"ok"`
	Error  string  `json:"error,omitempty"`
	Code   string  `json:"code,omitempty"` // stale | not_allowed | forbidden | bad_request | not_running
	Status *Status `json:"status,omitempty"`
}

// Status is a rollout at a glance, as `perch status` prints it.
type Status struct {
	Name       string        `json:"name"`
	Phase      engine.Phase  `json:"phase"`
	Step       int           `json:"step"` // 1-based, for people
	Steps      int           `json:"steps"`
	StepDesc   string        `json:"stepDescription"`
	Weight     int           `json:"weight"`
	Target     int           `json:"target"`
	Hold       string        `json:"hold,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	PausedBy   string        `json:"pausedBy,omitempty"`
	RouterErr  string        `json:"routerError,omitempty"`
	Checks     []CheckStatus `json:"checks"`
	LastEvent  time.Time     `json:"lastEvent"`
	LastChange string        `json:"lastChange,omitempty"`
}

// CheckStatus is one check's latest verdict.
type CheckStatus struct {
	Name     string          `json:"name"`
	Verdict  metrics.Verdict `json:"verdict,omitempty"`
	Canary   metrics.Number  `json:"canary"`
	Baseline metrics.Number  `json:"baseline"`
	Reason   string          `json:"reason,omitempty"`
}

// statusOf summarizes a state.
func statusOf(st engine.State) *Status {
	s := &Status{Name: st.Spec.Name, Phase: st.Phase, Step: st.Step + 1, Steps: len(st.Spec.Steps),
		StepDesc: st.CurrentStep().String(), Weight: st.Weight, Target: st.Target, RouterErr: st.RouterError,
		LastEvent: st.LastEventAt, Checks: []CheckStatus{}}
	switch st.Phase {
	case engine.PhaseHolding:
		s.Hold, s.Reason = string(st.Hold), st.HoldReason
	case engine.PhasePaused:
		s.Reason = st.PauseReason
		if st.PausedBy != nil {
			s.PausedBy = st.PausedBy.Name
		}
	case engine.PhaseRollingBack, engine.PhaseRolledBack, engine.PhasePromoting, engine.PhasePromoted:
		s.Reason = st.EndReason
	}
	for _, c := range st.Checks {
		cs := CheckStatus{Name: c.Name}
		if c.Last != nil {
			cs.Verdict, cs.Canary, cs.Baseline, cs.Reason = c.Last.Verdict, c.Last.LastCanary, c.Last.LastBaseline, c.Last.Reason
		}
		s.Checks = append(s.Checks, cs)
	}
	if n := len(st.Log); n > 0 {
		s.LastChange = st.Log[n-1].Describe(st.Spec)
	}
	return s
}

// DefaultPath is where a rollout's socket goes: under $XDG_RUNTIME_DIR/perch when the session
// has one, else beside the journal.
func DefaultPath(getenv func(string) string, name, journalPath string) string {
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "perch", name+".sock")
	}
	path := filepath.Join(filepath.Dir(journalPath), "perch-"+name+".sock")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path
}

// Server answers requests on a Unix socket.
type Server struct {
	ln     *net.UnixListener
	path   string
	target Target
}

// Listen creates the socket at path (mode 0600, its directory 0700 if perch creates it). A
// socket left by a perch that died is replaced; one a live perch answers on is refused.
func Listen(path string, target Target) (*Server, error) {
	if len(path) > 107 {
		return nil, fmt.Errorf("control socket path %s is too long for a Unix socket (%d > 107 bytes); choose a shorter --socket", path, len(path))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another perch is listening on %s; stop it or choose another --socket", path)
		}
		os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return &Server{ln: ln, path: path, target: target}, nil
}

// Path is the socket's file name.
func (s *Server) Path() string { return s.path }

// Serve answers connections until ctx ends, then removes the socket.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	defer os.Remove(s.path)
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control socket: %w", err)
		}
		go s.handle(ctx, conn)
	}
}

func (s *Server) handle(ctx context.Context, conn *net.UnixConn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	actor := engine.Actor{Name: peerName(conn), Role: engine.RoleOperator, Source: "socket"}
	var req Request
	resp := Response{}
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		resp = Response{Error: "bad request: " + err.Error(), Code: "bad_request"}
	} else {
		resp = s.answer(ctx, req, actor)
	}
	json.NewEncoder(conn).Encode(resp)
}

func (s *Server) answer(ctx context.Context, req Request, actor engine.Actor) Response {
	if req.Command == "status" {
		return Response{OK: true, Status: statusOf(s.target.Snapshot())}
	}
	kind := engine.CommandKind(req.Command)
	// Every command kind is listed, so the socket offers each one.
	//exhaustive:enforce
	switch kind {
	case engine.CommandPause, engine.CommandResume, engine.CommandAdvance, engine.CommandRollback, engine.CommandPromote, engine.CommandRetry:
	default:
		return Response{Error: fmt.Sprintf("unknown command %q", req.Command), Code: "bad_request"}
	}
	step := s.target.Snapshot().Step
	if req.Step != nil {
		step = *req.Step
	}
	err := s.target.Do(ctx, engine.Command{Kind: kind, Actor: actor, Step: step, Reason: req.Reason})
	if err != nil {
		return Response{Error: err.Error(), Code: errorCode(err)}
	}
	return Response{OK: true, Status: statusOf(s.target.Snapshot())}
}

func errorCode(err error) string {
	switch {
	case errors.Is(err, engine.ErrStaleCommand):
		return "stale"
	case errors.Is(err, engine.ErrNotAllowed):
		return "not_allowed"
	case errors.Is(err, engine.ErrForbidden):
		return "forbidden"
	case errors.Is(err, engine.ErrNotRunning):
		return "not_running"
	}
	return "error"
}

// peerName names the user on the other end of the socket.
func peerName(conn *net.UnixConn) string {
	uid, ok := peerUID(conn)
	if !ok {
		uid = os.Getuid()
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(uid)
}

// Send makes one request to the socket at path.
func Send(ctx context.Context, path string, req Request) (*Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("no perch answers on %s: %w", path, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, fmt.Errorf("send to %s: %w", path, err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return nil, fmt.Errorf("read from %s: %w", path, err)
	}
	return &resp, nil
}

// Find lists the sockets of running perches under $XDG_RUNTIME_DIR/perch, for a verb given no
// --socket.
func Find(getenv func(string) string) ([]string, string) {
	dir := getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return nil, ""
	}
	dir = filepath.Join(dir, "perch")
	found, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	return found, dir
}
