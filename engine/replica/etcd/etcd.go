// Package etcd keeps a rollout's journal and its leader election in etcd, so several perch
// replicas can supervise one rollout and a standby takes over when the leader's machine dies.
//
// Keys, under PREFIX/NAME/ for each rollout:
//
//	header              the journal's header (format, creation time, the rollout file)
//	events/SEQ          one event each (SEQ zero-padded to 16 digits), newest last
//	chunks/SEQ          compacted events from SEQ on, JSON lines, written in the same
//	                    transaction that deletes the events/ keys they replace
//	election/LEASE      the candidates (concurrency.Election): the oldest leads
//	commands/ID         a command a standby relays to the leader (see Relay)
//	answers/ID          the leader's answer to it
//
// Every write of the leader is a transaction that first compares the creation revision of its
// own election key: once its lease has expired that key is gone, so a deposed leader's write
// fails and it stops. Besides, the leader keeps a local deadline (replica.Fence) short of the
// lease's expiry on the server, moved on only by keep-alive answers, and refuses to write or
// touch traffic past it.
package etcd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/engine/spec"
)

// DefaultLease is how long a leader's lease lasts without a keep-alive.
const DefaultLease = 10 * time.Second

// Compaction: the tail of single-event keys is folded into one chunk key once it holds this
// many events or bytes, so a day-long rollout keeps a few hundred keys, not one per event.
const (
	chunkEvents = 500
	chunkBytes  = 256 << 10
)

// Config is how to reach etcd and how this replica campaigns.
type Config struct {
	// Endpoints are etcd's client URLs or HOST:PORT pairs.
	Endpoints []string
	// Prefix is where perch's keys go; each rollout has PREFIX/NAME/.
	Prefix string
	// CACert, Cert and Key are PEM files, as etcdctl's --cacert, --cert and --key: the CA
	// that signed etcd's certificate, and this client's certificate and key.
	CACert, Cert, Key string
	// Username and Password authenticate with etcd's auth (etcdctl --user NAME:PASSWORD).
	Username, Password string
	// Lease is the election lease's TTL (DefaultLease when zero); whole seconds, at least 1s.
	Lease time.Duration
	// ID names this replica in the election and in status (default HOSTNAME-PID).
	ID string
	// DialTimeout bounds connecting (5s when zero).
	DialTimeout time.Duration
}

// ParseURL reads etcd://HOST:PORT[,HOST:PORT…]/PREFIX into endpoints and a prefix.
func ParseURL(raw string) (endpoints []string, prefix string, err error) {
	rest, ok := strings.CutPrefix(raw, "etcd://")
	if !ok {
		return nil, "", fmt.Errorf("%q: want etcd://HOST:PORT[,HOST:PORT…]/PREFIX", raw)
	}
	hosts, prefix, _ := strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return nil, "", fmt.Errorf("%q: no /PREFIX for perch's keys", raw)
	}
	if strings.ContainsAny(prefix, "?#") {
		return nil, "", fmt.Errorf("%q: the prefix may not hold ? or #", raw)
	}
	for h := range strings.SplitSeq(hosts, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return nil, "", fmt.Errorf("%q: endpoint %q: want HOST:PORT", raw, h)
		}
		endpoints = append(endpoints, h)
	}
	return endpoints, "/" + prefix, nil
}

// Store is a connection to etcd for this replica.
type Store struct {
	cli    *clientv3.Client
	prefix string
	ttl    int // seconds
	id     string
	url    string
}

// Open connects to etcd and checks it answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	lease := cfg.Lease
	if lease == 0 {
		lease = DefaultLease
	}
	if lease < time.Second || lease%time.Second != 0 {
		return nil, fmt.Errorf("etcd: lease %s: want whole seconds, at least 1s", lease)
	}
	dial := cfg.DialTimeout
	if dial == 0 {
		dial = 5 * time.Second
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	id := cfg.ID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, DialTimeout: dial, TLS: tlsCfg,
		Username: cfg.Username, Password: cfg.Password,
		Logger: zap.NewNop(), // errors come back from calls; its own log would only repeat them on stderr
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	s := &Store{cli: cli, prefix: strings.TrimSuffix(cfg.Prefix, "/"), ttl: int(lease / time.Second), id: id,
		url: "etcd://" + strings.Join(cfg.Endpoints, ",") + cfg.Prefix}
	cctx, cancel := context.WithTimeout(ctx, dial)
	defer cancel()
	if _, err := cli.Get(cctx, s.prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return s, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	if cfg.CACert == "" && cfg.Cert == "" && cfg.Key == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s: no PEM certificate in it", cfg.CACert)
		}
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return nil, errors.New("etcd: a client certificate needs its key, and the key its certificate")
	}
	if cfg.Cert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// Close disconnects.
