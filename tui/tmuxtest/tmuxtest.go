// Package tmuxtest runs a program in a real terminal for end-to-end tests: a detached tmux
// session on a private tmux server, driven with send-keys and read with capture-pane.
package tmuxtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Options say what to run and in what terminal.
type Options struct {
	Width, Height int
	Dir           string   // working directory (default: a temporary one)
	Env           []string // extra NAME=VALUE for the program (TERM is xterm-256color)
	Command       []string // the program and its arguments
	// Timeout bounds every wait (default 30s).
	Timeout time.Duration
}

// Session is one program in its own tmux server. The pane stays after the program exits, so
// its last words can be read.
type Session struct {
	t       testing.TB
	socket  string
	target  string // the tmux window this Session reads and types into
	started time.Time
	timeout time.Duration
}

// Require fails the test when tmux is missing in CI, and skips it elsewhere.
func Require(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is missing: CI must install the Debian package tmux (.ci/run)")
		}
		t.Skip("tmux not installed: apt-get install tmux to run the real-terminal tests")
	}
}

// Start runs o.Command in a new tmux session.
func Start(t testing.TB, o Options) *Session {
	t.Helper()
	Require(t)
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	conf := filepath.Join(t.TempDir(), "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g status off\nset -g history-limit 5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Session{t: t, started: time.Now(), timeout: o.Timeout, target: "main",
		socket: fmt.Sprintf("perch-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	args := []string{"-f", conf, "new-session", "-d", "-s", "main", "-x", fmt.Sprint(o.Width), "-y", fmt.Sprint(o.Height),
		"-c", o.Dir, "-e", "TERM=xterm-256color"}
	for _, e := range o.Env {
		args = append(args, "-e", e)
	}
	s.Tmux(append(args, o.Command...)...)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

// Window runs another program in a new window of the same tmux server, so keys can be sent
// to several programs in one tmux command (see KeyTogether).
func (s *Session) Window(name string, env []string, command ...string) *Session {
	s.t.Helper()
	args := []string{"new-window", "-d", "-n", name, "-e", "TERM=xterm-256color"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	s.Tmux(append(args, command...)...)
	w := *s
	w.target = name
	return &w
}

// KeyTogether sends key to every session in one tmux command, as near to simultaneous as a
// terminal allows.
func KeyTogether(key string, sessions ...*Session) {
	s := sessions[0]
	s.t.Helper()
	var args []string
	for i, w := range sessions {
		if i > 0 {
			args = append(args, ";")
		}
		args = append(args, "send-keys", "-t", w.target, key)
	}
	s.Tmux(args...)
}

// Tmux runs a tmux command against the session's server.
func (s *Session) Tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Screen is what the pane shows now.
func (s *Session) Screen() string { return s.Tmux("capture-pane", "-p", "-t", s.target) }

// History is the pane with its scrollback, where a program's last lines go after it leaves
// the alternate screen.
func (s *Session) History() string { return s.Tmux("capture-pane", "-p", "-S", "-", "-t", s.target) }

// Key sends one key, then pauses briefly: tmux delivers keys sent together as one key.
func (s *Session) Key(k string) {
	s.t.Helper()
	s.Tmux("send-keys", "-t", s.target, k)
	time.Sleep(50 * time.Millisecond)
}

// Resize changes the terminal's size.
func (s *Session) Resize(width, height int) {
	s.t.Helper()
	s.Tmux("resize-window", "-t", s.target, "-x", fmt.Sprint(width), "-y", fmt.Sprint(height))
}

// WaitFor polls the screen until every want is on it, and returns it.
func (s *Session) WaitFor(what string, want ...string) string {
	s.t.Helper()
	return s.wait(what, s.Screen, want)
}

// WaitForHistory polls the pane and its scrollback until every want is there.
func (s *Session) WaitForHistory(what string, want ...string) string {
	s.t.Helper()
	return s.wait(what, s.History, want)
}

func (s *Session) wait(what string, read func() string, want []string) string {
	s.t.Helper()
	deadline := time.Now().Add(s.timeout)
	for {
		text := read()
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			s.t.Logf("%s: after %s", what, time.Since(s.started).Round(time.Millisecond))
			return text
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %q never appeared; the screen:\n%s", what, missing, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitGone polls the screen until gone is no longer on it.
func (s *Session) WaitGone(what, gone string) {
	s.t.Helper()
	deadline := time.Now().Add(s.timeout)
	for strings.Contains(s.Screen(), gone) {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %q is still on the screen:\n%s", what, gone, s.Screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
