// Package enginetest holds in-memory stand-ins for the engine's collaborators and for a fleet, for tests and
// benchmark programs that run the engine without a real traffic provider.
package enginetest

import (
	"context"
	"sync"
)

// Router is a traffic provider in memory: it has the canary weight it was last set to (0 at
// first). Safe for concurrent use, as the engine's effects run on their own goroutines.
type Router struct {
	mu     sync.Mutex
	weight int
}

// SetWeight sets the canary's percent.
func (r *Router) SetWeight(_ context.Context, canaryPercent int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.weight = canaryPercent
	return nil
}

// Weight is the canary's percent now.
func (r *Router) Weight(context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.weight, nil
}
