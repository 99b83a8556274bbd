package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/engine/replica/etcd"
	hakube "github.com/perchhq/perch/engine/replica/kube"
	"github.com/perchhq/perch/engine/spec"
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
	c.Flags().StringVar(&f.url, "ha", "", "share the rollout with other replicas through etcd://HOST:PORT[,HOST:PORT…]/PREFIX or kubernetes://NAMESPACE/NAME: one leads (acts and journals to the store), the others stand by and take over when it is gone")
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
		return badInput(errors.New("with --ha the journal lives in etcd (or, with kubernetes://, in ConfigMaps): --journal and --resume do not apply (a replica that takes over resumes by itself)"))
	}
	if strings.HasPrefix(f.url, "kubernetes://") {
		if f.cacert != "" || f.cert != "" || f.key != "" || f.user != "" {
			return badInput(errors.New("--ha-cacert, --ha-cert, --ha-key and --ha-user go with --ha etcd://; with kubernetes:// the cluster is reached as --kubeconfig and --context say"))
		}
		if _, _, err := hakube.ParseURL(f.url); err != nil {
			return badInput(fmt.Errorf("--ha: %w", err))
		}
		return nil
	}
	if _, _, err := etcd.ParseURL(f.url); err != nil {
		return badInput(fmt.Errorf("--ha: %w", err))
	}
	return nil
}

// haStore is the store --ha names (etcd or Kubernetes), connected: every rollout's election,
// journal and watch live in it.
type haStore interface {
	ID() string
	Rollout(name string) haRollout
	Close() error
}

// haRollout is one rollout's election, journal and watch in a store, and the relay that
// carries a standby's commands to the leader.
type haRollout interface {
	replica.Relay
	Path() string
	Follow(ctx context.Context, f *replica.Follower, rollout *spec.Rollout)
	campaign(ctx context.Context) (haLeadership, error)
}

// haLeadership is this replica leading one rollout: its journal, its fence, and the
// standbys' commands it runs.
type haLeadership interface {
	journal
	commandServer
	ID() string
	Fence() *replica.Fence
	Begin(ctx context.Context, rollout *spec.Rollout) (*engine.Recording, error)
	Resign(ctx context.Context) error
}

type etcdStore struct{ *etcd.Store }

func (s etcdStore) Rollout(name string) haRollout { return etcdRollout{s.Store.Rollout(name)} }

type etcdRollout struct{ *etcd.Rollout }

func (r etcdRollout) campaign(ctx context.Context) (haLeadership, error) {
	l, err := r.Campaign(ctx)
	if err != nil {
		return nil, err
	}
	return l, nil
}

type kubeStore struct{ *hakube.Store }

func (s kubeStore) Rollout(name string) haRollout { return kubeRollout{s.Store.Rollout(name)} }

type kubeRollout struct{ *hakube.Rollout }

