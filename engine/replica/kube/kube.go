// Package kube keeps a rollout's journal and its leader election in a Kubernetes namespace, so
// several perch replicas (pods of one Deployment, say) can supervise one rollout and a standby
// takes over when the leader's pod dies.
//
// Objects, in NAMESPACE for the rollout ROLLOUT under the store's NAME (--ha
// kubernetes://NAMESPACE/NAME):
//
//	Lease NAME-ROLLOUT                 the election (client-go leaderelection)
//	ConfigMap NAME-ROLLOUT-journal-N   the journal, N = 0, 1, …; labelled
//	                                   perch.dev/journal=NAME-ROLLOUT
//	ConfigMap NAME-ROLLOUT-cmd-ID      a command a standby relays to the leader, and
//	ConfigMap NAME-ROLLOUT-ans-ID      the leader's answer (commands.go), short-lived
//
// Journal ConfigMaps hold the header (key "header", in -journal-0), single events (keys
// e-SEQ, SEQ zero-padded to 16 digits) and compacted chunks (keys c-FIRSTSEQ, JSON lines).
// The newest is the open one; its data is kept under 256 KiB (the API server takes 1 MiB, but
// it stores every change as the whole object and sends it whole to each watch, so a smaller
// object keeps the cluster's etcd history small): when an event would not fit, the leader seals it (annotation perch.dev/sealed) and
// creates the next. Every write carries the resourceVersion the leader last saw, so it fails
// with a conflict if anyone else wrote in between: appends, compactions and seals are JSON
// merge patches that send only the keys they change (a resourceVersion in a patch's metadata
// is a precondition as in an update), the claim below is an update. A new leader's first
// write bumps the annotations perch.dev/leader and perch.dev/term on the open ConfigMap, so a
// deposed leader's next append conflicts, the engine's journal fails and it stops.
//
// Besides, the leader keeps a local deadline (replica.Fence) that only a successful renewal
// of its Lease moves on, to the time the renewal was sent + the lease duration − a margin;
// standbys wait a full lease duration from when they saw the last renewal, so the deadline
// falls first.
package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/engine/spec"
)

// DefaultLease is how long a leader's Lease lasts without a renewal.
const DefaultLease = 10 * time.Second

// Labels and annotations on the journal's ConfigMaps.
const (
	LabelJournal     = "perch.dev/journal"
	AnnotationLeader = "perch.dev/leader"
	AnnotationTerm   = "perch.dev/term"
	AnnotationSealed = "perch.dev/sealed"
)

// Limits: a journal ConfigMap's data is kept under limitBytes. The API server refuses more
// than 1 MiB, but each write stores (and sends every watcher) the whole object, half the limit
// on average: at a look a second a 900 KiB limit would put ~450 KiB a second of history into
// the cluster's etcd per rollout. The single events of the open one are folded into a chunk
// every chunkEvents.
const (
	limitBytes  = 256 << 10
	chunkEvents = 500
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ParseURL reads kubernetes://NAMESPACE/NAME.
func ParseURL(raw string) (namespace, name string, err error) {
	rest, ok := strings.CutPrefix(raw, "kubernetes://")
	if !ok {
		return "", "", fmt.Errorf("%q: want kubernetes://NAMESPACE/NAME", raw)
	}
	namespace, name, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", fmt.Errorf("%q: want kubernetes://NAMESPACE/NAME", raw)
	}
	if !dnsLabel.MatchString(namespace) || len(namespace) > 63 {
		return "", "", fmt.Errorf("%q: namespace %q: want lowercase letters, digits and '-'", raw, namespace)
	}
	if !dnsLabel.MatchString(name) || len(name) > 40 {
		return "", "", fmt.Errorf("%q: name %q: want up to 40 lowercase letters, digits and '-' (it prefixes the Lease and ConfigMap names)", raw, name)
	}
	return namespace, name, nil
}

// Config is where the replicas meet and how this one campaigns.
type Config struct {
	// Client talks to the cluster. It must send JSON or protobuf as the API server accepts.
	Client kubernetes.Interface
	// Namespace holds the Leases and ConfigMaps.
	Namespace string
	// Name prefixes the objects' names: NAME-ROLLOUT.
	Name string
	// Lease is the Lease's duration (DefaultLease when zero); whole seconds, at least 1s.
	Lease time.Duration
	// ID names this replica in the Lease and in status (default HOSTNAME-PID, set by the caller).
	ID string
}

