// Package notify tells people how a rollout goes: it posts to Slack incoming webhooks and to
// generic JSON webhooks when a rollout starts, passes a step, pauses or holds, rolls back or
// is promoted, with the numbers behind each decision. Delivery is asynchronous, with a
// bounded queue and a worker per destination, so a dead or hanging receiver never slows the
// engine or the other destinations.
package notify

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// Events is the stream of every engine event in order; *engine.EventStream is the real one.
type Events interface {
	Next(ctx context.Context) (engine.Event, bool)
}

// Defaults of Options.
const (
	DefaultQueueSize      = 32
	DefaultMaxAttempts    = 5
	DefaultAttemptTimeout = 10 * time.Second
	DefaultBackoff        = time.Second
	DefaultMaxBackoff     = 30 * time.Second
	DefaultDrainTimeout   = 10 * time.Second
)

// Options tune delivery; zero values take the defaults.
type Options struct {
	QueueSize      int           // messages waiting per destination; the oldest is dropped beyond
	MaxAttempts    int           // tries per message
	AttemptTimeout time.Duration // the longest one try may take
	Backoff        time.Duration // the wait before the first retry; it doubles each retry
	MaxBackoff     time.Duration // the longest wait between tries (also caps Retry-After)
	// DrainTimeout is how long Run keeps delivering queued messages after the event stream
	// ends (the rollout is over), so the last news goes out without holding perch up.
	DrainTimeout time.Duration
	Client       *http.Client // default: a fresh client; AttemptTimeout bounds each request
	// Logf reports notifications that could not be delivered; nil discards the reports.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueSize, DefaultQueueSize)
	def(&o.MaxAttempts, DefaultMaxAttempts)
	defDur(&o.AttemptTimeout, DefaultAttemptTimeout)
	defDur(&o.Backoff, DefaultBackoff)
	defDur(&o.MaxBackoff, DefaultMaxBackoff)
	defDur(&o.DrainTimeout, DefaultDrainTimeout)
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// Notifier sends a rollout's news to the destinations of its rollout file.
type Notifier struct {
	spec  *spec.Rollout
	dests []*destination
	opts  Options
}

// New checks the rollout file's notify entries, expanding ${NAME} references in URLs and
// header values with getenv; a reference to an unset variable is an error (the first Problem;
// Check lists them all).
func New(spec *spec.Rollout, getenv func(string) string, opts Options) (*Notifier, error) {
	ts, problems := targets(spec, getenv)
	if len(problems) > 0 {
		return nil, problems[0]
	}
	opts = opts.withDefaults()
	n := &Notifier{spec: spec, opts: opts}
	for _, t := range ts {
		n.dests = append(n.dests, &destination{target: t, queue: newQueue(opts.QueueSize), client: opts.Client, opts: opts})
	}
	return n, nil
}

// Run folds events into the rollout's state, starting from `from` (the engine's snapshot when
// the stream was opened; a zero State means a new rollout), and queues a message for each
// notable event to every destination. Once the stream ends it keeps delivering what is queued
// for up to Options.DrainTimeout, then returns. When ctx ends it gives up at once.
func (n *Notifier) Run(ctx context.Context, events Events, from engine.State) {
	work, stop := context.WithCancel(ctx)
	defer stop()
	var workers sync.WaitGroup
	for _, d := range n.dests {
		workers.Go(func() { d.run(work) })
	}
	st := engine.NewState(n.spec)
	if from.Spec != nil {
		st = from.Clone()
	}
	for {
		ev, ok := events.Next(ctx)
		if !ok {
			break
		}
		st.Apply(ev)
		if m, ok := compose(&st, ev); ok {
			for _, d := range n.dests {
				d.queue.put(m)
			}
		}
	}
	for _, d := range n.dests {
		d.queue.close()
	}
	drained := make(chan struct{})
	go func() {
		workers.Wait()
		close(drained)
	}()
	timer := time.NewTimer(n.opts.DrainTimeout)
	defer timer.Stop()
	select {
	case <-drained:
		return
	case <-timer.C:
	case <-ctx.Done():
	}
	stop()
	<-drained
	for _, d := range n.dests {
		if left := d.queue.pending(); left > 0 {
			n.opts.Logf("notify: %s: %d notification(s) not sent: perch is exiting", d.name, left)
		}
	}
}
