package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/internal/printable"
)

// fleetSupervision is what a verb that runs several rollouts (run FILE…, serve --rollouts)
// asks of superviseFleet: where the rollouts come from and how the fleet is shown.
type fleetSupervision struct {
	dir   string   // --rollouts: every *.yaml and *.yml, rescanned
	files []string // the files given, read once
	run   runFlags // --output, --socket, --socket-group and how to connect; each rollout's own
	// linger keeps each engine after a rollback until perch is stopped, so an operator can
	// retry.
	linger bool
	// front shows the fleet while it runs (the overview, in this terminal or over SSH); nil
	// shows nothing but the printer.
	front fleetFront
}

// fleetFront is what shows a fleet while it runs.
type fleetFront interface {
	// start shows fl before any rollout starts (the SSH server listens then, so a port in use
	// fails the start); the function it returns runs once the fleet has ended, and returns
	// once the front end is gone.
	start(ctx context.Context, fl *fleet.Fleet, out fleetOutput) (end func(), err error)
}

// fleetOutput is where a fleet's rollouts print, for a front end that owns the terminal to
// quiet them while it shows, and what it may do to the fleet.
type fleetOutput struct {
	app     *app          // its stdout and stderr are the terminal itself
	events  *lockedWriter // each rollout's events, muted while a view owns the screen
	reports *heldWriter   // each rollout's reports, held while a view owns the screen
	hangups *hangups
	stopAll func() // stops every engine, leaving traffic as it is
}