// Store is this replica's access to the namespace.
type Store struct {
	cs    kubernetes.Interface
	ns    string
	name  string
	id    string
	lease time.Duration
	limit int // a journal ConfigMap's data at most: limitBytes (tests make it smaller)
	chunk int // single events folded into a chunk: chunkEvents (tests make it smaller)
}

// Open checks the configuration and that the namespace's ConfigMaps can be listed.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	lease := cfg.Lease
	if lease == 0 {
		lease = DefaultLease
	}
	if lease < time.Second || lease%time.Second != 0 {
		return nil, fmt.Errorf("kubernetes: lease %s: want whole seconds, at least 1s", lease)
	}
	if cfg.ID == "" {
		return nil, errors.New("kubernetes: no replica id")
	}
	s := &Store{cs: cfg.Client, ns: cfg.Namespace, name: cfg.Name, id: cfg.ID, lease: lease, limit: limitBytes, chunk: chunkEvents}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.cs.CoreV1().ConfigMaps(s.ns).List(cctx, metav1.ListOptions{Limit: 1, LabelSelector: LabelJournal}); err != nil {
		return nil, fmt.Errorf("kubernetes: list configmaps in %s: %w", s.ns, err)
	}
	return s, nil
}

// Close releases nothing: the client has no connection of its own to close.
func (s *Store) Close() error { return nil }

// ID is this replica's name in elections.
func (s *Store) ID() string { return s.id }

// Rollout is one rollout's objects. A rollout name that cannot be part of a Kubernetes object
// name makes every call fail.
func (s *Store) Rollout(name string) *Rollout {
	r := &Rollout{s: s, name: name, base: s.name + "-" + name}
	if !dnsLabel.MatchString(r.base) || len(r.base) > 63 {
		r.err = fmt.Errorf("rollout %q: with --ha kubernetes:// the rollout's name must be lowercase letters, digits and '-', at most %d of them", name, 63-len(s.name)-1)
	}
	return r
}

// Rollout is one rollout's journal and election in the namespace.
type Rollout struct {
	s    *Store
	name string
	base string
	err  error
}

// Path names the journal for people: kubernetes://NAMESPACE/NAME/ROLLOUT.
func (r *Rollout) Path() string {
	return fmt.Sprintf("kubernetes://%s/%s/%s", r.s.ns, r.s.name, r.name)
}

// Base is the Lease's name and the ConfigMaps' prefix.
func (r *Rollout) Base() string { return r.base }

func (r *Rollout) cmName(n int) string { return fmt.Sprintf("%s-journal-%d", r.base, n) }

func eventKey(seq int64) string { return fmt.Sprintf("e-%016d", seq) }
func chunkKey(seq int64) string { return fmt.Sprintf("c-%016d", seq) }

// entry is one data key of a journal ConfigMap: an event or a chunk starting at seq.
type entry struct {
	seq   int64
	chunk bool
	key   string
	value string
}

// entries lists a ConfigMap's events and chunks by sequence.
func entries(cm *corev1.ConfigMap) ([]entry, error) {
	var out []entry
	for k, v := range cm.Data {
		if k == "header" {
			continue
		}
		kind, num, ok := strings.Cut(k, "-")
		seq, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || (kind != "e" && kind != "c") {
			return nil, fmt.Errorf("configmap %s: key %q: not a journal key", cm.Name, k)
		}
		out = append(out, entry{seq: seq, chunk: kind == "c", key: k, value: v})
	}
	slices.SortFunc(out, func(a, b entry) int { return int(a.seq - b.seq) })
	return out, nil
}

// journalIndex is N of NAME-ROLLOUT-journal-N, -1 for another name.
func (r *Rollout) journalIndex(name string) int {
	num, ok := strings.CutPrefix(name, r.base+"-journal-")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 0 || strconv.Itoa(n) != num {
		return -1
	}
	return n
}

// stored is the journal as read at one resourceVersion.
type stored struct {
	rec *engine.Recording // nil: no header yet
	cms []*corev1.ConfigMap
	rv  string
}

