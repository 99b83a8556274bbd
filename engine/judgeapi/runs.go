package judgeapi

import (
	"container/list"
	"sync"
	"time"
)

// runKey names one run of one analysis: its window is its own.
type runKey struct{ analysis, run string }

// run is what the server remembers of a run: when it first asked (its window opens then) and
// when it last asked (it is forgotten a TTL after).
type run struct {
	key         runKey
	first, last time.Time
}

// runs remembers at most max runs, each until ttl after it last asked; when full, the run
// asked least recently is forgotten first. A caller naming new runs endlessly therefore
// costs a bounded amount of memory, at worst restarting the window of the oldest run.
type runs struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	byKey map[runKey]*list.Element
	order *list.List // of *run, the most recently asked at the front
}

func newRuns(max int, ttl time.Duration) *runs {
	return &runs{max: max, ttl: ttl, byKey: map[runKey]*list.Element{}, order: list.New()}
}

// ask records that k asked at now and returns when its window opened: now for a run it does
// not know (new, expired or evicted).
func (rs *runs) ask(k runKey, now time.Time) time.Time {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.expire(now)
	if e, ok := rs.byKey[k]; ok {
		r := e.Value.(*run)
		r.last = now
		rs.order.MoveToFront(e)
		return r.first
	}
	for rs.order.Len() >= rs.max {
		rs.drop(rs.order.Back())
	}
	rs.byKey[k] = rs.order.PushFront(&run{key: k, first: now, last: now})
	return now
}

// expire forgets the runs that have not asked for ttl.
func (rs *runs) expire(now time.Time) {
	for e := rs.order.Back(); e != nil && now.Sub(e.Value.(*run).last) >= rs.ttl; e = rs.order.Back() {
		rs.drop(e)
	}
}

func (rs *runs) drop(e *list.Element) {
	delete(rs.byKey, e.Value.(*run).key)
	rs.order.Remove(e)
}

// len is how many runs are remembered.
func (rs *runs) len() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.order.Len()
}
