package alerts

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// What the receiver writes grows with time, not with what it is sent: a sender flooding it
// must cost perch neither an fsync per alert nor a log line per request.
const (
	// notesPerInterval is how many alerts an interval notes one by one; the rest are counted
	// and summarised in one note at the interval's end.
	notesPerInterval = 5
	// namesPerKind bounds the distinct names a summary counts of each kind; later ones are
	// counted as "others".
	namesPerKind = 256
	// namesShown is how many names, most frequent first, a summary spells out per kind.
	namesShown = 3
)

// kind is why an alert is noted rather than acted on.
type kind int

const (
	kindUnmatched kind = iota // firing, matching no alerts.rollbackOn entry
	kindResolved              // resolved
	kindTooLate               // matching, but the rollout could no longer roll back
	kindTruncated             // left out of a notification by Alertmanager's max_alerts
	kinds
)

// tally counts alerts by kind and name.
type tally struct {
	total [kinds]int
	names [kinds]map[string]int
}

func (t *tally) add(k kind, name string, n int) {
	if t.names[k] == nil {
		t.names[k] = map[string]int{}
	}
	if _, ok := t.names[k][name]; !ok && len(t.names[k]) >= namesPerKind {
		name = "others"
	}
	t.total[k] += n
	t.names[k][name] += n
}

func (t *tally) empty() bool { return t.total == [kinds]int{} }

// text is the summary note: "412 alerts matched no alerts.rollbackOn entry in the last 30s:
// HighCPU ×400, DiskFull ×10, Backup ×1 and 1 more; 3 alerts resolved in the last 30s: …".
func (t *tally) text(span time.Duration) string {
	var parts []string
	for k := range kinds {
		n := t.total[k]
		if n == 0 {
			continue
		}
		var what string
		switch k {
		case kindUnmatched:
			what = fmt.Sprintf("%d alert(s) matched no alerts.rollbackOn entry in the last %s", n, span)
		case kindResolved:
			what = fmt.Sprintf("%d alert(s) resolved in the last %s", n, span)
		case kindTooLate:
			what = fmt.Sprintf("%d alert(s) matched alerts.rollbackOn in the last %s when the rollout could no longer roll back", n, span)
		case kindTruncated:
			parts = append(parts, fmt.Sprintf("Alertmanager left %d alert(s) out of its notifications in the last %s (its max_alerts); perch could not act on them", n, span))
			continue
		}
		parts = append(parts, what+": "+topNames(t.names[k]))
	}
	return strings.Join(parts, "; ")
}

// topNames is "A ×400, B ×10, C ×1 and 2 more": the most frequent names first.
func topNames(counts map[string]int) string {
	names := slices.SortedFunc(maps.Keys(counts), func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b))
	})
	var shown []string
	for _, name := range names[:min(len(names), namesShown)] {
		shown = append(shown, fmt.Sprintf("%s ×%d", name, counts[name]))
	}
	s := strings.Join(shown, ", ")
	if more := len(names) - namesShown; more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// quota decides which alerts are noted one by one and which wait for a summary, and which
// refused requests are logged in full. Each analysis interval notes its first few alerts one
// by one; beyond that they are counted, and one note summarises them when the interval ends.
// While they keep coming, each following interval writes its summary only, so a flood costs
// one note per interval. Refusals are alike: the first of an interval is logged, the rest
// counted into one line.
type quota struct {
	interval time.Duration
	due      func() // runs (on its own goroutine) when a summary is due

	mu      sync.Mutex
	end     time.Time // the end of the current interval of notes
	left    int       // notes it may still write one by one
	flooded time.Time // when the last summary was taken: notes one by one wait an interval after it
	pending tally
	since   time.Time // when the pending tally began
	timer   *time.Timer
	armed   bool

	refusalsEnd   time.Time // refusals before this are counted, not logged
	refusals      map[string]int
	refusalsSince time.Time
}

func newQuota(interval time.Duration, due func()) *quota {
	return &quota{interval: interval, due: due}
}

// admit reports whether an alert arriving now may be noted on its own; if not, the caller
// counts it with add.
func (q *quota) admit(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !now.Before(q.end) {
		q.end, q.left = now.Add(q.interval), notesPerInterval
		if !q.pending.empty() || (!q.flooded.IsZero() && now.Sub(q.flooded) < q.interval) {
			q.left = 0 // still flooded: summaries only
		}
	}
	if q.left == 0 {
		return false
	}
	q.left--
	return true
}

// add counts n alerts of kind k named name for the next summary, due when the current
// interval ends.
func (q *quota) add(now time.Time, k kind, name string, n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending.empty() {
		q.since = q.end.Add(-q.interval)
	}
	q.pending.add(k, name, n)
	q.arm(now, q.end)
}

// refused reports whether a refusal arriving now should be logged in full; if not, it is
// counted under what and summarised with take.
func (q *quota) refused(now time.Time, what string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !now.Before(q.refusalsEnd) {
		q.refusalsEnd = now.Add(q.interval)
		return true
	}
	if len(q.refusals) == 0 {
		q.refusals, q.refusalsSince = map[string]int{}, now
	}
	if _, ok := q.refusals[what]; ok || len(q.refusals) < namesPerKind {
		q.refusals[what]++
	}
	q.arm(now, q.refusalsEnd)
	return false
}

// arm makes sure due runs at or before at.
func (q *quota) arm(now, at time.Time) {
	if q.armed {
		return
	}
	q.armed = true
	q.timer = time.AfterFunc(at.Sub(now), q.due)
}

// take returns the pending summary note and log line ("" when there is none) and starts
// counting afresh.
func (q *quota) take(now time.Time) (note, log string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.armed = false
	if !q.pending.empty() {
		note = q.pending.text(span(now.Sub(q.since)))
		q.pending, q.flooded = tally{}, now
	}
	if len(q.refusals) > 0 {
		n := 0
		for _, c := range q.refusals {
			n += c
		}
		log = fmt.Sprintf("refused %d more request(s) in the last %s, logged only in sum: %s",
			n, span(now.Sub(q.refusalsSince)), topNames(q.refusals))
		q.refusals = nil
	}
	return note, log
}

// stop cancels a pending run of due.
func (q *quota) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.timer != nil {
		q.timer.Stop()
	}
	q.armed = false
}

// span is how long a summary covers, as its text says it: whole seconds from one second up.
func span(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
