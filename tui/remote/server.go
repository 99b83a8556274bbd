package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/log"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	"github.com/muesli/termenv"
	gossh "golang.org/x/crypto/ssh"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
)

// Rollout is the engine one rollout runs in, as a session uses it: each session watches its
// states and sends commands, through a copy scoped to the session.
type Rollout interface {
	Subscribe() (<-chan engine.State, func())
	Do(ctx context.Context, cmd engine.Command) error
}

// Fleet is the rollouts of a fleet as a session uses them: the list of their statuses, and
// each running rollout's engine.
type Fleet interface {
	Subscribe() (<-chan []fleet.Status, func())
	Rollout(name string) (fleet.Rollout, bool)
}

// Session is what a model is built from for one SSH session.
type Session struct {
	Actor engine.Actor
	// Rollout is scoped to the session: its subscriptions end when the session does, and
	// every command it sends carries the session's identity, whatever the model put in it.
	// Nil when the server serves a fleet.
	Rollout Rollout
	// Fleet is Config.Fleet scoped to the session as Rollout is, each rollout's engine too;
	// watching a rollout (subscribing to its states) counts the session as present there. Nil
	// unless the server serves a fleet.
	Fleet    Fleet
	Renderer *lipgloss.Renderer
	Presence *Presence
}

// Config is what a Server runs with.
type Config struct {
	Addr        string
	HostKeyPath string
	// Keys are the keys allowed in. Nil is the demo's open mode: any client on the loopback
	// interface may connect, without a key, as an operator named by its SSH user name.
	Keys    *Keyring
	Rollout Rollout
	// Fleet, when set, is served instead of one Rollout: each session gets it in
	// Session.Fleet, and Presence says who watches which rollout (Presence.ByRollout).
	Fleet    Fleet
	NewModel func(Session) tea.Model
	Logger   *log.Logger
	Limits   Limits
}

// Server serves the TUI over SSH.
type Server struct {
	cfg      Config
	srv      *ssh.Server
	presence *Presence
	tracker  *tracker
	sessions atomic.Uint64 // sessions started, to tell apart those of one connection
}

// connKey is the key of a connection's *conn in its ssh.Context.
type connKey struct{}

// New builds the SSH server; the host key at cfg.HostKeyPath is created (mode 0600) if absent
// and reused afterwards, and refused if group or others may read it. Password and
// keyboard-interactive logins are never offered.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = log.New(nil)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if err := checkHostKey(cfg.HostKeyPath); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, presence: &Presence{sessions: map[string]engine.Actor{}}, tracker: newTracker(cfg.Limits, cfg.Logger)}
	opts := []ssh.Option{
		wish.WithAddress(cfg.Addr),
		wish.WithHostKeyPath(cfg.HostKeyPath),
		wish.WithMiddleware(s.programMiddleware),
		func(srv *ssh.Server) error {
			srv.ConnCallback = s.admit
			srv.ChannelHandlers = map[string]ssh.ChannelHandler{"session": s.sessionChannel}
			return nil
		},
	}
	if cfg.Keys != nil {
		opts = append(opts, wish.WithPublicKeyAuth(s.allowKey))
	}
	srv, err := wish.NewServer(opts...)
	if err != nil {
		return nil, fmt.Errorf("ssh server: %w", err)
	}
	s.srv = srv
	return s, nil
}

// checkHostKey refuses a host key file that group or others may read, as sshd does: whoever
// reads it can pose as this perch to every operator.
func checkHostKey(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // created with mode 0600
	case err != nil:
		return fmt.Errorf("host key: %w", err)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("host key: permissions %04o for '%s' are too open: it must be readable by its owner only (chmod 600 %s)", fi.Mode().Perm(), path, path)
	}
	return nil
}

// Presence is who is connected now.
func (s *Server) Presence() *Presence { return s.presence }

// Serve listens on ln until ctx ends, then closes every session.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.tracker.closeAll()
		if err := s.srv.Shutdown(shutdown); err != nil {
			s.srv.Close()
		}
	}()
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, ssh.ErrServerClosed) {
		return fmt.Errorf("ssh server: %w", err)
	}
	return nil
}

// admit takes a new connection in: in the open demo mode only from loopback, and always
// counted against the limits on connections without a session.
func (s *Server) admit(ctx ssh.Context, nc net.Conn) net.Conn {
	if s.cfg.Keys == nil {
		if addr, ok := nc.RemoteAddr().(*net.TCPAddr); !ok || !addr.IP.IsLoopback() {
			s.cfg.Logger.Warn("refused a non-loopback connection in open demo mode", "remote", nc.RemoteAddr())
			nc.Close()
			return nil
		}
	}
	c := s.tracker.add(nc)
	if c == nil {
		return nil
	}
	ctx.SetValue(connKey{}, c)
	return c
}