func (r *Rollout) list(ctx context.Context) ([]*corev1.ConfigMap, string, error) {
	list, err := r.s.cs.CoreV1().ConfigMaps(r.s.ns).List(ctx, metav1.ListOptions{LabelSelector: LabelJournal + "=" + r.base})
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", r.Path(), err)
	}
	var cms []*corev1.ConfigMap
	for i := range list.Items {
		if r.journalIndex(list.Items[i].Name) >= 0 {
			cms = append(cms, &list.Items[i])
		}
	}
	slices.SortFunc(cms, func(a, b *corev1.ConfigMap) int { return r.journalIndex(a.Name) - r.journalIndex(b.Name) })
	for i, cm := range cms {
		if r.journalIndex(cm.Name) != i {
			return nil, "", fmt.Errorf("%s: configmap %s is missing", r.Path(), r.cmName(i))
		}
	}
	return cms, list.ResourceVersion, nil
}

// load reads the journal: the header, then every ConfigMap's chunks and events in order.
func (r *Rollout) load(ctx context.Context) (*stored, error) {
	if r.err != nil {
		return nil, r.err
	}
	cms, rv, err := r.list(ctx)
	if err != nil {
		return nil, err
	}
	st := &stored{cms: cms, rv: rv}
	if len(cms) == 0 {
		return st, nil
	}
	header, ok := cms[0].Data["header"]
	if !ok {
		return nil, fmt.Errorf("%s: %s has no journal header", r.Path(), cms[0].Name)
	}
	var buf bytes.Buffer
	buf.WriteString(strings.TrimRight(header, "\n"))
	buf.WriteByte('\n')
	for _, cm := range cms {
		es, err := entries(cm)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Path(), err)
		}
		for _, e := range es {
			buf.WriteString(strings.TrimRight(e.value, "\n"))
			buf.WriteByte('\n')
		}
	}
	if st.rec, err = replica.ReadJournal(r.Path(), &buf); err != nil {
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

// Leader is the holder of the rollout's Lease, "" when none holds it.
func (r *Rollout) Leader(ctx context.Context) (string, error) {
	l, err := r.s.cs.CoordinationV1().Leases(r.s.ns).Get(ctx, r.base, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil || l.Spec.HolderIdentity == nil {
		return "", err
	}
	return *l.Spec.HolderIdentity, nil
}

// Follow keeps f at the journal's newest state until ctx ends: it lists the journal, then
// watches its ConfigMaps and folds the events each change adds, listing again when the watch
// ends (at least every minute), a ConfigMap goes, or an event would leave a gap. rollout is
// the file this replica runs, shown until a leader writes the journal.
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
	timeout := int64(60)
	w, err := r.s.cs.CoreV1().ConfigMaps(r.s.ns).Watch(ctx, metav1.ListOptions{
		LabelSelector: LabelJournal + "=" + r.base, ResourceVersion: st.rv, TimeoutSeconds: &timeout})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		cm, ok := ev.Object.(*corev1.ConfigMap)
		switch {
		case ev.Type == watch.Error, !ok:
			return fmt.Errorf("%s: watch: %v", r.Path(), apierrors.FromObject(ev.Object))
		case ev.Type == watch.Deleted, st.rec == nil:
			return nil // a journal removed or begun: start over
		case r.journalIndex(cm.Name) < 0:
			continue
		}
		if id := cm.Annotations[AnnotationLeader]; id != "" {
			f.SetLeader(id)
		}
		es, err := entries(cm)
		if err != nil {
			return err
		}
		seen := f.Snapshot().Seq
		for _, e := range es {
			if e.seq <= seen {
				continue
			}
			evs, err := decode(e)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", r.Path(), cm.Name, err)
			}
			for _, ev := range evs {
				if err := engine.CheckEvent(header, ev); err != nil {
					return fmt.Errorf("%s: %s: %w", r.Path(), cm.Name, err)
				}
			}
			if !f.Apply(evs...) {
				return nil // a gap: reload
			}
		}
	}
	return ctx.Err()
}

