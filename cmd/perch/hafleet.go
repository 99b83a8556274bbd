package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/engine/replica"
)

// haFleet shares a fleet's rollouts with other replicas through the store --ha names: for each rollout this
// replica follows the leader's journal (serving the follower, which relays commands) and
// campaigns while it leads fewer than --ha-max-leading; once it wins, it runs the rollout as
// a takeover does (resuming from the journal in the store), and if it loses the lead it follows
// and campaigns again.
type haFleet struct {
	app     *app
	p       fleetSupervision
	hangups *hangups
	store   haStore
	leads   *leadCap
	metrics *prometheus.Registry // nil without --metrics-addr
}

// openHAFleet connects to the store for a fleet run with --ha; close disconnects.
func (a *app) openHAFleet(ctx context.Context, p fleetSupervision, hangups *hangups, metrics *prometheus.Registry) (*haFleet, error) {
	store, err := a.openStore(ctx, p.run)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(a.stderr, "perch: replica %s shares the rollouts through %s\n", store.ID(), p.run.ha.url)
	return &haFleet{app: a, p: p, hangups: hangups, store: store, leads: newLeadCap(p.run.ha.maxLeading), metrics: metrics}, nil
}

func (h *haFleet) close() { h.store.Close() }

// errEnded says a rollout won had already ended: another replica finished it.
var errEnded = errors.New("the rollout has ended")

// run is the fleet's RunFunc with --ha: follow, campaign, lead, and again after a lost lead,
// until the rollout has ended (here or on another replica) or ctx ends.
func (h *haFleet) run(ctx context.Context, st fleet.Start) (engine.Outcome, error) {
	spec := st.Spec
	if p := spec.Traffic.Proxy; p != nil && !p.Standalone() {
		return "", badInput(errors.New("with --ha, traffic.proxy must drive a standalone perch proxy (admin: …): a proxy inside perch would die with its replica"))
	}
	ra := *h.app
	ra.stdout = &lineEditor{w: h.app.stdout, edit: eventLine(spec.Name, h.p.run.output)}
	ra.stderr = &lineEditor{w: h.app.stderr, edit: reportLine(spec.Name)}
	ro := h.store.Rollout(spec.Name)
	for {
		follower, stopFollow := follow(ctx, ro, spec)
		st.Serve(follower, ro.Path())
		lead, out, err := h.campaign(ctx, ro, follower)
		stopFollow()
		if lead == nil {
			follower.Close()
			if ctx.Err() != nil {
				return engine.OutcomeStopped, nil // this replica stops; the leader carries on
			}
			return out, err
		}
		fmt.Fprintf(ra.stderr, "perch: replica %s leads %s\n", h.store.ID(), spec.Name)
		out, err, lost := h.lead(ctx, &ra, st, lead)
		follower.Close()
		h.leads.give()
		switch {
		case errors.Is(err, errEnded):
			return out, nil
		case !lost:
			return out, err
		}
		fmt.Fprintf(ra.stderr, "perch: replica %s lost the lead of %s; following it again\n", h.store.ID(), spec.Name)
	}
}

// ended says whether a followed rollout is over, and how: promoted, or rolled back when no
// engine lingers after a rollback for an operator's retry.
func (h *haFleet) ended(st engine.State) (engine.Outcome, bool) {
	switch {
	case st.Spec == nil:
	case st.Phase == engine.PhasePromoted:
		return engine.OutcomePromoted, true
	case st.Phase == engine.PhaseRolledBack && !h.p.linger:
		return engine.OutcomeRolledBack, true
	}
	return "", false
}

// campaign waits until this replica leads the rollout (having room under the cap), or the
// followed rollout has ended elsewhere (out), or ctx ends.
func (h *haFleet) campaign(ctx context.Context, ro haRollout, f *replica.Follower) (haLeadership, engine.Outcome, error) {
	states, unsubscribe := f.Subscribe()
	defer unsubscribe()
	for {
		if out, ok := h.ended(f.Snapshot()); ok {
			return nil, out, nil
		}
		full, changed := h.leads.state()
		if full { // at the cap: follow only, until a lead ends here or the rollout does
			select {
			case <-changed:
			case <-states:
			case <-ctx.Done():
				return nil, "", ctx.Err()
			}
			continue
		}
		cctx, cancel := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() { // stop campaigning once at the cap or once the rollout has ended
			defer close(watched)
			ch := changed
			for {
				select {
				case <-ch:
					var full bool
					if full, ch = h.leads.state(); full {
						cancel()
						return
					}
				case st, ok := <-states:
					if _, done := h.ended(st); done || !ok {
						cancel()
						return
					}
				case <-cctx.Done():
					return
				}
			}
		}()
		lead, err := ro.campaign(cctx)
		stoppedByUs := cctx.Err() != nil
		cancel()
		<-watched
		if err != nil {
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			if !stoppedByUs { // the store unreachable, a lease lost while waiting: try again shortly
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			}
			continue
		}
		if !h.leads.take() { // another campaign won at the same moment: give this one up
			lead.Resign(context.Background())
			continue
		}
		return lead, "", nil
	}
}

