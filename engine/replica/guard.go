package replica

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/internal/segment"
)

// Guard wraps a router so that every change it makes is refused once fence is down: a
// deposed leader's weight change in flight may still land (it left before the fence fell),
// but none starts after. Reads pass through. The result is a SegmentRouter when r is one, and
// keeps r's String and Close.
func Guard(r engine.Router, fence *Fence) engine.Router {
	g := guarded{r: r, fence: fence}
	if sr, ok := r.(engine.SegmentRouter); ok {
		return guardedSegments{guarded: g, sr: sr}
	}
	return g
}

type guarded struct {
	r     engine.Router
	fence *Fence
}

func (g guarded) SetWeight(ctx context.Context, percent int) error {
	if err := g.fence.Check(); err != nil {
		return err
	}
	return g.r.SetWeight(ctx, percent)
}

func (g guarded) Weight(ctx context.Context) (int, error) { return g.r.Weight(ctx) }

func (g guarded) String() string {
	if s, ok := g.r.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", g.r)
}

func (g guarded) Close() error {
	if c, ok := g.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

type guardedSegments struct {
	guarded
	sr engine.SegmentRouter
}

func (g guardedSegments) RouteSegments(ctx context.Context, segs []segment.Segment) error {
	if err := g.fence.Check(); err != nil {
		return err
	}
	return g.sr.RouteSegments(ctx, segs)
}

func (g guardedSegments) RoutedSegments(ctx context.Context) ([]string, error) {
	return g.sr.RoutedSegments(ctx)
}

// GuardFlags wraps a feature-flag system as Guard wraps a router; nil stays nil.
func GuardFlags(f engine.Flags, fence *Fence) engine.Flags {
	if f == nil {
		return nil
	}
	return guardedFlags{f: f, fence: fence}
}

type guardedFlags struct {
	f     engine.Flags
	fence *Fence
}

func (g guardedFlags) ReadFlag(ctx context.Context, flag string) (int, json.RawMessage, error) {
	return g.f.ReadFlag(ctx, flag)
}

func (g guardedFlags) SetFlagPercent(ctx context.Context, flag string, percent int) error {
	if err := g.fence.Check(); err != nil {
		return err
	}
	return g.f.SetFlagPercent(ctx, flag, percent)
}

func (g guardedFlags) RestoreFlag(ctx context.Context, flag string, saved json.RawMessage) error {
	if err := g.fence.Check(); err != nil {
		return err
	}
	return g.f.RestoreFlag(ctx, flag, saved)
}