// decode reads an entry's events.
func decode(e entry) ([]engine.Event, error) {
	var out []engine.Event
	for line := range strings.SplitSeq(strings.TrimRight(e.value, "\n"), "\n") {
		var ev engine.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			return nil, fmt.Errorf("key %s: %w", e.key, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// margin is how much sooner than the standbys the leader gives its Lease up: enough for the
// clocks' rates to differ and for the last write to be refused locally.
func margin(ttl time.Duration) time.Duration { return max(ttl/5, 200*time.Millisecond) }

// fencedLock is the Lease lock that feeds the fence: each successful create or update naming
// this replica as holder moves the deadline to when it was sent + the lease − the margin.
type fencedLock struct {
	resourcelock.Interface
	id  string
	ttl time.Duration

	mu    sync.Mutex
	fence *replica.Fence // nil until leading starts
	last  time.Time      // when the newest confirmed write was sent
	lost  error
}

func (l *fencedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := time.Now()
	err := l.Interface.Create(ctx, ler)
	l.confirmed(sent, ler, err)
	return err
}

func (l *fencedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := time.Now()
	err := l.Interface.Update(ctx, ler)
	l.confirmed(sent, ler, err)
	return err
}

func (l *fencedLock) confirmed(sent time.Time, ler resourcelock.LeaderElectionRecord, err error) {
	if err != nil || ler.HolderIdentity != l.id {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fence != nil {
		l.fence.Extend(sent.Add(l.ttl - margin(l.ttl)))
		return
	}
	l.last = sent
}

// start makes the fence once leading begins, up until the last confirmed write's deadline.
func (l *fencedLock) start() *replica.Fence {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fence == nil {
		l.fence = replica.NewFence(l.last.Add(l.ttl - margin(l.ttl)))
		if l.lost != nil {
			l.fence.Lose(l.lost)
		}
	}
	return l.fence
}

func (l *fencedLock) lose(reason error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil {
		l.lost = reason
	}
	if l.fence != nil {
		l.fence.Lose(reason)
	}
}

// Campaign waits until this replica holds the rollout's Lease, or ctx ends. The lead is kept,
// renewed every fifth of the lease, until Resign or until a renewal fails for longer than the
// lease less the margin.
func (r *Rollout) Campaign(ctx context.Context) (*Leadership, error) {
	if r.err != nil {
		return nil, r.err
	}
	ttl := r.s.lease
	lock := &fencedLock{id: r.s.id, ttl: ttl, Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: r.s.ns, Name: r.base},
		Client:     r.s.cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: r.s.id},
	}}
	started := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            r.base,
		LeaseDuration:   ttl,
		RenewDeadline:   ttl - margin(ttl),
		RetryPeriod:     ttl / 5,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(started) },
			OnStoppedLeading: func() { lock.lose(errors.New("the Lease was not renewed in time")) },
		},
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes election: %w", err)
	}
	// The elector logs through the context's logger; its failures come back as the fence
	// going down, so its own lines on stderr would only repeat them.
	rctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logr.Discard()))
	l := &Leadership{r: r, lock: lock, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		le.Run(rctx)
	}()
	select {
	case <-started:
	case <-ctx.Done():
		cancel()
		<-l.done
		return nil, ctx.Err()
	}
	l.fence = lock.start()
	if err := l.fence.Check(); err != nil {
		l.Resign(context.Background())
		return nil, err
	}
	return l, nil
}

// Leadership is this replica leading one rollout: the journal's writes it makes are guarded by
// the resourceVersion of the open ConfigMap, and its Fence goes down when the Lease may be
// another's.
type Leadership struct {
	r      *Rollout
	lock   *fencedLock
	fence  *replica.Fence
	cancel context.CancelFunc // stops the elector, which releases the Lease
	done   chan struct{}      // closed when the elector has stopped

	open  *corev1.ConfigMap // the newest journal ConfigMap as last written
	index int
	tail  []entry // the open ConfigMap's single events, not yet in a chunk

	// now is the clock relayed commands and answers are aged by; time.Now when nil.
	now func() time.Time
}

// Fence goes down when this replica may no longer act.
func (l *Leadership) Fence() *replica.Fence { return l.fence }

// ID is this replica's id.
func (l *Leadership) ID() string { return l.r.s.id }

// Path names the journal for people.
func (l *Leadership) Path() string { return l.r.Path() }

// write runs one guarded write of a journal ConfigMap (do: a create or a patch), bounded by
// the fence; a conflict (someone else wrote it, or created it first) takes the fence down.
func (l *Leadership) write(do func(context.Context, typedcorev1.ConfigMapInterface) (*corev1.ConfigMap, error)) (*corev1.ConfigMap, error) {
	if err := l.fence.Check(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.r.s.lease/2)
	defer cancel()
	ctx, stop := l.fence.Bound(ctx)
	defer stop()
	out, err := do(ctx, l.r.s.cs.CoreV1().ConfigMaps(l.r.s.ns))
	if err != nil {
		if ferr := l.fence.Check(); ferr != nil {
			return nil, ferr
		}
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			l.fence.Lose(fmt.Errorf("another replica leads the rollout, or the journal changed: %w", err))
			return nil, l.fence.Check()
		}
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return out, nil
}

