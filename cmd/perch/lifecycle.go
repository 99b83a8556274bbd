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
	r, err := p.open(ctx)
	if err != nil {
		return err
	}
	defer r.close()
	if _, ok := r.router.(*proxy.Server); ok {
		proxy.TuneGC(a.getenv) // perch serves this proxy: keep collections out of its p99
	}
	router, flags := r.router, r.flags
	if r.fence != nil { // --ha: a replica that lost the lead touches nothing and stops
		router, flags = replica.Guard(router, r.fence), replica.GuardFlags(flags, r.fence)
		go func() {
			select {
			case <-r.fence.Down():
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	eng, err := engine.New(engine.Config{Spec: r.spec, Router: router, Source: r.source, Flags: flags, Journal: r.journal, Resume: r.rec, Linger: p.linger})
	if err != nil {
		return badInput(err)
	}
	s := &session{eng: eng, rollout: r, hangups: hangups}
	s.app, s.held = a.holdingStderr()
	stop, err := s.start(ctx, p)
	if err != nil {
		return err
	}
	r.started = true
	end := func(engine.Outcome) {}
	if p.begin != nil {
		end = p.begin(ctx, eng)
	}
	out, runErr := p.front.run(ctx, s)
	end(out)
	stop()
	return s.exit(out, runErr, p.stopped)
}

// start serves the control socket and /metrics, starts the integrations and prepares the
// front end; stop undoes them in reverse.
func (s *session) start(ctx context.Context, p supervision) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	r, a := s.rollout, s.app
	for _, start := range []func() (func(), error){
		func() (func(), error) {
			var target control.Target = s.eng
			if r.fence != nil {
				target = replica.Leading{Engine: s.eng, ID: r.replicaID}
			}
			return a.serveControl(ctx, target, r.spec, p.socket, p.socketGroup, r.journal.Path())
		},
		func() (func(), error) { return a.serveMetrics(p.metricsAddr, s.eng, r.router, r.source) },
		func() (func(), error) { return a.startIntegrations(ctx, r.spec, s.eng) },
		func() (func(), error) { return func() {}, p.front.prepare(s) },
	} {
		f, err := start()
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