// superviseFleet runs many rollouts in one process: one engine, journal, provider, source,
// Alertmanager receiver and notifier per rollout, each started through the same lifecycle as
// a rollout alone (live), around one control socket that serves them all by name. Each
// rollout's events are printed with its name in front. The exit is the worst of the
// rollouts': 3 if any stopped or failed, else 1 if any rolled back or was cancelled, else 2 if
// a file was refused, else 0.
func (a *app) superviseFleet(ctx context.Context, p fleetSupervision) error {
	switch {
	case p.run.resume, p.run.journal != "":
		return badInput(errors.New("--resume and --journal take one rollout file; with several, each rollout journals to ./perch-NAME-TIMESTAMP.jsonl"))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hangups := a.watchHangups(func() {
		fmt.Fprintln(a.stderr, "perch: the terminal hung up (SIGHUP); stopping every rollout as for SIGTERM")
		cancel()
	})
	defer hangups.stop()
	// Rollouts print from their own goroutines: each line goes out whole (heldWriter writes
	// each Write under its lock too).
	stdout, stderr := &lockedWriter{w: a.stdout}, &heldWriter{w: a.stderr}
	shared := *a
	shared.stdout, shared.stderr = stdout, stderr
	logf := func(format string, args ...any) {
		// Reports quote file contents and provider errors: one printable line each.
		fmt.Fprintf(stderr, "perch: %s\n", printable.Line(fmt.Sprintf(format, args...)))
	}
	// The registry is filled as rollouts start; it serves once every part is up.
	var metrics *prometheus.Registry
	if p.run.metricsAddr != "" {
		metrics = prometheus.NewRegistry()
	}
	run := shared.fleetRollout(p, hangups, metrics)
	if p.run.ha.url != "" { // replicas share the rollouts: see hafleet.go
		ha, err := shared.openHAFleet(ctx, p, hangups, metrics)
		if err != nil {
			return err
		}
		defer ha.close()
		run = ha.run
	}
	fl, err := fleet.New(fleet.Config{Dir: p.dir, Files: p.files, Run: run, Logf: logf})
	if err != nil {
		return badInput(err)
	}
	stopControl, err := shared.serveFleetControl(ctx, fl, p)
	if err != nil {
		return err
	}
	stopMetrics, err := shared.serveFleetMetrics(p.run.metricsAddr, fl, metrics)
	if err != nil {
		stopControl()
		return err
	}
	defer stopMetrics()
	stopView := func() {}
	if p.front != nil {
		out := fleetOutput{app: a, events: stdout, reports: stderr, hangups: hangups, stopAll: cancel}
		if stopView, err = p.front.start(ctx, fl, out); err != nil {
			stopControl()
			return err
		}
	}
	err = fl.Run(ctx)
	stopView()
	stopControl()
	if err != nil {
		return badInput(err)
	}
	return fleetExit(fl.Statuses(), logf)
}

// fleetRollout runs one rollout of the fleet through the lifecycle a rollout alone has, with
// its lines named: its events on stdout, its reports on stderr.
func (a *app) fleetRollout(p fleetSupervision, hangups *hangups, metrics *prometheus.Registry) fleet.RunFunc {
	return func(ctx context.Context, st fleet.Start) (engine.Outcome, error) {
		name := st.Spec.Name
		ra := *a
		ra.stdout = &lineEditor{w: a.stdout, edit: eventLine(name, p.run.output)}
		ra.stderr = &lineEditor{w: a.stderr, edit: reportLine(name)}
		s, out, err := ra.live(ctx, hangups, life{
			open:   func(ctx context.Context) (*rollout, error) { return ra.openSpec(ctx, st.Spec, p.run) },
			linger: p.linger,
			around: []func(*session) (func(), error){
				func(s *session) (func(), error) { return s.app.startIntegrations(ctx, s.rollout.spec, s.eng) },
				func(s *session) (func(), error) {
					return fleetExporters(metrics, name, s.rollout.router, s.rollout.source)
				},
				func(s *session) (func(), error) {
					st.Started(s.eng, s.rollout.journal.Path())
					return func() {}, nil
				},
			},
			run: headless{format: p.run.output}.run,
		})
		if s == nil {
			return "", err
		}
		if snap := s.eng.Snapshot(); err == nil && out == engine.OutcomeStopped && !snap.Phase.Done() {
			fmt.Fprintf(ra.stderr, "perch: %v\n", resumeHint(st.File)(snap, s.rollout.journal.Path()))
		}
		return out, err
	}
}

// fleetExit reports each rollout that did not promote and maps the worst to the exit code.
func fleetExit(list []fleet.Status, logf func(string, ...any)) error {
	code := exitOK
	worse := func(c int) {
		rank := map[int]int{exitOK: 0, exitBadInput: 1, exitRolledBack: 2, exitRuntime: 3}
		if rank[c] > rank[code] {
			code = c
		}
	}
	for _, s := range list {
		switch {
		case s.Invalid != "":
			worse(exitBadInput)
		case s.Cancelled != "":
			logf("%s: cancelled (%s)", s.Name, s.Cancelled)
			worse(exitRolledBack)
		case s.Failed != "":
			worse(exitRuntime)
		case s.State.Spec == nil:
			worse(exitRuntime) // it was waiting when perch stopped
		case s.State.Phase == engine.PhaseRolledBack:
			logf("%s: rolled back", s.Name)
			worse(exitRolledBack)
		case s.State.Phase != engine.PhasePromoted:
			worse(exitRuntime)
		}
	}
	if code == exitOK {
		return nil
	}
	return exitWith(code)
}

// serveFleetControl serves one control socket for every rollout of fl, by default
// fleet-LABEL.sock beside where a rollout alone puts its own, LABEL being the directory's
// name or the first file's.
func (a *app) serveFleetControl(ctx context.Context, fl *fleet.Fleet, p fleetSupervision) (func(), error) {
	label := p.dir
	if label == "" {
		label = strings.TrimSuffix(filepath.Base(p.files[0]), filepath.Ext(p.files[0]))
	}
	name := "fleet-" + socketLabel(filepath.Base(filepath.Clean(label)))
	return a.serveSocket(ctx, name, p.run.socket, p.run.group, func(path string, opts control.Options) (*control.Server, error) {
		return control.ListenFleet(path, fl, opts)
	})
}

var notLabel = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// socketLabel makes s safe in a socket's file name.
func socketLabel(s string) string {
	s = strings.Trim(notLabel.ReplaceAllString(s, "-"), "-.")
	if len(s) > 40 {
		s = s[:40]
	}
	if s == "" {
		s = "rollouts"
	}
	return s
}

// lockedWriter writes each Write whole, so the lines of rollouts printing at once do not mix;
// while muted it drops them (the events are in the journals).
type lockedWriter struct {
	mu    sync.Mutex
	w     io.Writer
	muted bool
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.muted {
		return len(p), nil
	}
	return l.w.Write(p)
}

// mute drops writes (on) or lets them through again.
func (l *lockedWriter) mute(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.muted = on
}

// lineEditor passes each whole line through edit on its way to w (one Write per line); a
// line not yet ended waits for its end.
type lineEditor struct {
	w    io.Writer
	edit func(line []byte) []byte
	mu   sync.Mutex
	buf  []byte
}

func (l *lineEditor) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := l.buf[:i+1]
		if _, err := l.w.Write(l.edit(line)); err != nil {
			return 0, err
		}
		l.buf = l.buf[i+1:]
	}
}

// eventLine names the rollout in each printed event: text lines start with "NAME: ", and a
// JSON line (a journal event) gets a "rollout" member first.
func eventLine(name, format string) func([]byte) []byte {
	if format == outputJSON {
		return func(line []byte) []byte {
			if len(line) < 2 || line[0] != '{' {
				return line
			}
			tag := `{"rollout":` + strconv.Quote(name)
			if line[1] != '}' {
				tag += ","
			}
			return append([]byte(tag), line[1:]...)
		}
	}
	return func(line []byte) []byte { return append([]byte(name+": "), line...) }
}

// reportLine names the rollout in each report: "perch: NAME: …".
func reportLine(name string) func([]byte) []byte {
	return func(line []byte) []byte {
		if rest, ok := bytes.CutPrefix(line, []byte("perch: ")); ok {
			return append([]byte("perch: "+name+": "), rest...)
		}
		return append([]byte(name+": "), line...)
	}
}
