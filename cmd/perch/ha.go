package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/engine/replica/etcd"
)

// haFlags say where replicas of a rollout meet (--ha) and how to reach it.
type haFlags struct {
	url    string
	lease  time.Duration
	cacert string
	cert   string
	key    string
	user   string
	id     string
	// maxLeading caps the rollouts of a fleet this replica leads at once; 0: no cap.
	maxLeading int
}

func addHAFlags(c *cobra.Command, f *haFlags) {
	c.Flags().StringVar(&f.url, "ha", "", "share the rollout with other replicas through etcd://HOST:PORT[,HOST:PORT…]/PREFIX: one leads (acts and journals to etcd), the others stand by and take over when it is gone")
	c.Flags().DurationVar(&f.lease, "ha-lease", etcd.DefaultLease, "the leader's lease: a standby takes over within about this long after the leader is lost (whole seconds)")
	c.Flags().StringVar(&f.cacert, "ha-cacert", "", "with --ha: CA certificate that signed etcd's (PEM), as etcdctl --cacert")
	c.Flags().StringVar(&f.cert, "ha-cert", "", "with --ha: client certificate for etcd (PEM), as etcdctl --cert")
	c.Flags().StringVar(&f.key, "ha-key", "", "with --ha: the client certificate's key (PEM), as etcdctl --key")
	c.Flags().StringVar(&f.user, "ha-user", "", "with --ha: etcd user NAME[:PASSWORD], as etcdctl --user (the password may come from $PERCH_HA_PASSWORD instead)")
	c.Flags().StringVar(&f.id, "ha-id", "", "with --ha: this replica's name in the election and in status (default HOSTNAME-PID)")
	c.Flags().IntVar(&f.maxLeading, "ha-max-leading", 0, "with --ha and several rollouts: lead at most N of them at once, following the rest (0: no cap)")
}

// check refuses --ha-* options without --ha, and --ha with a file journal.
func (f haFlags) check(journal string, resume bool) error {
	if f.url == "" {
		if f.cacert != "" || f.cert != "" || f.key != "" || f.user != "" || f.id != "" || f.lease != etcd.DefaultLease || f.maxLeading != 0 {
			return badInput(errors.New("--ha-lease, --ha-cacert, --ha-cert, --ha-key, --ha-user, --ha-id and --ha-max-leading go with --ha"))
		}
		return nil
	}
	if f.maxLeading < 0 {
		return badInput(fmt.Errorf("--ha-max-leading %d: want 0 (no cap) or more", f.maxLeading))
	}
	if f.lease < time.Second || f.lease%time.Second != 0 {
		return badInput(fmt.Errorf("--ha-lease %s: want whole seconds, at least 1s (etcd leases count seconds)", f.lease))
	}
	if journal != "" || resume {
		return badInput(errors.New("with --ha the journal lives in etcd: --journal and --resume do not apply (a replica that takes over resumes by itself)"))
	}
	if _, _, err := etcd.ParseURL(f.url); err != nil {
		return badInput(fmt.Errorf("--ha: %w", err))
	}
	return nil
}

// standby is what a verb shows while its replica waits to lead: it starts serving the
// follower (the control socket, SSH sessions), which relays commands to the leader, and
// returns how to stop.
type standby func(f *replica.Follower) (stop func(), err error)

// openHA connects to etcd, stands by (showing the rollout as the leader journals it) until
// this replica leads, then opens the rollout as openRollout does, with the journal in etcd and
// the recording to continue from, if any. The rollout's fence goes down if the lead is lost.
func (a *app) openHA(ctx context.Context, path string, f runFlags, show standby) (*rollout, error) {
	spec, err := loadSpec(path)
	if err != nil {
		return nil, err
	}
	if p := spec.Traffic.Proxy; p != nil && !p.Standalone() {
		return nil, badInput(errors.New("with --ha, traffic.proxy must drive a standalone perch proxy (admin: …): a proxy inside perch would die with its replica"))
	}
	store, err := a.openStore(ctx, f.ha)
	if err != nil {
		return nil, err
	}
	ro := store.Rollout(spec.Name)
	follower := replica.NewFollower(engine.NewState(spec))
	follower.RelayTo(ro)
	fctx, stopFollow := context.WithCancel(ctx)
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		ro.Follow(fctx, follower, spec)
	}()
	stopShow, err := show(follower)
	if err != nil {
		stopFollow()
		<-followed
		store.Close()
		return nil, err
	}
	fmt.Fprintf(a.stderr, "perch: replica %s standing by for %s (%s)\n", store.ID(), spec.Name, ro.Path())
	lead, err := ro.Campaign(ctx)
	stopShow()
	stopFollow()
	<-followed
	follower.Close()
	if err != nil {
		store.Close()
		if ctx.Err() != nil {
			return nil, runtimeError(errors.New("stopped while standing by"))
		}
		return nil, runtimeError(fmt.Errorf("campaign for %s: %w", spec.Name, err))
	}
	fmt.Fprintf(a.stderr, "perch: replica %s leads %s\n", store.ID(), spec.Name)
	r := &rollout{spec: spec, journal: lead, fence: lead.Fence(), replicaID: store.ID(), commands: lead}
	release := func() {
		lead.Close()
		store.Close()
	}
	if r.rec, err = lead.Begin(ctx, spec); err != nil {
		release()
		return nil, runtimeError(err)
	}
	if r.rec != nil {
		f.connect.restoreWeight = r.rec.Fold().Weight
	}
	b, err := a.registry.connect(ctx, spec, f.connect)
	if err != nil {
		release()
		return nil, err
	}
	r.router, r.source, r.flags = b.router, b.source, b.flags
	r.release = func() {
		b.close()
		store.Close()
	}
	if err := preflight(ctx, spec, b); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// openStore connects to the etcd --ha names, as --ha-* say.
func (a *app) openStore(ctx context.Context, f haFlags) (*etcd.Store, error) {
	endpoints, prefix, err := etcd.ParseURL(f.url)
	if err != nil {
		return nil, badInput(fmt.Errorf("--ha: %w", err))
	}
	cfg := etcd.Config{Endpoints: endpoints, Prefix: prefix, CACert: f.cacert, Cert: f.cert, Key: f.key,
		Lease: f.lease, ID: f.id}
	if f.user != "" {
		var ok bool
		cfg.Username, cfg.Password, ok = strings.Cut(f.user, ":")
		if !ok {
			cfg.Password = a.getenv("PERCH_HA_PASSWORD")
		}
	}
	store, err := etcd.Open(ctx, cfg)
	if err != nil {
		return nil, runtimeError(err)
	}
	return store, nil
}

// haStopped words the end of a leader that stopped mid-rollout: a standby continues.
func haStopped(st engine.State, journal string) error {
	return fmt.Errorf("stopped leading at step %d; traffic was left as it is, and a standby replica continues the rollout from %s", st.Step+1, journal)
}
