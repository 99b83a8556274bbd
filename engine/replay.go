package engine

import (
	"context"
	"math"
	"sync"
	"time"
)

// Replay speeds: Faster and Slower double and halve within these.
const (
	MinReplaySpeed = 0.125
	MaxReplaySpeed = 1024
)

// minReplayGap is the shortest a long recorded gap is cut to (see Player).
const minReplayGap = time.Second

// PlaybackStatus is where a replay stands.
type PlaybackStatus struct {
	Speed  float64   // multiple of recorded speed
	Paused bool      // the operator paused playback
	Pos    int       // events applied so far
	Len    int       // events in the recording
	At     time.Time // recorded time of the last applied event (zero before the first)
	Done   bool      // Pos == Len
}

// Player replays a recording: it folds the recorded events into a State with State.Apply, the
// way the engine did, waiting the recorded time between events divided by the speed. A gap
// longer than two analysis intervals (at least a second) — a pause step, a hold that waited
// for an operator, a stopped engine resumed later — is played as two intervals, so hours of
// waiting do not stall a replay; PlaybackStatus.At still shows the recorded time.
//
// Viewers use it as they use an Engine (Subscribe, Events) and steer it with the playback
// methods; a seek refolds from the start, so every position shows exactly the recorded state.
type Player struct {
	// Linger keeps Run waiting for seeks after the last event until its context ends (for a
	// UI); without it Run returns after the last event. Set it before Run.
	Linger bool

	rec    *Recording
	maxGap time.Duration
	wake   chan struct{} // a playback method changed the schedule

	mu     sync.Mutex
	state  State
	pos    int
	speed  float64
	paused bool
	left   time.Duration // recorded time still to wait before event pos is due
	mark   time.Time     // the wall time left was last brought up to date

	subs subscribers
}

// NewPlayer prepares a replay of rec at speed (a multiple of the recorded speed, clamped to
// MinReplaySpeed..MaxReplaySpeed; 0 means 1), positioned before the first event.
func NewPlayer(rec *Recording, speed float64) *Player {
	if speed == 0 {
		speed = 1
	}
	p := &Player{
		rec:    rec,
		maxGap: max(2*time.Duration(rec.Header.Spec.Analysis.Interval), minReplayGap),
		wake:   make(chan struct{}, 1),
		state:  NewState(rec.Header.Spec),
		speed:  clampSpeed(speed),
		mark:   time.Now(),
	}
	p.subs.latest = p.state.Clone()
	return p
}

func clampSpeed(s float64) float64 {
	if math.IsNaN(s) {
		return 1
	}
	return min(max(s, MinReplaySpeed), MaxReplaySpeed)
}

// Run plays the recording from where it stands. Without Linger it returns nil after the last
// event, or ctx's error if ctx ends first; with Linger it keeps taking seeks until ctx ends and
// returns nil. Either way it closes every subscription and event stream when it returns.
func (p *Player) Run(ctx context.Context) error {
	defer p.subs.close()
	p.mu.Lock()
	p.mark = time.Now()
	p.mu.Unlock()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait, done := p.playDue(time.Now())
		if done && !p.Linger {
			return nil
		}
		if wait <= 0 {
			wait = time.Hour // paused or at the end: only a playback method moves it on
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			if p.Linger {
				return nil
			}
			return ctx.Err()
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// playDue applies every event due at now and returns how long until the next one is due (0:
// nothing is scheduled) and whether the recording has been played to its end.
func (p *Player) playDue(now time.Time) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.account(now)
	events := p.rec.Events
	for !p.paused && p.pos < len(events) && p.left <= 0 {
		ev := events[p.pos]
		p.state.Apply(ev)
		p.pos++
		p.left += p.gap(p.pos) // an overshoot carries over, so lateness does not add up
		p.subs.publish(ev, p.state.Clone())
	}
	if p.pos == len(events) || p.paused {
		return 0, p.pos == len(events)
	}
	// Round up, and wait at least a nanosecond: a zero wait would spin without time passing.
	return max(time.Duration(math.Ceil(float64(p.left)/p.speed)), 1), false
}

// account counts the wall time since the last call against the wait for the next event.
func (p *Player) account(now time.Time) {
	if !p.paused && p.pos < len(p.rec.Events) {
		p.left -= time.Duration(float64(now.Sub(p.mark)) * p.speed)
	}
	p.mark = now
}

// gap is the recorded time between event i-1 and event i, cut to maxGap (0 for the first).
func (p *Player) gap(i int) time.Duration {
	if i <= 0 || i >= len(p.rec.Events) {
		return 0
	}
	d := p.rec.Events[i].Time.Sub(p.rec.Events[i-1].Time)
	return min(max(d, 0), p.maxGap)
}

// Subscribe returns a channel that always holds the newest state (latest wins, as with
// Engine.Subscribe) and a function to unsubscribe. A new value is offered after every applied
// event and every playback change (pause, speed, seek), so a UI redraws its status line too.
// The channel is closed when Run returns.
func (p *Player) Subscribe() (<-chan State, func()) { return p.subs.subscribe() }

// Events streams every event as it is applied, in order (for --headless). A seek forward
// streams the events it skips over; a seek back streams nothing, and playing on from there
// streams those events again.
func (p *Player) Events() *EventStream { return p.subs.events() }

// Status is where the replay stands now.
func (p *Player) Status() PlaybackStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status()
}