func (r kubeRollout) campaign(ctx context.Context) (haLeadership, error) {
	l, err := r.Campaign(ctx)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// replicaID is --ha-id, or HOSTNAME-PID.
func replicaID(id string) string {
	if id != "" {
		return id
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// openStore connects to the store --ha names.
func (a *app) openStore(ctx context.Context, f runFlags) (haStore, error) {
	if strings.HasPrefix(f.ha.url, "kubernetes://") {
		ns, prefix, err := hakube.ParseURL(f.ha.url)
		if err != nil {
			return nil, badInput(fmt.Errorf("--ha: %w", err))
		}
		cluster, err := connectKube(f.connect) // --kubeconfig and --context, else in cluster
		if err != nil {
			return nil, runtimeError(err)
		}
		cfg := rest.CopyConfig(cluster.Config)
		// JSON is what every API server (and the test server) speaks; the store's writes are
		// a few a second, above client-go's default limit of 5 requests a second.
		cfg.ContentType, cfg.QPS, cfg.Burst = "application/json", 50, 100
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, runtimeError(fmt.Errorf("kubernetes client: %w", err))
		}
		store, err := hakube.Open(ctx, hakube.Config{Client: cs, Namespace: ns, Name: prefix, Lease: f.ha.lease, ID: replicaID(f.ha.id)})
		if err != nil {
			return nil, runtimeError(err)
		}
		return kubeStore{store}, nil
	}
	endpoints, prefix, err := etcd.ParseURL(f.ha.url)
	if err != nil {
		return nil, badInput(fmt.Errorf("--ha: %w", err))
	}
	cfg := etcd.Config{Endpoints: endpoints, Prefix: prefix, CACert: f.ha.cacert, Cert: f.ha.cert, Key: f.ha.key,
		Lease: f.ha.lease, ID: f.ha.id}
	if f.ha.user != "" {
		var ok bool
		cfg.Username, cfg.Password, ok = strings.Cut(f.ha.user, ":")
		if !ok {
			cfg.Password = a.getenv("PERCH_HA_PASSWORD")
		}
	}
	store, err := etcd.Open(ctx, cfg)
	if err != nil {
		return nil, runtimeError(err)
	}
	return etcdStore{store}, nil
}

// follow starts following ro's journal into a new follower, which relays its commands to
// the leader; stop ends the following (the follower serves its last state until closed).
func follow(ctx context.Context, ro haRollout, spec *spec.Rollout) (f *replica.Follower, stop func()) {
	f = replica.NewFollower(engine.NewState(spec))
	f.RelayTo(ro)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ro.Follow(ctx, f, spec)
	}()
	return f, func() {
		cancel()
		<-done
	}
}

// standby is what a verb shows while its replica waits to lead: it starts serving the
// follower (the control socket, SSH sessions, the terminal), which relays commands to the
// leader through the store, and returns how to stop.
type standby func(f *replica.Follower) (stop func(), err error)

// openHA connects to the store, stands by (showing the rollout as the leader journals it) until
// this replica leads, then opens the rollout as openRollout does, with the journal in the store and
// the recording to continue from, if any. The rollout's fence goes down if the lead is lost.
func (a *app) openHA(ctx context.Context, path string, f runFlags, show standby) (*rollout, error) {
	spec, err := loadSpec(path)
	if err != nil {
		return nil, err
	}
	if p := spec.Traffic.Proxy; p != nil && !p.Standalone() {
		return nil, badInput(errors.New("with --ha, traffic.proxy must drive a standalone perch proxy (admin: …): a proxy inside perch would die with its replica"))
	}
	store, err := a.openStore(ctx, f)
	if err != nil {
		return nil, err
	}
	ro, id := store.Rollout(spec.Name), store.ID()
	closeStore := func() { store.Close() }
	follower, stopFollow := follow(ctx, ro, spec)
	stopShow, err := show(follower)
	if err != nil {
		stopFollow()
		closeStore()
		return nil, err
	}
	fmt.Fprintf(a.stderr, "perch: replica %s standing by for %s (%s)\n", id, spec.Name, ro.Path())
	lead, err := ro.campaign(ctx)
	stopShow()
	stopFollow()
	follower.Close()
	if err != nil {
		closeStore()
		if ctx.Err() != nil {
			return nil, runtimeError(errors.New("stopped while standing by"))
		}
		return nil, runtimeError(fmt.Errorf("campaign for %s: %w", spec.Name, err))
	}
	fmt.Fprintf(a.stderr, "perch: replica %s leads %s\n", id, spec.Name)
	// commands: standbys' commands, relayed through the store
	r := &rollout{spec: spec, journal: lead, fence: lead.Fence(), replicaID: id, commands: lead}
	release := func() {
		lead.Close()
		closeStore()
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
		closeStore()
	}
	if err := preflight(ctx, spec, b); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// haStopped words the end of a leader that stopped mid-rollout: a standby continues.
func haStopped(st engine.State, journal string) error {
	return fmt.Errorf("stopped leading at step %d; traffic was left as it is, and a standby replica continues the rollout from %s", st.Step+1, journal)
}
