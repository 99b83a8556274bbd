package demo

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/metrics"
)

// errOutage is what the flaky-metrics scenario's source answers while it is down.
var errOutage = errors.New("builtin metrics unavailable (simulated outage)")

// flakySource passes queries to the proxy's source except during an outage, when it fails as
// a metrics backend that cannot be reached would.
type flakySource struct {
	source engine.Source
	mu     sync.Mutex
	from   time.Time
	until  time.Time
}

func (f *flakySource) fail(from, until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.from, f.until = from, until
}

// Samples answers from the proxy's source, or fails during the outage.
func (f *flakySource) Samples(ctx context.Context, q metrics.Query, start, end time.Time, step time.Duration) ([]metrics.Sample, error) {
	now := time.Now()
	f.mu.Lock()
	down := !now.Before(f.from) && now.Before(f.until)
	f.mu.Unlock()
	if down {
		return nil, errOutage
	}
	return f.source.Samples(ctx, q, start, end, step)
}
