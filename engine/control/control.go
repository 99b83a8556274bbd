// Package control serves a running engine on a Unix socket, so the local user can pause, roll
// back or read the status of a rollout from a shell even when every TUI is frozen, and
// provides the client the `perch pause|resume|advance|rollback|promote|status` verbs use.
//
// The protocol is one JSON request line (at most MaxRequest bytes) and one JSON response per
// connection. The socket is created with mode 0600, by default in a 0700 directory perch owns,
// and the server checks each peer's credentials: only the user who started perch (and, with
// Options.Group, that group's members) may use it, and commands are recorded as that user.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/peercred"
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
	// Rollout names the rollout the request is for; empty: the only one running. A perch of
	// one rollout refuses any other name.
	Rollout string `json:"rollout,omitempty"`
	// Step is the step (0-based) the command is meant for; nil means the current one.
	Step   *int   `json:"step,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Response is the server's answer.
type Response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"` // stale | not_allowed | forbidden | bad_request | not_running | busy | not_found | ambiguous
	// Note says why an OK command changed nothing: the rollout was where it asked for already
	// ("already paused"), so saying it twice is not an error.
	Note   string  `json:"note,omitempty"`
	Status *Status `json:"status,omitempty"`
	// Rollouts is every rollout of a fleet, for a status that names none while several run
	// (or one that names a rollout that never started).
	Rollouts []Summary `json:"rollouts,omitempty"`
}

