// Command habench measures perch's replication through etcd on this machine: how long after
// the leader is killed (SIGKILL) a standby has taken over and journaled its first event, and
// how many events a second a leader can journal.
//
//	go run ./cmd/habench -kills 20 -lease 10s
//
// It starts Debian's etcd (etcd-server) on loopback and three replicas, each this program run
// again with -replica: an engine on a rollout that waits in a long pause step, journaling to
// etcd through engine/replica/etcd. It kills the leader, times until the next leader's first
// event is in etcd, starts a fresh replica in its place, and repeats.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/engine/replica/etcd"
	"github.com/perchhq/perch/engine/replica/etcd/etcdtest"
	"github.com/perchhq/perch/engine/spec"
)

// rolloutYAML waits in a pause step for an hour: the engine is idle, so what a takeover
// journals (reconciled) is the takeover itself.
const rolloutYAML = `name: bench
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {stabilization: 0s}
steps:
  - setWeight: 10
  - pause: {duration: 1h}
`

func main() {
	replicaMode := flag.Bool("replica", false, "run as one replica (habench starts these itself)")
	endpoint := flag.String("endpoint", "", "etcd endpoint (replica mode)")
	id := flag.String("id", "", "replica id (replica mode)")
	kills := flag.Int("kills", 20, "how many leaders to kill")
	lease := flag.Duration("lease", 10*time.Second, "the election lease (--ha-lease)")
	appends := flag.Int("appends", 2000, "events to journal when measuring the write rate")
	flag.Parse()
	if *replicaMode {
		if err := runReplica(*endpoint, *id, *lease); err != nil {
			fmt.Fprintln(os.Stderr, "habench replica:", err)
			os.Exit(1)
		}
		return
	}
	if err := bench(*kills, *lease, *appends); err != nil {
		fmt.Fprintln(os.Stderr, "habench:", err)
		os.Exit(1)
	}
}

func parse() (*spec.Rollout, error) { return spec.Parse("bench.yaml", []byte(rolloutYAML)) }

func runReplica(endpoint, id string, lease time.Duration) error {
	rollout, err := parse()
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, err := etcd.Open(ctx, etcd.Config{Endpoints: []string{endpoint}, Prefix: "/bench", ID: id, Lease: lease})
	if err != nil {
		return err
	}
	lead, err := store.Rollout("bench").Campaign(ctx)
	if err != nil {
		return err
	}
	rec, err := lead.Begin(ctx, rollout)
	if err != nil {
		return err
	}
	// The replica's provider starts where the journal says traffic is, as a provider shared
	// by every replica would.
	router := &enginetest.Router{}
	if rec != nil {
		router.SetWeight(ctx, rec.Fold().Weight)
	}
	eng, err := engine.New(engine.Config{Spec: rollout, Router: replica.Guard(router, lead.Fence()), Journal: lead, Resume: rec})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	go func() { <-lead.Fence().Down(); cancel() }()
	_, err = eng.Run(rctx)
	return err
}

type proc struct {
	id   string
	cmd  *exec.Cmd
	done chan struct{}
}