// create creates journal ConfigMap cm; one of the same name (another leader's) conflicts.
func (l *Leadership) create(cm *corev1.ConfigMap) (*corev1.ConfigMap, error) {
	return l.write(func(ctx context.Context, cms typedcorev1.ConfigMapInterface) (*corev1.ConfigMap, error) {
		return cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: "perch"})
	})
}

// journalPatch is a JSON merge patch (RFC 7386) of the open journal ConfigMap. A
// resourceVersion is a precondition on a write: if it does not match the object's, the write
// fails with 409 Conflict
// (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency).
// For a patch the API server applies it to the stored object, so a metadata.resourceVersion
// in the patch becomes the patched object's, and stores that with the same check
// (https://github.com/kubernetes/kubernetes/issues/63104). So a patch fences as an update
// does, while sending only the keys it changes.
type journalPatch struct {
	Metadata patchMeta `json:"metadata"`
	// Data adds or replaces keys; a nil value is JSON null, which removes the key.
	Data map[string]*string `json:"data,omitempty"`
}

type patchMeta struct {
	ResourceVersion string            `json:"resourceVersion"`
	Annotations     map[string]string `json:"annotations,omitempty"`
}

// patch applies p to the open ConfigMap at the resourceVersion this leader last saw.
func (l *Leadership) patch(p journalPatch) (*corev1.ConfigMap, error) {
	if l.open.ResourceVersion == "" {
		return nil, fmt.Errorf("kubernetes journal: %s has no resourceVersion to write at", l.open.Name)
	}
	p.Metadata.ResourceVersion = l.open.ResourceVersion
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return l.write(func(ctx context.Context, cms typedcorev1.ConfigMapInterface) (*corev1.ConfigMap, error) {
		return cms.Patch(ctx, l.open.Name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: "perch"})
	})
}

// newConfigMap is journal ConfigMap n, stamped with this leader's term.
func (l *Leadership) newConfigMap(n int, term int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: l.r.cmName(n), Namespace: l.r.s.ns,
			Labels:      map[string]string{LabelJournal: l.r.base, "app.kubernetes.io/managed-by": "perch"},
			Annotations: map[string]string{AnnotationLeader: l.r.s.id, AnnotationTerm: strconv.Itoa(term)},
		},
		Data: map[string]string{},
	}
}

// Begin reads the journal to continue from and claims it: with no journal yet it creates
// -journal-0 holding the header for rollout and returns nil (a fresh start); otherwise it
// bumps the term on the open ConfigMap (creating the next one if the open one was sealed), so
// that a deposed leader's next write conflicts. A journal with a header but no event is also
// a fresh start. Call it once, after Campaign.
func (l *Leadership) Begin(ctx context.Context, rollout *spec.Rollout) (*engine.Recording, error) {
	const attempts = 5
	var err error
	for range attempts {
		var st *stored
		if st, err = l.r.load(ctx); err != nil {
			return nil, err
		}
		var rec *engine.Recording
		if rec, err = l.claim(st, rollout); err == nil {
			return rec, nil
		}
		if !errors.Is(err, errRaced) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: the journal kept changing while this replica claimed it: %w", l.r.Path(), err)
}

var errRaced = errors.New("raced")

func (l *Leadership) claim(st *stored, rollout *spec.Rollout) (*engine.Recording, error) {
	if err := l.fence.Check(); err != nil {
		return nil, err
	}
	cms := l.r.s.cs.CoreV1().ConfigMaps(l.r.s.ns)
	ctx, cancel := context.WithTimeout(context.Background(), l.r.s.lease/2)
	defer cancel()
	raced := func(err error) error {
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%w: %w", errRaced, err)
		}
		return fmt.Errorf("kubernetes: %w", err)
	}
	if len(st.cms) == 0 {
		line, err := json.Marshal(engine.Header{Journal: engine.JournalVersion, Created: time.Now().UTC(), Spec: rollout})
		if err != nil {
			return nil, err
		}
		cm := l.newConfigMap(0, 1)
		cm.Data["header"] = string(line)
		out, err := cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: "perch"})
		if err != nil {
			return nil, raced(err)
		}
		l.open, l.index, l.tail = out, 0, nil
		return nil, nil
	}
	term := 0
	for _, cm := range st.cms {
		if t, err := strconv.Atoi(cm.Annotations[AnnotationTerm]); err == nil {
			term = max(term, t)
		}
	}
	n := len(st.cms) - 1
	newest := st.cms[n].DeepCopy()
	var out *corev1.ConfigMap
	var err error
	if newest.Annotations[AnnotationSealed] != "" {
		n++
		out, err = cms.Create(ctx, l.newConfigMap(n, term+1), metav1.CreateOptions{FieldManager: "perch"})
	} else {
		if newest.Annotations == nil {
			newest.Annotations = map[string]string{}
		}
		newest.Annotations[AnnotationLeader] = l.r.s.id
		newest.Annotations[AnnotationTerm] = strconv.Itoa(term + 1)
		out, err = cms.Update(ctx, newest, metav1.UpdateOptions{FieldManager: "perch"})
	}
	if err != nil {
		return nil, raced(err)
	}
	es, err := entries(out)
	if err != nil {
		return nil, err
	}
	l.open, l.index, l.tail = out, n, nil
	for _, e := range es {
		if !e.chunk {
			l.tail = append(l.tail, e)
		}
	}
	if len(st.rec.Events) == 0 {
		return nil, nil
	}
	return st.rec, nil
}