func (s *Store) Close() error { return s.cli.Close() }

// ID is this replica's name in elections.
func (s *Store) ID() string { return s.id }

// Client is the etcd client (for tests and tools that read the keys).
func (s *Store) Client() *clientv3.Client { return s.cli }

// Rollout is one rollout's keys.
func (s *Store) Rollout(name string) *Rollout {
	return &Rollout{s: s, name: name, dir: s.prefix + "/" + name + "/"}
}

// Rollout is one rollout's journal and election in etcd.
type Rollout struct {
	s    *Store
	name string
	dir  string
}

// Path names the journal for people: etcd://ENDPOINTS/PREFIX/NAME.
func (r *Rollout) Path() string { return r.s.url + "/" + r.name }

// Dir is the key prefix of the rollout's keys, with its trailing slash.
func (r *Rollout) Dir() string { return r.dir }

func (r *Rollout) headerKey() string         { return r.dir + "header" }
func (r *Rollout) eventKey(seq int64) string { return fmt.Sprintf("%sevents/%016d", r.dir, seq) }
func (r *Rollout) chunkKey(seq int64) string { return fmt.Sprintf("%schunks/%016d", r.dir, seq) }
func (r *Rollout) electionPrefix() string    { return r.dir + "election" }

// stored is the journal as read at one revision.
type stored struct {
	rec  *engine.Recording // nil: no header yet
	tail []tailEvent       // the events/ keys, oldest first
	rev  int64
}

type tailEvent struct {
	seq  int64
	line []byte
}

// load reads the journal: the header, the chunks in order, then the single events.
func (r *Rollout) load(ctx context.Context) (*stored, error) {
	resp, err := r.s.cli.Get(ctx, r.dir, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.Path(), err)
	}
	st := &stored{rev: resp.Header.Revision}
	var header []byte
	var buf bytes.Buffer
	for _, kv := range resp.Kvs {
		key := strings.TrimPrefix(string(kv.Key), r.dir)
		switch {
		case key == "header":
			header = kv.Value
		case strings.HasPrefix(key, "chunks/"):
			buf.Write(bytes.TrimRight(kv.Value, "\n"))
			buf.WriteByte('\n')
		case strings.HasPrefix(key, "events/"):
			var seq int64
			if _, err := fmt.Sscanf(strings.TrimPrefix(key, "events/"), "%d", &seq); err != nil {
				return nil, fmt.Errorf("%s: key %s: not an event key", r.Path(), kv.Key)
			}
			st.tail = append(st.tail, tailEvent{seq: seq, line: kv.Value})
		}
	}
	if header == nil {
		if buf.Len() > 0 || len(st.tail) > 0 {
			return nil, fmt.Errorf("%s: events without a journal header", r.Path())
		}
		return st, nil
	}
	all := append(bytes.TrimRight(header, "\n"), '\n')
	all = append(all, buf.Bytes()...)
	for _, t := range st.tail {
		all = append(append(all, t.line...), '\n')
	}
	if st.rec, err = replica.ReadJournal(r.Path(), bytes.NewReader(all)); err != nil {
		return nil, err
	}
	return st, nil
}

// Load reads the recording as it is now; nil when no leader has written its header yet.
func (r *Rollout) Load(ctx context.Context) (*engine.Recording, error) {
	st, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	return st.rec, nil
}