// lead runs the rollout while this replica leads it, as a rollout of the fleet runs, with its
// journal in the store. lost says the lead was lost before the rollout ended: a standby continues.
func (h *haFleet) lead(ctx context.Context, ra *app, st fleet.Start, lead haLeadership) (out engine.Outcome, err error, lost bool) {
	var ended engine.Outcome
	s, out, err := ra.live(ctx, h.hangups, life{
		open: func(ctx context.Context) (*rollout, error) {
			r, o, err := ra.openLead(ctx, st, lead, h.p.run)
			ended = o
			return r, err
		},
		linger: h.p.linger,
		around: []func(*session) (func(), error){
			func(s *session) (func(), error) { return s.app.startIntegrations(ctx, s.rollout.spec, s.eng) },
			func(s *session) (func(), error) {
				return fleetExporters(h.metrics, st.Spec.Name, s.rollout.router, s.rollout.source)
			},
			func(s *session) (func(), error) {
				st.Serve(replica.Leading{Engine: s.eng, ID: lead.ID()}, lead.Path())
				return func() {
					// Read before the journal closes, which gives the lead up.
					lost = ctx.Err() == nil && lead.Fence().Check() != nil && !s.eng.Snapshot().Phase.Done()
				}, nil
			},
		},
		run: headless{format: h.p.run.output}.run,
	})
	if s == nil {
		if errors.Is(err, errEnded) {
			return ended, err, false
		}
		return "", err, false
	}
	return out, err, lost
}

// openLead opens the rollout this replica now leads: its journal in the store, the recording to
// continue from (a takeover reconciles the provider's weight), its provider and source. A
// rollout that already ended (another replica finished it) gives the lead up at once and
// returns errEnded with how it ended.
func (a *app) openLead(ctx context.Context, st fleet.Start, lead haLeadership, f runFlags) (*rollout, engine.Outcome, error) {
	r := &rollout{spec: st.Spec, journal: lead, fence: lead.Fence(), replicaID: lead.ID(), commands: lead}
	rec, err := lead.Begin(ctx, st.Spec)
	if err != nil {
		lead.Close()
		return nil, "", runtimeError(err)
	}
	r.rec = rec
	if rec != nil {
		folded := rec.Fold()
		switch folded.Phase {
		case engine.PhasePromoted:
			lead.Close()
			return nil, engine.OutcomePromoted, errEnded
		case engine.PhaseRolledBack:
			// What is left is an operator's retry, which the replica that rolled it back
			// offered; the takeover ends it.
			lead.Close()
			return nil, engine.OutcomeRolledBack, errEnded
		}
		f.connect.restoreWeight = folded.Weight
	}
	b, err := a.registry.connect(ctx, st.Spec, f.connect)
	if err != nil {
		lead.Close()
		return nil, "", err
	}
	r.router, r.source, r.flags, r.release = b.router, b.source, b.flags, func() { b.close() }
	if err := preflight(ctx, st.Spec, b); err != nil {
		r.close()
		return nil, "", err
	}
	return r, "", nil
}

// leadCap counts the rollouts this replica leads against --ha-max-leading.
type leadCap struct {
	mu      sync.Mutex
	max, n  int
	changed chan struct{} // closed and replaced whenever n changes
}

func newLeadCap(max int) *leadCap { return &leadCap{max: max, changed: make(chan struct{})} }

// state says whether the cap is reached, and a channel closed at the next change.
func (c *leadCap) state() (full bool, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max > 0 && c.n >= c.max, c.changed
}

// take counts one more lead, if there is room.
func (c *leadCap) take() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.n >= c.max {
		return false
	}
	c.n++
	c.wakeLocked()
	return true
}

// give counts one lead less.
func (c *leadCap) give() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	c.wakeLocked()
}

func (c *leadCap) wakeLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}
