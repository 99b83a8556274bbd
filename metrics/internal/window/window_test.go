package window_test

import (
	"testing"
	"time"

	"github.com/perchhq/perch/metrics/internal/window"
)

func TestBuckets(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	step := 30 * time.Second
	for _, tt := range []struct {
		name       string
		start, end time.Time
		from, to   time.Time
		ok         bool
	}{
		{"aligned", t0.Add(step), t0.Add(3 * step), t0, t0.Add(3 * step), true},
		{"unaligned start and end", t0.Add(step + 7*time.Second), t0.Add(3*step + 5*time.Second), t0.Add(step), t0.Add(3 * step), true},
		{"nothing ended yet", t0.Add(step + 7*time.Second), t0.Add(step + 20*time.Second), t0.Add(step), t0.Add(step), false},
	} {
		from, to, ok := window.Buckets(tt.start, tt.end, step)
		if !from.Equal(tt.from) || !to.Equal(tt.to) || ok != tt.ok {
			t.Errorf("%s: Buckets = %s, %s, %v; want %s, %s, %v", tt.name, from, to, ok, tt.from, tt.to, tt.ok)
		}
	}
}