// Status is a rollout at a glance, as `perch status` prints it.
type Status struct {
	Name       string        `json:"name"`
	Canary     *spec.Canary  `json:"canary,omitempty"` // what is being released, as the rollout file says
	Phase      engine.Phase  `json:"phase"`
	Step       int           `json:"step"` // 1 for the first, as in the journal and --step
	Steps      int           `json:"steps"`
	StepDesc   string        `json:"stepDescription"`
	Weight     int           `json:"weight"` // the canary percent the provider confirmed; -1 before any
	Target     int           `json:"target"` // the percent being set; -1 before any
	Hold       string        `json:"hold,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	PausedBy   string        `json:"pausedBy,omitempty"`
	RouterErr  string        `json:"routerError,omitempty"`
	Checks     []CheckStatus `json:"checks"`
	LastEvent  time.Time     `json:"lastEvent"`
	LastChange string        `json:"lastChange,omitempty"`
	// Journal is the file the run records to, which tells how it ended once perch is gone.
	Journal string `json:"journal,omitempty"`
	// Role is this replica's role when replicas share the rollout (--ha): leader or standby;
	// Leader is the id of the replica that leads it ("" while none does).
	Role   string `json:"role,omitempty"`
	Leader string `json:"leader,omitempty"`
}

// Replicated is a Target that one of several replicas serves (--ha): it says which role this
// replica has and who leads.
type Replicated interface {
	Replica() (role, leader string)
}

// CheckStatus is one check's latest verdict: no verdict and null values before the step's
// first look.
type CheckStatus struct {
	Name    string          `json:"name"`
	Verdict metrics.Verdict `json:"verdict,omitempty"`
	// Canary and Baseline are the last interval's values, in the check's unit as measured
	// (a rate as a fraction; seconds as seconds).
	Canary   metrics.Number `json:"canary"`
	Baseline metrics.Number `json:"baseline"`
	// Unit is what the values are in ("%" for a rate written as a percentage), and Rate says
	// they are events out of a total.
	Unit   string `json:"unit,omitempty"`
	Rate   bool   `json:"rate,omitempty"`
	Reason string `json:"reason,omitempty"`
	// DryRun checks are judged and shown but never act (spec.Check.DryRun).
	DryRun bool `json:"dryRun,omitempty"`
}

// StatusOf summarizes a state, as perch status shows it.
func StatusOf(st engine.State) *Status {
	s := &Status{Name: st.Spec.Name, Canary: st.Spec.Canary, Phase: st.Phase, Step: st.Step + 1, Steps: len(st.Spec.Steps),
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
	for i, c := range st.Checks {
		nan := metrics.Number(math.NaN())
		cs := CheckStatus{Name: c.Name, Canary: nan, Baseline: nan, DryRun: c.DryRun}
		if i < len(st.Spec.Checks) {
			u := st.Spec.Checks[i].ValueUnit()
			cs.Unit, cs.Rate = u.Name, u.Rate
		}
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

// DefaultPath is where a rollout's socket goes: $XDG_RUNTIME_DIR/perch/NAME.sock when the
// session has a runtime directory, else $TMPDIR/perch-UID/NAME.sock (/tmp without TMPDIR),
// as tmux places its sockets. Either directory is perch's own: see Options.PrivateDir.
func DefaultPath(getenv func(string) string, name string) string {
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "perch", name+".sock")
	}
	return filepath.Join(tempDir(getenv), fmt.Sprintf("perch-%d", os.Geteuid()), name+".sock")
}

// tempDir is $TMPDIR, else /tmp, as os.TempDir has it on Unix.
func tempDir(getenv func(string) string) string {
	if dir := getenv("TMPDIR"); dir != "" {
		return dir
	}
	return "/tmp"
}

// Dirs are the directories a verb given no --socket looks in for this user's perches: where
// DefaultPath puts sockets with and without $XDG_RUNTIME_DIR, so that a shell without it
// (root, sudo, a container) finds what a shell with it started, and the other way round.
func Dirs(getenv func(string) string) []string {
	uid := os.Geteuid()
	var dirs []string
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" {
		dirs = append(dirs, filepath.Join(dir, "perch"))
	}
	dirs = append(dirs,
		filepath.Join("/run/user", strconv.Itoa(uid), "perch"),
		filepath.Join(tempDir(getenv), fmt.Sprintf("perch-%d", uid)),
		filepath.Join("/tmp", fmt.Sprintf("perch-%d", uid)))
	var out []string
	for _, d := range dirs {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// Find lists the sockets of running perches in Dirs, for a verb given no --socket, and the
// directories it looked in. It skips a directory another user owns or may write to, whose
// sockets anyone could have put there.
func Find(getenv func(string) string) (found, searched []string) {
	searched = Dirs(getenv)
	for _, dir := range searched {
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 || !ownedByMe(fi) {
			continue
		}
		socks, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
		for _, p := range socks {
			if fi, err := os.Lstat(p); err == nil && fi.Mode().Type() == fs.ModeSocket {
				found = append(found, p)
			}
		}
	}
	return found, searched
}

// Limits on what one connection may send and how long it may take.
const (
	// MaxRequest bounds a request line.
	MaxRequest = 64 << 10
	// MaxReason bounds a command's reason, which every view of the rollout shows.
	MaxReason = 4 << 10
	// maxConns bounds the connections served at once; more are told to retry.
	maxConns       = 32
	writeTimeout   = 10 * time.Second
	commandTimeout = 30 * time.Second
)

// Options say who may use the socket besides perch's own user, where the socket's directory
// comes from, and where problems are reported.
type Options struct {
	// Group, a group name or id, lets the members of that group use the socket too: the
	// socket is then mode 0660 and the directory perch creates 0750, both of that group.
	Group string
	// PrivateDir says the socket's directory is perch's own, as DefaultPath's are: it is
	// created mode 0700 (0750 with Group), and refused if it is a symlink or another user's,
	// or repaired if it is perch's and others may enter it.
	PrivateDir bool
	// Journal is the run's journal file, named in its status.
	Journal string
	// Logf reports accept errors and refused peers; nil discards the reports.
	Logf func(format string, args ...any)
}

// Server answers requests on a Unix socket.
type Server struct {
	ln          *net.UnixListener
	path        string
	target      Target // the one rollout, or nil for a fleet
	fleet       Fleet
	uid, gid    int    // perch's user, and the group allowed besides (-1: none)
	journal     string // the run's journal, for its status
	logf        func(format string, args ...any)
	readTimeout time.Duration
}

// Listen creates the socket at path, mode 0600 (0660 with a group) from the moment it
// appears: it is bound in a fresh private directory beside path and linked into place. A
// socket left by a perch that died is replaced; one a live perch answers on, or a file that
// is not a socket, is refused.
func Listen(path string, target Target, opts Options) (*Server, error) {
	return listen(path, target, nil, opts)
}

// ListenFleet is Listen for the many rollouts of a fleet: each request names its rollout, and
// one that names none acts only when exactly one runs.
func ListenFleet(path string, f Fleet, opts Options) (*Server, error) {
	return listen(path, nil, f, opts)
}

func listen(path string, target Target, f Fleet, opts Options) (*Server, error) {
	s := &Server{path: path, target: target, fleet: f, uid: os.Geteuid(), gid: -1, logf: opts.Logf, readTimeout: 10 * time.Second, journal: opts.Journal}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	// The socket is bound as DIR/.pNNNNNNNNNN/s first; both names must fit in sun_path.
	if n := len(filepath.Dir(path)) + 15; len(path) > 107 || n > 107 {
		return nil, fmt.Errorf("control socket path %s is too long for a Unix socket (its directory may have at most 92 bytes, the path 107); choose a shorter --socket", path)
	}
	if opts.Group != "" {
		gid, err := lookupGroup(opts.Group)
		if err != nil {
			return nil, err
		}
		s.gid = gid
	}
	dir := filepath.Dir(path)
	if opts.PrivateDir {
		if err := s.privateDir(dir); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	ln, err := s.bind()
	if err != nil {
		return nil, err
	}
	s.ln = ln
	return s, nil
}

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if g, err = user.LookupGroupId(name); err != nil {
			return 0, fmt.Errorf("--socket-group %s: no such group", name)
		}
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("--socket-group %s: group id %q is not a number", name, g.Gid)
	}
	return gid, nil
}

// privateDir makes dir perch's own, or says why it cannot be.
func (s *Server) privateDir(dir string) error {
	mode := fs.FileMode(0o700)
	if s.gid >= 0 {
		mode = 0o750
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("control socket directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("control socket directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("control socket directory %s is not a directory (%s); remove it, or choose another --socket", dir, fi.Mode().Type())
	case !ownedByMe(fi):
		return fmt.Errorf("control socket directory %s belongs to another user, who could replace the socket; remove it, or choose another --socket", dir)
	}
	if s.gid >= 0 {
		if err := os.Lchown(dir, -1, s.gid); err != nil {
			return fmt.Errorf("control socket directory: %w", err)
		}
	}
	if fi.Mode().Perm() != mode {
		if err := os.Chmod(dir, mode); err != nil {
			return fmt.Errorf("control socket directory: %w", err)
		}
		s.logf("control socket directory %s had mode %04o; set it to %04o", dir, fi.Mode().Perm(), mode)
	}
	return nil
}

// bind creates the listening socket at s.path without a moment in which it exists with a
// looser mode.
func (s *Server) bind() (*net.UnixListener, error) {
	mode := fs.FileMode(0o600)
	if s.gid >= 0 {
		mode = 0o660
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(s.path), ".p")
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, error) {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(err)
	}
	if s.gid >= 0 {
		if err := os.Lchown(tmp, -1, s.gid); err != nil {
			return fail(err)
		}
	}
	err = os.Link(tmp, s.path)
	if errors.Is(err, fs.ErrExist) {
		if err := s.clearStale(); err != nil {
			ln.Close()
			return nil, err
		}
		err = os.Link(tmp, s.path)
	}
	if err != nil {
		return fail(err)
	}
	return ln, nil
}

// clearStale removes the socket of a perch that died from s.path.
func (s *Server) clearStale() error {
	fi, err := os.Lstat(s.path)
	if err != nil {
		return nil
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; remove it, or choose another --socket", s.path)
	}
	if c, err := net.DialTimeout("unix", s.path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("another perch is listening on %s; stop it or choose another --socket", s.path)
	}
	os.Remove(s.path)
	return nil
}

// Path is the socket's file name.
func (s *Server) Path() string { return s.path }

// Serve answers connections until ctx ends, then removes the socket. An accept that fails
// (out of file descriptors, say) is retried, backing off from 5 ms to 1 s as net/http does,
// and reported: the socket stays for as long as perch runs.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	defer os.Remove(s.path)
	busy := make(chan struct{}, maxConns)
	var delay time.Duration
	failures, reported := 0, time.Time{}
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("control socket: %w", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			if failures++; failures == 1 || time.Since(reported) >= time.Minute {
				s.logf("control socket %s: accept failed (%d time(s) so far): %v; retrying", s.path, failures, err)
				reported = time.Now()
			}
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		if failures > 0 {
			s.logf("control socket %s: accepting again after %d failed accept(s)", s.path, failures)
			failures, delay = 0, 0
		}
		select {
		case busy <- struct{}{}:
			go func() {
				defer func() { <-busy }()
				s.handle(ctx, conn)
			}()
		default:
			go s.reply(conn, Response{Error: fmt.Sprintf("busy: %d requests in progress; try again", maxConns), Code: "busy"})
		}
	}
}

func (s *Server) handle(ctx context.Context, conn *net.UnixConn) {
	actor, err := s.peer(conn)
	if err != nil {
		s.logf("control socket %s: %v", s.path, err)
		s.reply(conn, Response{Error: err.Error(), Code: "forbidden"})
		return
	}
	conn.SetReadDeadline(time.Now().Add(s.readTimeout))
	req, err := readRequest(conn)
	if err != nil {
		s.reply(conn, Response{Error: "bad request: " + err.Error(), Code: "bad_request"})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	s.reply(conn, s.answer(ctx, req, actor))
}

// reply sends resp and closes conn.
func (s *Server) reply(conn *net.UnixConn, resp Response) {
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	json.NewEncoder(conn).Encode(resp)
}

// readRequest reads one request line of at most MaxRequest bytes.
func readRequest(conn *net.UnixConn) (Request, error) {
	line, err := bufio.NewReader(io.LimitReader(conn, MaxRequest+1)).ReadBytes('\n')
	var req Request
	switch {
	case len(line) > MaxRequest:
		return req, fmt.Errorf("longer than %d bytes", MaxRequest)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return req, errors.New("no complete request in time")
	case err != nil && !errors.Is(err, io.EOF):
		return req, err
	}
	if err := json.Unmarshal(line, &req); err != nil {
		return req, err
	}
	if len(req.Reason) > MaxReason {
		return req, fmt.Errorf("the reason is %d bytes; at most %d", len(req.Reason), MaxReason)
	}
	return req, nil
}

// peer is who is on the other end of conn, or why they may not use the socket: only perch's
// own user, and the members of Options.Group, may.
func (s *Server) peer(conn *net.UnixConn) (engine.Actor, error) {
	uid, gid, ok := peercred.Of(conn)
	if !ok { // no peer credentials on this system: the socket's mode decides who connects
		uid = s.uid
	}
	actor := engine.Actor{Name: userName(uid), Role: engine.RoleOperator, Source: "socket"}
	if uid == s.uid || (s.gid >= 0 && inGroup(uid, gid, s.gid)) {
		return actor, nil
	}
	return engine.Actor{}, fmt.Errorf("forbidden: %s (uid %d) is not the user running perch (uid %d)%s", actor.Name, uid, s.uid, s.groupHint())
}

func (s *Server) groupHint() string {
	if s.gid < 0 {
		return ""
	}
	return fmt.Sprintf(" nor in its socket group (gid %d)", s.gid)
}

// inGroup reports whether the user uid, whose process runs with group gid, is a member of
// group want.
func inGroup(uid, gid, want int) bool {
	if gid == want {
		return true
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return false
	}
	groups, err := u.GroupIds()
	return err == nil && slices.Contains(groups, strconv.Itoa(want))
}

func (s *Server) answer(ctx context.Context, req Request, actor engine.Actor) Response {
	if s.fleet != nil {
		return s.answerFleet(ctx, req, actor)
	}
	if name := s.target.Snapshot().Spec.Name; req.Rollout != "" && req.Rollout != name {
		return Response{Error: fmt.Sprintf("this perch runs rollout %q, not %q", name, req.Rollout), Code: "not_found"}
	}
	return answerOne(ctx, s.target, s.journal, req, actor)
}

// answerOne carries out req on one rollout.
func answerOne(ctx context.Context, target Target, journal string, req Request, actor engine.Actor) Response {
	statusOf := func(st engine.State) *Status {
		s := StatusOf(st)
		s.Journal = journal
		if r, ok := target.(Replicated); ok {
			s.Role, s.Leader = r.Replica()
		}
		return s
	}
	if req.Command == "status" {
		return Response{OK: true, Status: statusOf(target.Snapshot())}
	}
	kind := engine.CommandKind(req.Command)
	// Every command kind is listed, so the socket offers each one.
	//exhaustive:enforce
	switch kind {
	case engine.CommandPause, engine.CommandResume, engine.CommandAdvance, engine.CommandRollback, engine.CommandPromote, engine.CommandRetry:
	default:
		return Response{Error: fmt.Sprintf("unknown command %q", req.Command), Code: "bad_request"}
	}
	st := target.Snapshot()
	if note := already(st, kind); note != "" {
		return Response{OK: true, Note: note, Status: statusOf(st)}
	}
	step := st.Step
	if req.Step != nil {
		step = *req.Step
	}
	err := target.Do(ctx, engine.Command{Kind: kind, Actor: actor, Step: step, Reason: req.Reason})
	if err != nil {
		return Response{Error: err.Error(), Code: errorCode(err)}
	}
	return Response{OK: true, Status: statusOf(target.Snapshot())}
}

// already says, for a command whose end the rollout is at already, that it is ("already
// paused"), so a command repeated (by a script, or by two people at once) succeeds without
// being sent; "" for any other.
func already(st engine.State, kind engine.CommandKind) string {
	switch {
	case kind == engine.CommandPause && st.Phase == engine.PhasePaused,
		kind == engine.CommandRollback && (st.Phase == engine.PhaseRollingBack || st.Phase == engine.PhaseRolledBack),
		kind == engine.CommandPromote && (st.Phase == engine.PhasePromoting || st.Phase == engine.PhasePromoted):
		return "already " + st.Phase.Words()
	case kind == engine.CommandResume && st.Phase == engine.PhaseRunning:
		return "already running"
	}
	return ""
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

// userName names the user uid.
func userName(uid int) string {
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
	// A server that refuses the peer answers without reading the request, so a failed write
	// may still leave an answer to read.
	sendErr := json.NewEncoder(conn).Encode(req)
	var resp Response
	if err := json.NewDecoder(io.LimitReader(conn, 16<<20)).Decode(&resp); err != nil {
		if sendErr != nil {
			return nil, fmt.Errorf("send to %s: %w", path, sendErr)
		}
		return nil, fmt.Errorf("read from %s: %w", path, err)
	}
	return &resp, nil
}
