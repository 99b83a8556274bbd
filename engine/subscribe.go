package engine

import (
	"context"
	"sync"
)

// subscribers hands each published state to snapshot subscribers (latest wins, so a slow one
// never blocks the engine) and each event to event streams (every event, in order, queued
// without bound in memory since their readers are local and fast: the printer, tests).
type subscribers struct {
	mu      sync.Mutex
	latest  State
	closed  bool
	states  map[chan State]struct{}
	streams map[*EventStream]struct{}
}

func (s *subscribers) publish(ev Event, st State) {
	s.publishState(st)
	s.pushEvent(ev)
}

// offerLatest puts st in ch, replacing a value the reader has not taken yet. Only the engine
// sends on ch, so after draining it the send cannot block.
func offerLatest(ch chan State, st State) {
	select {
	case ch <- st:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	ch <- st
}

func (s *subscribers) snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
}

func (s *subscribers) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ch := range s.states {
		close(ch)
	}
	s.states = nil
	for es := range s.streams {
		es.close()
	}
	s.streams = nil
}

// Subscribe returns a channel that always holds the newest state (a reader that falls behind
// skips to the newest) and a function to unsubscribe. The channel is closed, after the last
// state, when the engine stops. States share memory with each other: read them, never write.
func (e *Engine) Subscribe() (<-chan State, func()) { return e.subs.subscribe() }

// Subscribers is how many snapshot subscriptions are open (for leak checks and the header).
func (e *Engine) Subscribers() int {
	e.subs.mu.Lock()
	defer e.subs.mu.Unlock()
	return len(e.subs.states)
}

// Events returns a stream of every event published from now on, in order.
func (e *Engine) Events() *EventStream { return e.subs.events() }

// EventStream delivers every event in order.
type EventStream struct {
	owner  *subscribers
	mu     sync.Mutex
	queue  []Event
	closed bool
	wake   chan struct{}
}

func (es *EventStream) push(ev Event) {
	es.mu.Lock()
	es.queue = append(es.queue, ev)
	es.mu.Unlock()
	select {
	case es.wake <- struct{}{}:
	default:
	}
}

func (es *EventStream) close() {
	es.mu.Lock()
	es.closed = true
	es.mu.Unlock()
	select {
	case es.wake <- struct{}{}:
	default:
	}
}

// Next waits for the next event. It returns false once the engine has stopped and every
// event was read, or when ctx ends.
func (es *EventStream) Next(ctx context.Context) (Event, bool) {
	for {
		es.mu.Lock()
		if len(es.queue) > 0 {
			ev := es.queue[0]
			es.queue = es.queue[1:]
			es.mu.Unlock()
			return ev, true
		}
		closed := es.closed
		es.mu.Unlock()
		if closed {
			return Event{}, false
		}
		select {
		case <-es.wake:
		case <-ctx.Done():
			return Event{}, false
		}
	}
}

// Close stops the stream.
func (es *EventStream) Close() {
	es.owner.mu.Lock()
	delete(es.owner.streams, es)
	es.owner.mu.Unlock()
	es.close()
}

// subscribe opens a latest-wins state subscription (Engine.Subscribe, Player.Subscribe).
func (s *subscribers) subscribe() (<-chan State, func()) {
	ch := make(chan State, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	ch <- s.latest
	if s.closed {
		close(ch)
		return ch, func() {}
	}
	if s.states == nil {
		s.states = map[chan State]struct{}{}
	}
	s.states[ch] = struct{}{}
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.states[ch]; ok {
			delete(s.states, ch)
			close(ch)
		}
	}
}

// events opens a stream of every event from now on (Engine.Events, Player.Events).
func (s *subscribers) events() *EventStream {
	es := &EventStream{wake: make(chan struct{}, 1), owner: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		es.close()
		return es
	}
	if s.streams == nil {
		s.streams = map[*EventStream]struct{}{}
	}
	s.streams[es] = struct{}{}
	return es
}

// publishState offers st to every state subscriber without an event.
func (s *subscribers) publishState(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.latest = st
	for ch := range s.states {
		offerLatest(ch, st)
	}
}

// pushEvent hands ev to every event stream without publishing a state.
func (s *subscribers) pushEvent(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for es := range s.streams {
		es.push(ev)
	}
}