func bench(kills int, lease time.Duration, appends int) error {
	dir, err := os.MkdirTemp("", "habench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := etcdtest.Launch(dir)
	if err != nil {
		return err
	}
	defer srv.Stop()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	store, err := etcd.Open(context.Background(), etcd.Config{Endpoints: []string{srv.Endpoint}, Prefix: "/bench", ID: "habench"})
	if err != nil {
		return err
	}
	defer store.Close()
	ro := store.Rollout("bench")

	procs := map[string]*proc{}
	next := 0
	spawn := func() error {
		next++
		p := &proc{id: fmt.Sprintf("r%d", next), done: make(chan struct{})}
		p.cmd = exec.Command(self, "-replica", "-endpoint", srv.Endpoint, "-id", p.id, "-lease", lease.String())
		p.cmd.Stderr = os.Stderr
		if err := p.cmd.Start(); err != nil {
			return err
		}
		go func() { p.cmd.Wait(); close(p.done) }()
		procs[p.id] = p
		return nil
	}
	defer func() {
		for _, p := range procs {
			p.cmd.Process.Kill()
			<-p.done
		}
	}()
	for range 3 {
		if err := spawn(); err != nil {
			return err
		}
	}
	// takeovers counts the reconciled events: each new leader journals one first.
	takeoversSoFar := func() (n int, paused bool) {
		rec, err := ro.Load(context.Background())
		if err != nil || rec == nil {
			return 0, false
		}
		for _, ev := range rec.Events {
			if ev.Type == engine.EventReconciled {
				n++
			}
		}
		return n, rec.Fold().Phase == engine.PhasePaused
	}
	waitLeader := func(not string) (string, error) {
		for deadline := time.Now().Add(3 * lease); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if id, err := ro.Leader(context.Background()); err == nil && id != "" && id != not {
				return id, nil
			}
		}
		return "", fmt.Errorf("no new leader within %s", 3*lease)
	}
	leader, err := waitLeader("")
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, paused := takeoversSoFar(); paused {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the first leader did not reach the pause step")
		}
	}
	var takeovers []time.Duration
	for k := range kills {
		// Kill at a random point of the keep-alive cycle, as a crash would come.
		time.Sleep(time.Duration(k%7) * lease / 7)
		before, _ := takeoversSoFar()
		p := procs[leader]
		killed := time.Now()
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		delete(procs, leader)
		if err := spawn(); err != nil {
			return err
		}
		for n, _ := takeoversSoFar(); n == before; n, _ = takeoversSoFar() {
			if time.Since(killed) > 3*lease {
				return fmt.Errorf("kill %d: no standby journaled within %s", k+1, 3*lease)
			}
			time.Sleep(2 * time.Millisecond)
		}
		d := time.Since(killed)
		takeovers = append(takeovers, d)
		if leader, err = waitLeader(leader); err != nil {
			return err
		}
		fmt.Printf("kill %2d: takeover in %s\n", k+1, d.Round(time.Millisecond))
	}
	if len(takeovers) > 0 {
		slices.Sort(takeovers)
		fmt.Printf("takeover after kill -9, lease %s, %d kills: median %s, min %s, max %s\n", lease, len(takeovers),
			takeovers[len(takeovers)/2].Round(time.Millisecond), takeovers[0].Round(time.Millisecond), takeovers[len(takeovers)-1].Round(time.Millisecond))
	}
	for _, p := range procs {
		p.cmd.Process.Kill()
		<-p.done
	}
	clear(procs)
	return writeRate(store, appends)
}

// writeRate journals n events back to back, as one leader does, and reports the rate.
func writeRate(store *etcd.Store, n int) error {
	rollout, err := parse()
	if err != nil {
		return err
	}
	ctx := context.Background()
	lead, err := store.Rollout("rate").Campaign(ctx)
	if err != nil {
		return err
	}
	defer lead.Close()
	if _, err := lead.Begin(ctx, rollout); err != nil {
		return err
	}
	actor := &engine.Actor{Name: "habench", Role: engine.RoleOperator}
	start := time.Now()
	for i := int64(1); i <= int64(n); i++ {
		if err := lead.Append(engine.Event{Seq: i, Time: time.Now(), Type: engine.EventNote, Actor: actor, Reason: "a note of about the size of a look's reason"}); err != nil {
			return err
		}
	}
	d := time.Since(start)
	keys, err := store.Client().Get(ctx, store.Rollout("rate").Dir(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	fmt.Printf("journal: %d events in %s: %.0f events/s (one guarded transaction each, %s per event); %d keys after compaction\n",
		n, d.Round(time.Millisecond), float64(n)/d.Seconds(), (d / time.Duration(n)).Round(time.Microsecond), keys.Count)
	return nil
}