func (s *Server) allowKey(ctx ssh.Context, key ssh.PublicKey) bool {
	id, ok := s.cfg.Keys.Lookup(key)
	if !ok {
		s.cfg.Logger.Warn("refused an unknown key", "user", ctx.User(), "fingerprint", gossh.FingerprintSHA256(key), "remote", ctx.RemoteAddr())
		return false
	}
	if err := id.admits(ctx.RemoteAddr(), time.Now()); err != nil {
		s.cfg.Logger.Warn("refused a key", "user", ctx.User(), "role", id.Role, "fingerprint", id.Fingerprint, "comment", id.Name, "remote", ctx.RemoteAddr(), "reason", err)
		return false
	}
	return true
}

// identity names the person behind a session.
func (s *Server) identity(sess ssh.Session) (engine.Actor, bool) {
	if s.cfg.Keys == nil {
		// No key names anyone: the name is what the client said, and the source says so.
		return engine.Actor{Name: sess.User(), Role: engine.RoleOperator, Source: "ssh, open demo"}, true
	}
	id, ok := s.cfg.Keys.Lookup(sess.PublicKey())
	if !ok {
		return engine.Actor{}, false
	}
	return engine.Actor{Name: id.Name, Role: id.Role, Source: "ssh", Fingerprint: id.Fingerprint}, true
}

// programMiddleware runs one TUI per session. It registers the session, gives its model a
// scoped Rollout, and releases both when the session ends however it ends: the connection
// drops, or only this session's channel closes (several sessions can share one connection).
func (s *Server) programMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		defer next(sess)
		actor, ok := s.identity(sess)
		if !ok {
			wish.Fatalln(sess, "perch: this key may not connect")
			return
		}
		pty, winch, ok := sess.Pty()
		if !ok {
			wish.Fatalln(sess, "perch: the TUI needs a terminal; connect with ssh -t")
			return
		}
		fields := []any{"user", sess.User(), "comment", actor.Name, "role", actor.Role, "fingerprint", actor.Fingerprint, "remote", sess.RemoteAddr()}
		c, _ := sess.Context().Value(connKey{}).(*conn)
		key := actor.Fingerprint
		if key == "" {
			key = "open demo: " + sess.User()
		}
		release, err := s.tracker.openSession(c, key, actor.Name)
		if err != nil {
			s.cfg.Logger.Warn("refused a session", append(fields, "reason", err)...)
			wish.Fatalln(sess, err.Error())
			return
		}
		defer release()
		if c != nil && s.cfg.Limits.KeepaliveInterval > 0 {
			if sc, ok := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn); ok {
				c.keepalive.Do(func() {
					go keepalive(sess.Context(), sc, s.cfg.Limits.KeepaliveInterval, s.cfg.Limits.KeepaliveCountMax, func() {
						s.cfg.Logger.Warn("closed a dead connection", append(fields, "unanswered_keepalives", s.cfg.Limits.KeepaliveCountMax)...)
						c.Close()
					})
				})
			}
		}
		started := time.Now()
		s.cfg.Logger.Info("session started", append(fields, "term", pty.Term, "width", pty.Window.Width, "height", pty.Window.Height)...)
		defer func() {
			s.cfg.Logger.Info("session ended", append(fields, "duration", time.Since(started).Round(time.Second))...)
		}()

		id := fmt.Sprintf("%s/%d", sess.Context().SessionID(), s.sessions.Add(1)) // one connection may carry several sessions
		s.presence.add(id, actor)
		defer s.presence.remove(id)
		session := Session{Actor: actor, Renderer: sessionRenderer(sess), Presence: s.presence}
		if s.cfg.Rollout != nil {
			scoped := &scopedRollout{rollout: s.cfg.Rollout, actor: actor}
			defer scoped.close()
			session.Rollout = scoped
		}
		if s.cfg.Fleet != nil {
			scoped := &scopedFleet{fleet: s.cfg.Fleet, actor: actor, presence: s.presence, id: id}
			defer scoped.close()
			session.Fleet = scoped
		}

		model := s.cfg.NewModel(session)
		opts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithInput(sess), tea.WithOutput(sess)}
		if pty.Slave != nil && !sess.EmulatedPty() {
			opts = []tea.ProgramOption{tea.WithAltScreen(), tea.WithInput(pty.Slave), tea.WithOutput(pty.Slave)}
		}
		program := tea.NewProgram(model, opts...)
		ctx, cancel := context.WithCancel(sess.Context())
		defer cancel()
		go func() {
			program.Send(tea.WindowSizeMsg{Width: pty.Window.Width, Height: pty.Window.Height})
			for {
				select {
				case <-ctx.Done():
					program.Quit()
					return
				case w, open := <-winch:
					if !open { // the client closed this session's channel
						program.Quit()
						return
					}
					program.Send(tea.WindowSizeMsg{Width: w.Width, Height: w.Height})
				}
			}
		}()
		if _, err := program.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
			s.cfg.Logger.Error("session ended with an error", append(fields, "error", err)...)
		}
		program.Kill()
	}
}

