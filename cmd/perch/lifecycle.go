package main

import (
	"context"
	"fmt"
	"os"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/control"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/providers/proxy"
)

// supervision is what a verb that runs a rollout (run, serve, demo) asks of the one lifecycle
// they share: where the rollout comes from and how it is shown. Everything else — the order
// things start and stop in, and how the end maps to the exit code — is supervise's.
type supervision struct {
	// open loads the rollout, connects its provider and source and opens its journal.
	open func(ctx context.Context) (*rollout, error)
	// linger keeps the engine after a rollback until it is stopped, so an operator can retry.
	linger      bool
	socket      string // --socket: "" the default path, "none" no socket
	socketGroup string // --socket-group: a group whose members may use the socket too
	metricsAddr string // --metrics-addr: "" serves no /metrics
	front       frontEnd
	// begin, if set, runs once everything is up, just before the engine starts; the function it
	// returns runs once the engine has ended (the demo's load generator).
	begin func(ctx context.Context, eng *engine.Engine) (end func(engine.Outcome))
	// stopped words the exit of a run that stopped before the rollout ended (a signal, or the
	// operator chose to stop): how to resume it, say.
	stopped func(st engine.State, journalPath string) error
}

// frontEnd is what the operator sees while the engine runs: the terminal UI, the headless
// printer or the SSH server.
type frontEnd interface {
	// prepare gets ready before the engine's first event (the SSH server listens); an error
	// fails the start, leaving no journal behind.
	prepare(s *session) error
	// run runs the engine until the rollout ends or ctx ends, showing it, and returns how the
	// engine ended.
	run(ctx context.Context, s *session) (engine.Outcome, error)
}

// rollout is a rollout file (or the demo's rollout) connected to its provider and source and
// to its journal, ready for an engine.
type rollout struct {
	spec    *spec.Rollout
	router  engine.Router
	source  engine.Source
	flags   engine.Flags // the feature-flag system setFlag steps set flags in, if any
	journal journal
	rec     *engine.Recording // with --resume (or a takeover): what the journal recorded
	note    string            // shown in the TUI's status bar (the demo's proxy address)
	release func()            // lets go of the provider and source (or the demo's stack)
	// started is set once the engine runs; until then a journal this run created holds only
	// its header and is removed on close, so a failed start leaves no stray file.
	started bool
	// fence, with --ha, goes down when this replica no longer leads: nothing may change
	// traffic after it, and the engine stops. replicaID names this replica.
	fence     *replica.Fence
	replicaID string
	// commands, with --ha, runs the commands standbys relay through the store on this
	// leader's engine.
	commands commandServer
}

// commandServer is a leader's side of the store that relays standbys' commands
// (*etcd.Leadership): it runs each on t until ctx ends or the lead is lost.
type commandServer interface {
	ServeCommands(ctx context.Context, t replica.Target)
}

// journal is where a run records its events: a file (*engine.Journal) or, with --ha, etcd.
type journal interface {
	engine.EventSink
	Path() string
	Close() error
}

func (r *rollout) close() {
	if r.journal != nil {
		r.journal.Close()
		if j, ok := r.journal.(*engine.Journal); ok && !r.started && r.rec == nil {
			os.Remove(j.Path())
		}
	}
	if r.release != nil {
		r.release()
	}
}

// session is one supervised run once its engine exists.
type session struct {
	app     *app        // its stderr is held while a TUI owns the screen
	held    *heldWriter // the app's stderr
	eng     *engine.Engine
	rollout *rollout
	hangups *hangups // what SIGHUP does; the TUI changes it while it shows
}

// supervise runs one rollout: it opens it, then starts the engine and everything around it —
// the control socket, /metrics, the Alertmanager receiver and notifications, the front end —
// in that order, and once the engine has ended stops them in reverse and closes the journal
// and the provider. How the engine ended is the exit: 0 promoted, 1 rolled back, 3 stopped
// (a signal, the operator) or failed. A failure before the first event keeps its own code (2
// bad input, 3 runtime) and leaves no new journal behind.
func (a *app) supervise(ctx context.Context, p supervision) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hangups := a.watchHangups(func() {
		fmt.Fprintln(a.stderr, "perch: the terminal hung up (SIGHUP); stopping as for SIGTERM")
		cancel()
	})
	defer hangups.stop()
	s, out, err := a.live(ctx, hangups, life{
		open: p.open, linger: p.linger, begin: p.begin, run: p.front.run,
		around: []func(*session) (func(), error){
			func(s *session) (func(), error) {
				return s.app.serveControl(ctx, s.target(), s.rollout.spec, p.socket, p.socketGroup, s.rollout.journal.Path())
			},
			func(s *session) (func(), error) {
				return s.app.serveMetrics(p.metricsAddr, s.eng, s.rollout.router, s.rollout.source)
			},
			func(s *session) (func(), error) { return s.app.startIntegrations(ctx, s.rollout.spec, s.eng) },
			func(s *session) (func(), error) { return func() {}, p.front.prepare(s) },
		},
	})
	if s == nil {
		return err
	}
	return s.exit(out, err, p.stopped)
}