// Leader is the id of the replica leading the rollout now, "" when none does.
func (r *Rollout) Leader(ctx context.Context) (string, error) {
	resp, err := r.s.cli.Get(ctx, r.electionPrefix()+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", err
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// Follow keeps f at the journal's newest state until ctx ends: it loads the journal, then
// applies each event the leader appends, reloading when the watch loses its place (a gap, a
// compacted revision, a new header). rollout is the file this replica runs, shown until a
// leader writes the journal. It returns only when ctx ends.
func (r *Rollout) Follow(ctx context.Context, f *replica.Follower, rollout *spec.Rollout) {
	replica.Follow(ctx, func(ctx context.Context) error { return r.follow(ctx, f, rollout) })
}

func (r *Rollout) follow(ctx context.Context, f *replica.Follower, rollout *spec.Rollout) error {
	st, err := r.load(ctx)
	if err != nil {
		return err
	}
	header := f.Load(st.rec, rollout)
	if id, err := r.Leader(ctx); err == nil {
		f.SetLeader(id)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range r.s.cli.Watch(clientv3.WithRequireLeader(wctx), r.dir, clientv3.WithPrefix(), clientv3.WithRev(st.rev+1)) {
		if err := resp.Err(); err != nil {
			return err
		}
		for _, ev := range resp.Events {
			key := strings.TrimPrefix(string(ev.Kv.Key), r.dir)
			switch {
			case strings.HasPrefix(key, "election"):
				if id, err := r.Leader(ctx); err == nil {
					f.SetLeader(id)
				}
			case key == "header":
				return nil // a journal begun or removed: start over
			case ev.Type == clientv3.EventTypePut && strings.HasPrefix(key, "events/"):
				var e engine.Event
				if err := json.Unmarshal(ev.Kv.Value, &e); err != nil {
					return fmt.Errorf("%s: %s: %w", r.Path(), ev.Kv.Key, err)
				}
				if err := engine.CheckEvent(header, e); err != nil {
					return fmt.Errorf("%s: %s: %w", r.Path(), ev.Kv.Key, err)
				}
				if !f.Apply(e) {
					return nil // a gap: reload
				}
			}
		}
	}
	return ctx.Err()
}

// Campaign waits until this replica leads the rollout, or ctx ends. The leadership holds a
// lease of the store's TTL, kept alive until Resign or until it is lost.
func (r *Rollout) Campaign(ctx context.Context) (*Leadership, error) {
	ttl := time.Duration(r.s.ttl) * time.Second
	sent := time.Now()
	grant, err := r.s.cli.Grant(ctx, int64(r.s.ttl))
	if err != nil {
		return nil, fmt.Errorf("etcd lease: %w", err)
	}
	fence := replica.NewFence(sent.Add(ttl - margin(ttl)))
	sess, err := concurrency.NewSession(r.s.cli, concurrency.WithLease(grant.ID))
	if err != nil {
		return nil, fmt.Errorf("etcd session: %w", err)
	}
	l := &Leadership{r: r, sess: sess, fence: fence, ttl: ttl, stop: make(chan struct{}), done: make(chan struct{})}
	go l.keepAlive(grant.ID)
	l.election = concurrency.NewElection(sess, r.electionPrefix())
	cctx, cancel := fence.Bound(ctx) // a lease lost while waiting ends the campaign
	defer cancel()
	if err := l.election.Campaign(cctx, r.s.id); err != nil {
		if ferr := fence.Check(); ferr != nil && ctx.Err() == nil {
			err = ferr // the lease was lost while waiting
		}
		l.Resign(context.Background())
		return nil, err
	}
	if err := fence.Check(); err != nil {
		l.Resign(context.Background())
		return nil, err
	}
	return l, nil
}

// margin is how much sooner than the server the leader gives its lease up: enough for the
// clocks' rates to differ and for the last write to be refused locally rather than by etcd.
func margin(ttl time.Duration) time.Duration { return max(ttl/5, 200*time.Millisecond) }

// Leadership is this replica leading one rollout: the journal appends it makes are guarded by
// its election key, and its Fence goes down when the lease may be gone.
type Leadership struct {
	r        *Rollout
	sess     *concurrency.Session
	election *concurrency.Election
	fence    *replica.Fence
	ttl      time.Duration
	stop     chan struct{} // closed by Resign
	done     chan struct{} // closed when keepAlive returns

	tail      []tailEvent // the events/ keys not yet compacted
	tailBytes int
}

// Fence goes down when this replica may no longer act.
func (l *Leadership) Fence() *replica.Fence { return l.fence }

// ID is this replica's id.
func (l *Leadership) ID() string { return l.r.s.id }

// Path names the journal for people.
func (l *Leadership) Path() string { return l.r.Path() }

// keepAlive renews the lease every third of its TTL and moves the fence's deadline on from
// the time each renewal was sent: the server restarted the TTL no earlier than that, so the
// lease outlives the deadline. A lease the server no longer knows takes the fence down.
func (l *Leadership) keepAlive(id clientv3.LeaseID) {
	defer close(l.done)
	every := l.ttl / 3
	for {
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), every)
		resp, err := l.r.s.cli.KeepAliveOnce(ctx, id)
		cancel()
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound), err == nil && resp.TTL <= 0:
			l.fence.Lose(errors.New("the lease expired on etcd"))
		case err == nil:
			l.fence.Extend(sent.Add(time.Duration(resp.TTL)*time.Second - margin(l.ttl)))
		}
		wait := time.NewTimer(max(every-time.Since(sent), 0))
		select {
		case <-wait.C:
		case <-l.stop:
			wait.Stop()
			return
		case <-l.fence.Down():
			wait.Stop()
			return
		}
	}
}

