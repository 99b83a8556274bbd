// Package demo runs a whole canary rollout on one machine: a stable and a canary HTTP backend
// on loopback, perch's proxy in front of them, a load generator sending real HTTP requests
// through it, and scenarios in which the canary misbehaves in known ways.
package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/providers/flags/flagd"
	"github.com/perchhq/perch/providers/proxy"
)

// Options say which scenario to run and how fast.
type Options struct {
	Scenario string  // a name from Scenarios (empty: healthy)
	Speed    float64 // durations are divided by it (0: 1)
	// Rate is the load in requests per second at speed 1 (0: DefaultRate). It grows with the
	// speed, up to MaxRate, so each step sees the same number of requests at speeds up to
	// MaxRate/Rate (3.3× at the default) and fewer beyond.
	Rate float64
}

// Load limits. The default rate is what the 1% step needs: the sequential judge shows the
// canary's error rate within the error check's 5 points after about 90 error-free canary
// requests, and 1% of 600 requests/s is 90 in the step's 15 s. At 200 requests/s the 1% step
// would hold for about 45 s more.
const (
	DefaultRate     = 600
	MaxRate         = 2000
	loadConcurrency = 256
)

// Stack is a running demo: backends, proxy, load, and what the engine needs to run over them.
type Stack struct {
	Scenario Scenario
	Spec     *spec.Rollout
	Proxy    *proxy.Server
	// OverrideToken is this run's secret for pinning requests: sent in proxy.TokenHeader with
	// OverrideHeader, a request goes to the side it names.
	OverrideToken string
	Source        engine.Source // the proxy's own observations, through the scenario's outage switch
	Load          *Load
	// Flags is the feature-flag system of a scenario with Strategies (a flagd file, FlagsFile),
	// nil otherwise.
	Flags     engine.Flags
	FlagsFile string

	stable, canary *backend
	outage         *flakySource
	flagsDir       string
	speed          float64
	cancel         context.CancelFunc
	running        sync.WaitGroup
}

// Start brings the demo stack up on 127.0.0.1 and starts the load; Close takes it down.
func Start(opts Options) (*Stack, error) {
	if opts.Scenario == "" {
		opts.Scenario = "healthy"
	}
	if opts.Speed == 0 {
		opts.Speed = 1
	}
	if opts.Rate == 0 {
		opts.Rate = DefaultRate
	}
	if opts.Speed <= 0 || opts.Rate <= 0 {
		return nil, fmt.Errorf("demo: speed and rate must be positive (got %v and %v)", opts.Speed, opts.Rate)
	}
	sc, err := FindScenario(opts.Scenario)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stack{Scenario: sc, speed: opts.Speed, cancel: cancel}
	if err := s.build(opts); err != nil {
		s.Close()
		return nil, err
	}
	s.running.Go(func() { s.Load.Run(ctx) })
	return s, nil
}

func (s *Stack) build(opts Options) error {
	var err error
	if s.stable, err = startBackend("stable", normal); err != nil {
		return err
	}
	if s.canary, err = startBackend("canary", normal); err != nil {
		return err
	}
	// Slots of a quarter of the look interval, kept for 5 minutes of demo time: enough for a
	// step's window and a long hold.
	resolution := max(time.Duration(float64(interval)/4/s.speed), time.Millisecond)
	s.OverrideToken = rand.Text() // new every run: only whoever reads this run's hint may pin
	s.Proxy, err = proxy.Listen("127.0.0.1:0", proxy.Config{
		Stable: s.stable.URL(), Canary: s.canary.URL(),
		StickyHeader: UserHeader, OverrideHeader: OverrideHeader, OverrideToken: s.OverrideToken,
		Resolution: resolution, Retention: 1200 * resolution,
		ErrorLog: log.New(io.Discard, "", 0),
	})
	if err != nil {
		return err
	}
	s.outage = &flakySource{source: s.Proxy.Source()}
	s.Source = s.outage
	var st Strategies
	if s.Scenario.Strategies {
		if st, err = s.writeFlags(); err != nil {
			return err
		}
	}
	if s.Spec, err = SpecWith(s.Scenario, s.speed, s.Proxy.Addr(), s.stable.URL(), s.canary.URL(), st); err != nil {
		return err
	}
	s.Load = &Load{
		Target:      s.Proxy.URL() + "/",
		Rate:        min(opts.Rate*s.speed, MaxRate),
		Concurrency: loadConcurrency,
		Users:       10_000,
		UserHeader:  UserHeader,
	}
	return nil
}

// flagsDoc is the flagd file of the segments-and-flags scenario: the flag off for everyone.
const flagsDoc = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "` + DemoFlag + `": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off"
    }
  }
}
`

// writeFlags writes the scenario's flagd file in a directory of its own and connects to it.
func (s *Stack) writeFlags() (Strategies, error) {
	dir, err := os.MkdirTemp("", "perch-demo-flags")
	if err != nil {
		return Strategies{}, err
	}
	s.flagsDir = dir
	s.FlagsFile = filepath.Join(dir, "flags.json")
	if err := os.WriteFile(s.FlagsFile, []byte(flagsDoc), 0o644); err != nil {
		return Strategies{}, err
	}
	client, err := flagd.New(s.FlagsFile)
	if err != nil {
		return Strategies{}, err
	}
	s.Flags = client
	return Strategies{FlagsFile: s.FlagsFile, Start: time.Now()}, nil
}

// Drive plays the scenario against a rollout: it changes the canary as the rollout's events
// arrive, until the stream ends.
func (s *Stack) Drive(ctx context.Context, events *engine.EventStream) {
	ctx, cancel := context.WithCancel(ctx)
	d := &driver{ctx: ctx, stack: s, canary: s.canary}
	defer func() {
		cancel() // stop the scenario's timers, then wait for them
		d.timers.Wait()
	}()
	for {
		ev, ok := events.Next(ctx)
		if !ok {
			return
		}
		if s.Scenario.react != nil {
			s.Scenario.react(d, ev)
		}
	}
}

// Close stops the load, then the proxy and the backends.
func (s *Stack) Close() error {
	s.cancel()
	s.running.Wait()
	var errs []error
	if s.Proxy != nil {
		errs = append(errs, s.Proxy.Close())
	}
	for _, b := range []*backend{s.stable, s.canary} {
		if b != nil {
			errs = append(errs, b.Close())
		}
	}
	if s.flagsDir != "" {
		errs = append(errs, os.RemoveAll(s.flagsDir))
	}
	return errors.Join(errs...)
}

// driver is what a scenario acts through; its times are in demo time (divided by the speed).
type driver struct {
	ctx    context.Context
	stack  *Stack
	canary *backend
	timers sync.WaitGroup
}

// after runs f once after delay, unless the drive ends first.
func (d *driver) after(delay time.Duration, f func()) {
	d.timers.Go(func() {
		t := time.NewTimer(d.wall(delay))
		defer t.Stop()
		select {
		case <-t.C:
			f()
		case <-d.ctx.Done():
		}
	})
}

// outage makes the metrics source fail from delay on, for length.
func (d *driver) outage(delay, length time.Duration) {
	from := time.Now().Add(d.wall(delay))
	d.stack.outage.fail(from, from.Add(d.wall(length)))
}

func (d *driver) wall(demo time.Duration) time.Duration {
	return time.Duration(float64(demo) / d.stack.speed)
}
