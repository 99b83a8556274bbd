package main

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/charmbracelet/x/term"
)

// notifyHangup delivers SIGHUP to c until the returned function is called. A perch started
// with SIGHUP ignored (nohup) keeps ignoring it.
func notifyHangup(c chan<- os.Signal) (stop func()) {
	if signal.Ignored(syscall.SIGHUP) {
		return func() {}
	}
	signal.Notify(c, syscall.SIGHUP)
	return func() { signal.Stop(c) }
}

// hangups decides what SIGHUP does as a supervised run goes on. A hangup means the terminal
// went away (a dropped SSH session, a closed window). Until the front end says otherwise it
// stops the run as SIGTERM does — journaled, resumable, exit 3 — where by default it would kill
// perch with no stopped event and a stale control socket; while the TUI shows, it ends the
// view instead and the engine carries on headless.
type hangups struct {
	mu   sync.Mutex
	on   func()
	stop func()
}

// watchHangups calls on for each SIGHUP until stop; set changes what a hangup does.
func (a *app) watchHangups(on func()) *hangups {
	h := &hangups{on: on, stop: func() {}}
	if a.notifyHangup == nil {
		return h
	}
	c := make(chan os.Signal, 1)
	stopNotify := a.notifyHangup(c)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-c:
				h.mu.Lock()
				on := h.on
				h.mu.Unlock()
				on()
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			stopNotify()
			close(done)
		})
	}
	return h
}

// set makes f what the next hangup does and returns what it did until now.
func (h *hangups) set(f func()) (previous func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	previous, h.on = h.on, f
	return previous
}

// terminal is the terminal the local TUI runs in, watched: the first read that ends (EOF) or
// fails, or write that fails, means the terminal went away and calls gone, once. It keeps the
// file's descriptor, so bubbletea still puts the terminal in raw mode and reads its size.
type terminal struct {
	*os.File
	lost *atomic.Bool
	gone func()
}

func (t terminal) Read(p []byte) (int, error) {
	n, err := t.File.Read(p)
	if err != nil {
		t.lose()
	}
	return n, err
}

func (t terminal) Write(p []byte) (int, error) {
	n, err := t.File.Write(p)
	if err != nil {
		t.lose()
	}
	return n, err
}

func (t terminal) lose() {
	if t.lost.CompareAndSwap(false, true) {
		t.gone()
	}
}

// watchTerminal wraps in and out, when they are terminals, so that gone is called once when
// either stops working. A nil result leaves bubbletea its default (for input that is not a
// terminal, it opens /dev/tty).
func watchTerminal(in io.Reader, out io.Writer, gone func()) (io.Reader, io.Writer) {
	lost := &atomic.Bool{}
	var r io.Reader
	var w io.Writer
	if f, ok := in.(*os.File); ok && term.IsTerminal(f.Fd()) {
		r = terminal{File: f, lost: lost, gone: gone}
	}
	if f, ok := out.(*os.File); ok && term.IsTerminal(f.Fd()) {
		w = terminal{File: f, lost: lost, gone: gone}
	}
	return r, w
}