// guard is the comparison every write of the leader makes: its election key still exists as
// it created it.
func (l *Leadership) guard() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.election.Key()), "=", l.election.Rev())
}

// txn runs a guarded transaction, bounded by the fence's deadline; a refused guard takes the
// fence down.
func (l *Leadership) txn(ops []clientv3.Op, cmps ...clientv3.Cmp) error {
	_, err := l.commit(ops, cmps...)
	return err
}

// commit is txn, returning etcd's answer.
func (l *Leadership) commit(ops []clientv3.Op, cmps ...clientv3.Cmp) (*clientv3.TxnResponse, error) {
	if err := l.fence.Check(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.ttl/2)
	defer cancel()
	ctx, stop := l.fence.Bound(ctx)
	defer stop()
	resp, err := l.r.s.cli.Txn(ctx).If(append([]clientv3.Cmp{l.guard()}, cmps...)...).Then(ops...).Commit()
	if err != nil {
		if ferr := l.fence.Check(); ferr != nil {
			return nil, ferr
		}
		return nil, fmt.Errorf("etcd: %w", err)
	}
	if !resp.Succeeded {
		l.fence.Lose(errors.New("another replica leads the rollout, or the journal changed"))
		return nil, l.fence.Check()
	}
	return resp, nil
}

// Begin reads the journal to continue from. With no journal yet it writes the header for
// rollout and returns nil: the rollout starts afresh. A journal with a header but no event is
// also a fresh start. Call it once, after Campaign.
func (l *Leadership) Begin(ctx context.Context, rollout *spec.Rollout) (*engine.Recording, error) {
	st, err := l.r.load(ctx)
	if err != nil {
		return nil, err
	}
	if st.rec == nil {
		line, err := json.Marshal(engine.Header{Journal: engine.JournalVersion, Created: time.Now().UTC(), Spec: rollout})
		if err != nil {
			return nil, err
		}
		hk := l.r.headerKey()
		return nil, l.txn([]clientv3.Op{clientv3.OpPut(hk, string(line))}, clientv3.Compare(clientv3.Version(hk), "=", 0))
	}
	l.tail = st.tail
	for _, t := range st.tail {
		l.tailBytes += len(t.line)
	}
	if len(st.rec.Events) == 0 {
		return nil, nil
	}
	return st.rec, nil
}

// Append journals one event: a transaction that writes it only while this replica leads and
// only where no event is. A failure is final for the engine (it records nothing more and
// stops), which is what a deposed leader must do.
func (l *Leadership) Append(ev engine.Event) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	key := l.r.eventKey(ev.Seq)
	if err := l.txn([]clientv3.Op{clientv3.OpPut(key, string(line))}, clientv3.Compare(clientv3.Version(key), "=", 0)); err != nil {
		return err
	}
	l.tail = append(l.tail, tailEvent{seq: ev.Seq, line: line})
	l.tailBytes += len(line)
	if len(l.tail) >= chunkEvents || l.tailBytes >= chunkBytes {
		l.compact() // a failed compaction is tried again after the next event
	}
	return nil
}

// compact replaces the tail's single-event keys with one chunk, in one guarded transaction.
func (l *Leadership) compact() {
	var buf bytes.Buffer
	for _, t := range l.tail {
		buf.Write(t.line)
		buf.WriteByte('\n')
	}
	first, last := l.tail[0].seq, l.tail[len(l.tail)-1].seq
	ck := l.r.chunkKey(first)
	ops := []clientv3.Op{
		clientv3.OpPut(ck, buf.String()),
		clientv3.OpDelete(l.r.eventKey(first), clientv3.WithRange(l.r.eventKey(last+1))),
	}
	if l.txn(ops, clientv3.Compare(clientv3.Version(ck), "=", 0)) == nil {
		l.tail, l.tailBytes = nil, 0
	}
}

// Close gives the lead up: it stops renewing and revokes the lease, so a standby takes over
// at once rather than after the TTL. It implements the journal's Close.
func (l *Leadership) Close() error { return l.Resign(context.Background()) }

// Resign gives the lead up, as Close.
func (l *Leadership) Resign(ctx context.Context) error {
	select {
	case <-l.stop:
		return nil
	default:
	}
	close(l.stop)
	l.fence.Lose(errors.New("resigned"))
	<-l.done
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := l.r.s.cli.Revoke(ctx, l.sess.Lease())
	l.sess.Orphan()
	return err
}

var _ engine.EventSink = (*Leadership)(nil)
