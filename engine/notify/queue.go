package notify

import (
	"context"
	"sync"
)

// queue holds one destination's messages waiting to be sent: at most limit, the oldest
// dropped to make room, so a destination that is down costs bounded memory and, once back,
// hears the newest news first-hand and the count of what it missed.
type queue struct {
	mu      sync.Mutex
	items   []message // oldest first
	limit   int
	dropped int // since the last message taken
	failed  int // taken messages not delivered, since the last message taken
	closed  bool
	wake    chan struct{}
}

func newQueue(limit int) *queue {
	return &queue{limit: limit, wake: make(chan struct{}, 1)}
}

// put adds m, dropping the oldest waiting message if the queue is full. It never blocks.
func (q *queue) put(m message) {
	q.mu.Lock()
	if len(q.items) >= q.limit {
		copy(q.items, q.items[1:])
		q.items = q.items[:len(q.items)-1]
		q.dropped++
	}
	q.items = append(q.items, m)
	q.mu.Unlock()
	q.signal()
}

// close lets take return false once the queue is empty.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take waits for the oldest message and hands it over with the count of messages missed
// before it. It returns false once the queue is closed and empty, or when ctx ends (leaving
// what is queued).
func (q *queue) take(ctx context.Context) (message, bool) {
	for {
		if ctx.Err() != nil {
			return message{}, false
		}
		q.mu.Lock()
		if len(q.items) > 0 {
			m := q.items[0]
			q.items[0] = message{}
			q.items = q.items[1:]
			m.dropped, m.failed = q.dropped, q.failed
			q.dropped, q.failed = 0, 0
			q.mu.Unlock()
			return m, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return message{}, false
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return message{}, false
		}
	}
}

// undelivered records that m, taken from the queue, could not be sent: the next message
// reports it along with what m was to report.
func (q *queue) undelivered(m message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dropped += m.dropped
	q.failed += m.failed + 1
}

// pending is how many messages wait.
func (q *queue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