// life is one rollout's part of the lifecycle, whether it runs alone (supervise) or beside
// others in a fleet (superviseFleet): where it comes from, what runs around its engine, and
// how the engine runs.
type life struct {
	open   func(ctx context.Context) (*rollout, error)
	linger bool
	// around start in order once the engine exists, before it runs, and stop in reverse once
	// it has ended: the integrations, and for a rollout alone its control socket, /metrics
	// and front end.
	around []func(s *session) (stop func(), err error)
	begin  func(ctx context.Context, eng *engine.Engine) (end func(engine.Outcome))
	// run runs the engine until the rollout ends or ctx does.
	run func(ctx context.Context, s *session) (engine.Outcome, error)
}

// live runs one rollout: it opens it, builds its engine, starts what goes around it, runs it,
// stops what it started in reverse and closes the journal and the provider. It returns the
// session with how the engine ended, or no session when the start failed before the first
// event (the error then says why, and no new journal is left behind).
func (a *app) live(ctx context.Context, hangups *hangups, l life) (*session, engine.Outcome, error) {
	r, err := l.open(ctx)
	if err != nil {
		return nil, "", err
	}
	defer r.close()
	if _, ok := r.router.(*proxy.Server); ok {
		proxy.TuneGC(a.getenv) // perch serves this proxy: keep collections out of its p99
	}
	router, flags := r.router, r.flags
	if r.fence != nil { // --ha: a replica that lost the lead touches nothing and stops
		router, flags = replica.Guard(router, r.fence), replica.GuardFlags(flags, r.fence)
		var cancel context.CancelFunc
		ctx, cancel = r.fence.Bound(ctx)
		defer cancel()
	}
	eng, err := engine.New(engine.Config{Spec: r.spec, Router: router, Source: r.source, Flags: flags, Journal: r.journal, Resume: r.rec, Linger: l.linger})
	if err != nil {
		return nil, "", badInput(err)
	}
	if r.commands != nil { // --ha: commands sent to standbys reach this engine
		cctx, stopCommands := context.WithCancel(ctx)
		served := make(chan struct{})
		go func() {
			defer close(served)
			r.commands.ServeCommands(cctx, eng)
		}()
		defer func() {
			stopCommands()
			<-served
		}()
	}
	s := &session{eng: eng, rollout: r, hangups: hangups}
	s.app, s.held = a.holdingStderr()
	stop, err := s.start(l.around)
	if err != nil {
		return nil, "", err
	}
	r.started = true
	end := func(engine.Outcome) {}
	if l.begin != nil {
		end = l.begin(ctx, eng)
	}
	out, runErr := l.run(ctx, s)
	end(out)
	stop()
	return s, out, runErr
}

// target is what the control socket serves: the engine, marked as the leader with --ha.
func (s *session) target() control.Target {
	if s.rollout.fence != nil {
		return replica.Leading{Engine: s.eng, ID: s.rollout.replicaID}
	}
	return s.eng
}

// start starts what goes around the engine, in order; stop undoes them in reverse.
func (s *session) start(around []func(*session) (func(), error)) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	for _, start := range around {
		f, err := start(s)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, f)
	}
	return stop, nil
}

// exit turns how the engine ended into the verb's result, and so its exit code.
func (s *session) exit(out engine.Outcome, err error, stopped func(engine.State, string) error) error {
	st := s.eng.Snapshot()
	switch {
	case err != nil:
		return runtimeError(fmt.Errorf("stopped: %w", err))
	case out == engine.OutcomePromoted:
		return nil
	case out == engine.OutcomeRolledBack, st.Phase == engine.PhaseRolledBack:
		return exitWith(exitRolledBack) // a lingering engine stopped after a rollback, too
	}
	return runtimeError(stopped(st, s.rollout.journal.Path()))
}

// resumeHint words the end of a run or serve that stopped mid-rollout: how to continue it.
func resumeHint(specPath string) func(engine.State, string) error {
	return func(st engine.State, journalPath string) error {
		weight := "unknown"
		if st.Weight >= 0 {
			weight = fmt.Sprintf("%d%%", st.Weight)
		}
		return fmt.Errorf("stopped at step %d with the canary at %s; traffic was left as it is.\nResume with: perch run %s --resume --journal %s",
			st.Step+1, weight, specPath, journalPath)
	}
}

// headless prints one line per event (or the journal's JSON) while the engine runs.
type headless struct{ format string }

func (headless) prepare(*session) error { return nil }

func (h headless) run(ctx context.Context, s *session) (engine.Outcome, error) {
	printed := make(chan struct{})
	go printEvents(s.eng.Events(), s.app.stdout, s.eng.Spec(), h.format, printed)
	out, err := s.eng.Run(ctx)
	<-printed
	return out, err
}