func dataSize(cm *corev1.ConfigMap) int {
	n := 0
	for k, v := range cm.Data {
		n += len(k) + len(v)
	}
	return n
}

// Append journals one event: a merge patch adding its key to the open ConfigMap, carrying the
// resourceVersion this leader last wrote, so it fails if anyone else wrote since. When the event would take the
// ConfigMap past the size limit it first seals it and creates the next. A failure is final
// for the engine (it records nothing more and stops), which is what a deposed leader must do.
func (l *Leadership) Append(ev engine.Event) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := l.fence.Check(); err != nil {
		return err
	}
	if l.open == nil {
		return errors.New("kubernetes journal: Append before Begin")
	}
	key := eventKey(ev.Seq)
	if len(key)+len(line) > l.r.s.limit/2 {
		return fmt.Errorf("event %d is %d bytes, too large for a journal ConfigMap", ev.Seq, len(line))
	}
	if dataSize(l.open)+len(key)+len(line) > l.r.s.limit {
		if err := l.rollover(); err != nil {
			return err
		}
	}
	value := string(line)
	out, err := l.patch(journalPatch{Data: map[string]*string{key: &value}})
	if err != nil {
		return err
	}
	l.open = out
	l.tail = append(l.tail, entry{seq: ev.Seq, key: key, value: value})
	if len(l.tail) >= l.r.s.chunk {
		l.compact() // a failed compaction is tried again after the next event
	}
	return nil
}

// rollover seals the open ConfigMap, then creates the next: a deposed leader's seal conflicts
// with the new leader's term, so it never creates one.
func (l *Leadership) rollover() error {
	sealed, err := l.patch(journalPatch{Metadata: patchMeta{Annotations: map[string]string{AnnotationSealed: "true"}}})
	if err != nil {
		return err
	}
	term, _ := strconv.Atoi(sealed.Annotations[AnnotationTerm])
	out, err := l.create(l.newConfigMap(l.index+1, term))
	if err != nil {
		return err
	}
	l.open, l.index, l.tail = out, l.index+1, nil
	return nil
}

// compact replaces the open ConfigMap's single events with one chunk, in one guarded merge
// patch that sets the chunk's key and removes the events' keys (null values).
func (l *Leadership) compact() {
	data := map[string]*string{}
	var buf strings.Builder
	for _, e := range l.tail {
		buf.WriteString(e.value)
		buf.WriteByte('\n')
		data[e.key] = nil
	}
	chunk := buf.String()
	data[chunkKey(l.tail[0].seq)] = &chunk
	if out, err := l.patch(journalPatch{Data: data}); err == nil {
		l.open, l.tail = out, nil
	}
}

// Close gives the lead up: the fence goes down, and the elector stops and releases the Lease,
// so a standby takes over at once rather than after the lease. It implements the journal's
// Close.
func (l *Leadership) Close() error { return l.Resign(context.Background()) }

// Resign gives the lead up, as Close.
func (l *Leadership) Resign(context.Context) error {
	l.lock.lose(errors.New("resigned"))
	l.cancel()
	<-l.done
	return nil
}

var _ engine.EventSink = (*Leadership)(nil)