func (p *Player) status() PlaybackStatus {
	st := PlaybackStatus{Speed: p.speed, Paused: p.paused, Pos: p.pos, Len: len(p.rec.Events), Done: p.pos == len(p.rec.Events)}
	if p.pos > 0 {
		st.At = p.rec.Events[p.pos-1].Time
	}
	return st
}

// TogglePause pauses or resumes playback; resumed, it waits what was left of the gap.
func (p *Player) TogglePause() { p.change(func() { p.paused = !p.paused }) }

// Faster doubles the speed, up to MaxReplaySpeed.
func (p *Player) Faster() { p.change(func() { p.speed = clampSpeed(p.speed * 2) }) }

// Slower halves the speed, down to MinReplaySpeed.
func (p *Player) Slower() { p.change(func() { p.speed = clampSpeed(p.speed / 2) }) }

// PrevStep goes back to just after the step_started event of the step being shown, or, when
// that is the last event applied, of the step before it (as a media player's "previous").
func (p *Player) PrevStep() {
	p.change(func() {
		target := 0
		for i := p.pos - 2; i >= 0; i-- {
			if p.rec.Events[i].Type == EventStepStarted {
				target = i + 1
				break
			}
		}
		p.seek(target)
	})
}

// NextStep goes forward to just after the next step_started event, or to the end.
func (p *Player) NextStep() {
	p.change(func() {
		target := len(p.rec.Events)
		for i := p.pos; i < len(p.rec.Events); i++ {
			if p.rec.Events[i].Type == EventStepStarted {
				target = i + 1
				break
			}
		}
		p.seek(target)
	})
}

// ToStart goes back to before the first event.
func (p *Player) ToStart() { p.change(func() { p.seek(0) }) }

// ToEnd applies every remaining event.
func (p *Player) ToEnd() { p.change(func() { p.seek(len(p.rec.Events)) }) }

// change applies a playback change under the lock, publishes the state so viewers redraw,
// and wakes Run to reschedule.
func (p *Player) change(f func()) {
	p.mu.Lock()
	p.account(time.Now())
	f()
	p.subs.publishState(p.state.Clone())
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// seek moves to target: forward by applying (and streaming) the events in between, back by
// folding again from the start. The next event is then due after its recorded gap.
func (p *Player) seek(target int) {
	if target < p.pos {
		p.state = NewState(p.rec.Header.Spec)
		for _, ev := range p.rec.Events[:target] {
			p.state.Apply(ev)
		}
	} else {
		for _, ev := range p.rec.Events[p.pos:target] {
			p.state.Apply(ev)
			p.subs.pushEvent(ev)
		}
	}
	p.pos = target
	p.left = p.gap(target)
}
