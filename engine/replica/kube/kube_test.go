package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/providers/kube/kubetest"
)

const pauses = `name: ha
traffic: {proxy: {listen: "127.0.0.1:0", stable: "http://127.0.0.1:1", canary: "http://127.0.0.1:2"}}
metrics: {prometheus: {address: "http://127.0.0.1:9090"}}
analysis: {stabilization: 100ms}
steps:
  - setWeight: 10
  - pause: {duration: 300ms}
  - setWeight: 50
  - pause: {duration: 300ms}
`

func parse(t *testing.T) *spec.Rollout {
	t.Helper()
	r, err := spec.Parse("ha.yaml", []byte(pauses))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// replicaConn is one replica's way to the shared API server, which the test can cut, and
// which counts the bytes of the request bodies the replica writes with.
type replicaConn struct {
	cut  atomic.Bool
	sent atomic.Int64 // bytes of PUT, PATCH and POST request bodies
}

// countingBody counts what the server reads of a request body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// open connects replica id to srv through its own HTTP server, so that replica alone can be
// cut off.
func open(t *testing.T, srv *kubetest.APIServer, id string, lease time.Duration) (*Store, *replicaConn) {
	t.Helper()
	c := &replicaConn{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.cut.Load() {
			http.Error(w, "cut off", http.StatusServiceUnavailable)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodDelete {
			r.Body = countingBody{r.Body, &c.sent}
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: ts.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}, Timeout: 5 * time.Second, QPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), Config{Client: cs, Namespace: "shop", Name: "perch", Lease: lease, ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// unelected leads without an election, for journal tests: its fence stays up for an hour.
func unelected(s *Store, name string) *Leadership {
	lock := &fencedLock{id: s.id, ttl: time.Hour}
	lock.fence = replica.NewFence(time.Now().Add(time.Hour))
	return &Leadership{r: s.Rollout(name), lock: lock, fence: lock.fence, cancel: func() {}, done: closed()}
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

var actor = &engine.Actor{Name: "x", Role: engine.RoleOperator}

func note(seq int64, reason string) engine.Event {
	return engine.Event{Seq: seq, Time: time.Now(), Type: engine.EventNote, Actor: actor, Reason: reason}
}

func TestParseURL(t *testing.T) {
	ns, name, err := ParseURL("kubernetes://shop/checkout")
	if err != nil || ns != "shop" || name != "checkout" {
		t.Fatalf("ParseURL = %q %q %v", ns, name, err)
	}
	for _, bad := range []string{"etcd://h:1/p", "kubernetes://shop", "kubernetes://shop/", "kubernetes:///x", "kubernetes://Shop/x", "kubernetes://shop/a/b", "kubernetes://shop/a_b", "kubernetes://shop/" + strings.Repeat("a", 41)} {
		if _, _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}

func TestRolloutNameMustFitAnObjectName(t *testing.T) {
	srv := kubetest.NewAPIServer()
	s, _ := open(t, srv, "a", time.Second)
	if _, err := s.Rollout("Check_out").Campaign(context.Background()); err == nil || !strings.Contains(err.Error(), "lowercase") {
		t.Errorf("Campaign for Check_out: %v", err)
	}
}

// A new leader's claim bumps the open ConfigMap's term, so the deposed leader's next append
// conflicts and its fence goes down; the new leader continues from the deposed one's events.
func TestDeposedLeaderCannotAppend(t *testing.T) {
	srv := kubetest.NewAPIServer()
	a, _ := open(t, srv, "a", time.Second)
	b, _ := open(t, srv, "b", time.Second)
	rollout := parse(t)
	ctx := context.Background()
	la := unelected(a, "ha")
	if rec, err := la.Begin(ctx, rollout); err != nil || rec != nil {
		t.Fatalf("Begin on an empty namespace = %v, %v", rec, err)
	}
	start := engine.Event{Seq: 1, Time: time.Now(), Type: engine.EventRolloutStarted, Attempt: 1}
	if err := la.Append(start); err != nil {
		t.Fatal(err)
	}
	if err := la.Append(note(2, "by a")); err != nil {
		t.Fatal(err)
	}
	lb := unelected(b, "ha")
	rec, err := lb.Begin(ctx, rollout)
	if err != nil || rec == nil || len(rec.Events) != 2 {
		t.Fatalf("Begin after a's events = %v, %v", rec, err)
	}
	if err := la.Append(note(3, "late, by a")); err == nil {
		t.Fatal("the deposed leader appended")
	}
	if la.Fence().Check() == nil {
		t.Error("the deposed leader's fence is still up")
	}
	if err := lb.Append(note(3, "by b")); err != nil {
		t.Fatal(err)
	}
	got, err := b.Rollout("ha").Load(ctx)
	if err != nil || len(got.Events) != 3 || got.Events[2].Reason != "by b" {
		t.Fatalf("journal = %+v, %v", got, err)
	}
	cm := srv.Object("configmaps", "shop", "perch-ha-journal-0")
	ann := cm["metadata"].(map[string]any)["annotations"].(map[string]any)
	if ann[AnnotationLeader] != "b" || ann[AnnotationTerm] != "2" {
		t.Errorf("annotations %v; want leader b, term 2", ann)
	}
}

// Every chunkEvents single events become one chunk key; the journal reads back whole.
func TestCompaction(t *testing.T) {
	srv := kubetest.NewAPIServer()
	a, _ := open(t, srv, "a", time.Second)
	a.chunk = 50 // as at 500, in a tenth of the requests
	ctx := context.Background()
	l := unelected(a, "ha")
	if _, err := l.Begin(ctx, parse(t)); err != nil {
		t.Fatal(err)
	}
	n := int64(2*a.chunk + 7)
	for i := int64(1); i <= n; i++ {
		if err := l.Append(note(i, fmt.Sprintf("note %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	cm := srv.Object("configmaps", "shop", "perch-ha-journal-0")
	data := cm["data"].(map[string]any)
	if len(data) != 1+2+7 || data[chunkKey(1)] == nil || data[chunkKey(int64(a.chunk)+1)] == nil || data[eventKey(n)] == nil {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		t.Errorf("%d keys %v; want the header, 2 chunks and 7 events", len(data), keys)
	}
	rec, err := a.Rollout("ha").Load(ctx)
	if err != nil || int64(len(rec.Events)) != n || rec.Events[n-1].Reason != fmt.Sprintf("note %d", n) {
		t.Fatalf("Load: %v events, %v", len(rec.Events), err)
	}
}

// TestRealLimitFitsTheAPIServer: the largest events the journal takes, up to its real limit,
// leave each ConfigMap under the 1 MiB the API server (and its fake) accepts.
func TestRealLimitFitsTheAPIServer(t *testing.T) {
	srv := kubetest.NewAPIServer()
	a, _ := open(t, srv, "a", 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := unelected(a, "ha")
	if _, err := l.Begin(ctx, parse(t)); err != nil {
		t.Fatal(err)
	}
	// An event's line carries its JSON around the reason: leave room for it under half.
	big := strings.Repeat("x", limitBytes/2-1024)
	for i := int64(1); i <= 3; i++ {
		if err := l.Append(note(i, big)); err != nil {
			t.Fatalf("append %d of %d bytes: %v", i, len(big), err)
		}
	}
	if err := l.Append(note(4, strings.Repeat("x", limitBytes/2+1))); err == nil {
		t.Error("an event over half the limit was journaled")
	}
	if names := srv.Names("configmaps", "shop"); len(names) != 2 {
		t.Errorf("configmaps %v; want two (the third event rolled over)", names)
	}
}

// Events that fill a ConfigMap past the limit go on in the next; each stays under the API
// server's 1 MiB; a standby following reads all of them, and a new leader continues in the
// newest.
func TestChunksRollOverAtTheSizeLimit(t *testing.T) {
	srv := kubetest.NewAPIServer()
	a, _ := open(t, srv, "a", time.Second)
	b, _ := open(t, srv, "b", time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rollout := parse(t)
	f := replica.NewFollower(engine.NewState(rollout))
	go b.Rollout("ha").Follow(ctx, f, rollout)

	// At a smaller limit, so the test does not spend its time encoding megabytes
	// (TestRealLimitFitsTheAPIServer fills one at the real limit).
	a.limit, b.limit = 90<<10, 90<<10
	l := unelected(a, "ha")
	if _, err := l.Begin(ctx, rollout); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 4<<10)
	const n = 60 // 60 × 4 KiB: three ConfigMaps
	for i := int64(1); i <= n; i++ {
		if err := l.Append(note(i, big)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	names := srv.Names("configmaps", "shop")
	if len(names) != 3 || names[2] != "perch-ha-journal-2" {
		t.Fatalf("configmaps %v; want journal-0, -1 and -2", names)
	}
	for _, name := range names[:2] {
		ann := srv.Object("configmaps", "shop", name)["metadata"].(map[string]any)["annotations"].(map[string]any)
		if ann[AnnotationSealed] != "true" {
			t.Errorf("%s not sealed: %v", name, ann)
		}
	}
	rec, err := a.Rollout("ha").Load(ctx)
	if err != nil || len(rec.Events) != n {
		t.Fatalf("Load: %v", err)
	}
	for f.Snapshot().Seq != n && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if f.Snapshot().Seq != n {
		t.Errorf("the follower reached seq %d, want %d", f.Snapshot().Seq, n)
	}
	lb := unelected(b, "ha")
	if _, err := lb.Begin(ctx, rollout); err != nil {
		t.Fatal(err)
	}
	if err := lb.Append(note(n+1, "b")); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(note(n+1, "a")); err == nil {
		t.Error("the deposed leader appended after a rollover")
	}
	if got := srv.Names("configmaps", "shop"); len(got) != 3 {
		t.Errorf("configmaps after the new leader's append: %v", got)
	}
}

// The election with a short lease: one leads; it resigns and the other takes over at once; a
// leader cut off from the API server stops (its fence goes down) before the other can lead.
func TestElection(t *testing.T) {
	srv := kubetest.NewAPIServer()
	const lease = 2 * time.Second
	a, _ := open(t, srv, "a", lease)
	b, cb := open(t, srv, "b", lease)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	la, err := a.Rollout("ha").Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := b.Rollout("ha").Leader(ctx); id != "a" {
		t.Errorf("leader %q, want a", id)
	}
	var lb *Leadership
	var mu sync.Mutex
	won := make(chan time.Time, 1)
	go func() {
		l, err := b.Rollout("ha").Campaign(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		lb = l
		mu.Unlock()
		won <- time.Now()
	}()
	select {
	case <-won:
		t.Fatal("b leads while a does")
	case <-time.After(2 * lease):
	}
	if la.Fence().Check() != nil {
		t.Fatalf("a's fence fell while renewing: %v", la.Fence().Check())
	}
	resigned := time.Now()
	la.Close()
	select {
	case at := <-won:
		if d := at.Sub(resigned); d > lease {
			t.Errorf("b took over %s after a resigned; want within the retry period", d)
		}
	case <-ctx.Done():
		t.Fatal("b never led")
	}

	// Now b is cut off: its fence falls; a, campaigning again, leads only after that.
	go func() {
		l, err := a.Rollout("ha").Campaign(ctx)
		if err == nil {
			mu.Lock()
			la = l
			mu.Unlock()
			won <- time.Now()
		}
	}()
	mu.Lock()
	fb := lb.Fence()
	mu.Unlock()
	cutAt := time.Now()
	cb.cut.Store(true)
	<-fb.Down()
	fell := time.Now()
	if d := fell.Sub(cutAt); d > lease {
		t.Errorf("b's fence fell %s after it was cut off; want within the lease", d)
	}
	select {
	case at := <-won:
		if !at.After(fell) {
			t.Errorf("a led at %s, before b's fence fell at %s", at, fell)
		}
	case <-ctx.Done():
		t.Fatal("a never led again")
	}
	if err := lb.Append(note(1, "cut off")); err == nil {
		t.Error("a leader cut off appended")
	}
	lb.Close()
	la.Close()
}

// A journal ConfigMap with a key that is no journal key, or a missing ConfigMap in the
// sequence, is refused rather than read as a shorter journal.
func TestHostileJournal(t *testing.T) {
	srv := kubetest.NewAPIServer()
	a, _ := open(t, srv, "a", time.Second)
	ctx := context.Background()
	l := unelected(a, "ha")
	if _, err := l.Begin(ctx, parse(t)); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(note(1, "one")); err != nil {
		t.Fatal(err)
	}
	cms := a.cs.CoreV1().ConfigMaps("shop")
	cm, err := cms.Get(ctx, "perch-ha-journal-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["zz"] = "{}"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rollout("ha").Load(ctx); err == nil || !strings.Contains(err.Error(), "not a journal key") {
		t.Errorf("Load with a stray key: %v", err)
	}
	delete(cm.Data, "zz")
	cm.ResourceVersion = ""
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	gap := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "perch-ha-journal-2", Labels: map[string]string{LabelJournal: "perch-ha"}}}
	if _, err := cms.Create(ctx, gap, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rollout("ha").Load(ctx); err == nil || !strings.Contains(err.Error(), "perch-ha-journal-1 is missing") {
		t.Errorf("Load with journal-1 missing: %v", err)
	}
}

// An append sends the API server only the new event, however full the open ConfigMap is; the
// journal reads back whole.
func TestAppendSendsOnlyTheEvent(t *testing.T) {
	srv := kubetest.NewAPIServer()
	a, conn := open(t, srv, "a", time.Second)
	ctx := context.Background()
	l := unelected(a, "ha")
	if _, err := l.Begin(ctx, parse(t)); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 8<<10)
	var seq int64
	var want []string
	for _, fill := range []int{0, limitBytes / 4, limitBytes / 2, limitBytes * 3 / 4, limitBytes * 9 / 10} {
		for dataSize(l.open)+len(big) < fill {
			seq++
			if err := l.Append(note(seq, big)); err != nil {
				t.Fatal(err)
			}
			want = append(want, big)
		}
		const n = 10
		before := conn.sent.Load()
		for range n {
			seq++
			reason := fmt.Sprintf("note %d: \"quoted\", <html> & \\ \u00e9\n", seq)
			if err := l.Append(note(seq, reason)); err != nil {
				t.Fatal(err)
			}
			want = append(want, reason)
		}
		per := (conn.sent.Load() - before) / n
		t.Logf("open ConfigMap %4d KiB: %6d bytes sent per append", dataSize(l.open)>>10, per)
		if per > 2<<10 {
			t.Errorf("with %d KiB in the open ConfigMap an append sent %d bytes; want only the event", dataSize(l.open)>>10, per)
		}
	}
	if names := srv.Names("configmaps", "shop"); len(names) != 1 {
		t.Fatalf("configmaps %v; the test meant to fill one", names)
	}
	rec, err := a.Rollout("ha").Load(ctx)
	if err != nil || len(rec.Events) != len(want) {
		t.Fatalf("Load: %d events, %v; want %d", len(rec.Events), err, len(want))
	}
	for i, ev := range rec.Events {
		if ev.Seq != int64(i+1) || ev.Reason != want[i] {
			t.Fatalf("event %d = seq %d %q; want seq %d %q", i, ev.Seq, ev.Reason, i+1, want[i])
		}
	}
}