// sessionRenderer styles for the client's terminal as its TERM and environment describe it.
// Unlike wish's MakeRenderer it does not ask the terminal for its background colour: perch's
// themes say whether they are dark or light, and a client that never answers the query would
// otherwise leave the session blank.
func sessionRenderer(sess ssh.Session) *lipgloss.Renderer {
	pty, _, _ := sess.Pty()
	env := append(sess.Environ(), "TERM="+pty.Term)
	opts := []termenv.OutputOption{termenv.WithEnvironment(environ(env)), termenv.WithColorCache(true)}
	var r *lipgloss.Renderer
	if pty.Slave != nil {
		r = lipgloss.NewRenderer(pty.Slave, opts...)
	} else {
		r = lipgloss.NewRenderer(sess, append(opts, termenv.WithUnsafe())...)
	}
	if pty.Term == "" || pty.Term == "dumb" {
		r.SetColorProfile(termenv.Ascii)
	}
	r.SetHasDarkBackground(true)
	return r
}

// environ is a session's environment as termenv reads it.
type environ []string

func (e environ) Environ() []string { return e }

func (e environ) Getenv(key string) string {
	for i := len(e) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(e[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// scopedRollout is one session's view of the engine.
type scopedRollout struct {
	rollout Rollout
	actor   engine.Actor
	mu      sync.Mutex
	subs    []func()
	done    bool
}

func (c *scopedRollout) Subscribe() (<-chan engine.State, func()) {
	ch, cancel := c.rollout.Subscribe()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		cancel()
		return ch, func() {}
	}
	c.subs = append(c.subs, cancel)
	return ch, cancel
}

func (c *scopedRollout) Do(ctx context.Context, cmd engine.Command) error {
	cmd.Actor = c.actor
	return c.rollout.Do(ctx, cmd)
}

func (c *scopedRollout) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	for _, cancel := range c.subs {
		cancel()
	}
	c.subs = nil
}

// Presence is the set of people connected, for the TUI's header, and in a fleet which
// rollouts each one watches.
type Presence struct {
	mu       sync.Mutex
	sessions map[string]engine.Actor
	watching map[string]map[string]int // by session: rollout name → subscriptions open
}

func (p *Presence) add(id string, a engine.Actor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sessions[id] = a
}

func (p *Presence) remove(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.sessions, id)
	delete(p.watching, id)
}

// watch counts session id as watching the rollout named name until the function returned
// is called.
func (p *Presence) watch(id, name string) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watching == nil {
		p.watching = map[string]map[string]int{}
	}
	if p.watching[id] == nil {
		p.watching[id] = map[string]int{}
	}
	p.watching[id][name]++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			w := p.watching[id]
			if w == nil {
				return
			}
			if w[name]--; w[name] <= 0 {
				delete(w, name)
			}
			if len(w) == 0 {
				delete(p.watching, id)
			}
		})
	}
}

// ByRollout is who watches each rollout of a fleet, by rollout name, operators first, then by
// name; those watching none (at the overview) are under the empty name.
func (p *Presence) ByRollout() map[string][]engine.Actor {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]engine.Actor{}
	for id, a := range p.sessions {
		names := p.watching[id]
		if len(names) == 0 {
			out[""] = append(out[""], a)
		}
		for name := range names {
			out[name] = append(out[name], a)
		}
	}
	for _, list := range out {
		sortActors(list)
	}
	return out
}

// List is everyone connected, operators first, then by name.
func (p *Presence) List() []engine.Actor {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]engine.Actor, 0, len(p.sessions))
	for _, a := range p.sessions {
		out = append(out, a)
	}
	sortActors(out)
	return out
}

// sortActors puts operators first, then sorts by name.
func sortActors(out []engine.Actor) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].Role != out[j].Role {
			return out[i].Role == engine.RoleOperator
		}
		return out[i].Name < out[j].Name
	})
}
