package alerts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/spec"
)

// Engine is what the receiver needs of the rollout engine; *engine.Engine is the real one.
type Engine interface {
	Do(ctx context.Context, cmd engine.Command) error
	Note(ctx context.Context, actor engine.Actor, text string) error
	Snapshot() engine.State
}

// Defaults of Options.
const (
	DefaultMaxBody = 4 << 20         // bytes; a group of thousands of alerts fits
	DefaultTimeout = 5 * time.Second // Alertmanager waits no longer than this on perch
)

const (
	maxRemembered = 4096 // alert identities kept to skip repeats; forgotten all at once beyond
	staleRetries  = 3    // rollbacks refused as stale before giving up
)

// Options tune a Receiver; zero values take the defaults.
type Options struct {
	MaxBody int64         // the largest body read, in bytes
	Timeout time.Duration // the longest one request waits for the engine
	// Logf reports refused payloads and failures to reach the engine; nil discards them.
	Logf func(format string, args ...any)
}

// Receiver is the http.Handler Alertmanager's webhook posts to. It handles one payload at a
// time, so of two matching alerts arriving together the second sees the first's rollback.
type Receiver struct {
	eng   Engine
	rules []map[string]string
	opts  Options
	turn  chan struct{}

	mu    sync.Mutex
	noted map[string]bool // identities already noted, so a group's re-sends are not noted again
}

// NewReceiver builds a receiver that rolls back on alerts matching cfg.RollbackOn.
func NewReceiver(eng Engine, cfg *spec.Alerts, opts Options) *Receiver {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Receiver{eng: eng, rules: cfg.RollbackOn, opts: opts, turn: make(chan struct{}, 1), noted: map[string]bool{}}
}

// Outcome is what one payload did.
type Outcome struct {
	RolledBack []string // names of the alerts a rollback was sent for
	Noted      int      // alerts recorded as notes
	Repeats    int      // alerts skipped because they were noted before
}

// String is the outcome in one line, the answer Alertmanager logs.
func (o Outcome) String() string {
	var parts []string
	if len(o.RolledBack) > 0 {
		parts = append(parts, "rolled back for "+strings.Join(o.RolledBack, ", "))
	}
	parts = append(parts, fmt.Sprintf("%d noted", o.Noted))
	if o.Repeats > 0 {
		parts = append(parts, fmt.Sprintf("%d already noted", o.Repeats))
	}
	return strings.Join(parts, "; ")
}

// ServeHTTP answers Alertmanager: 200 once the payload is handled, 4xx for a payload it
// should not send again, 503 when the engine could not take it in time (Alertmanager retries).
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST Alertmanager's webhook payload here", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.opts.MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		r.refuse(w, req, http.StatusRequestEntityTooLarge, fmt.Errorf("payload over %d bytes", tooBig.Limit))
		return
	case err != nil:
		r.refuse(w, req, http.StatusBadRequest, fmt.Errorf("read payload: %w", err))
		return
	}
	p, err := ParsePayload(body)
	if err != nil {
		r.refuse(w, req, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.opts.Timeout)
	defer cancel()
	out, err := r.Handle(ctx, p)
	if err != nil {
		r.refuse(w, req, http.StatusServiceUnavailable, err)
		return
	}
	fmt.Fprintln(w, out)
}

func (r *Receiver) refuse(w http.ResponseWriter, req *http.Request, code int, err error) {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	r.opts.Logf("alerts: answered %d to %s: %s", code, req.RemoteAddr, msg)
	http.Error(w, msg, code)
}

// Handle acts on a parsed payload: rollbacks first, so a matching alert never waits behind
// notes about others, then a note for each other alert not noted before.
func (r *Receiver) Handle(ctx context.Context, p *Payload) (Outcome, error) {
	var out Outcome
	select {
	case r.turn <- struct{}{}:
	case <-ctx.Done():
		return out, fmt.Errorf("wait for the previous payload: %w", ctx.Err())
	}
	defer func() { <-r.turn }()
	var rest []Alert
	for _, a := range p.Alerts {
		if a.Status != StatusFiring || !a.MatchesAny(r.rules) {
			rest = append(rest, a)
			continue
		}
		if err := r.rollback(ctx, a, &out); err != nil {
			return out, err
		}
	}
	for _, a := range rest {
		text := a.Name() + " resolved"
		if a.Status == StatusFiring {
			text = firingText(a) + " (matches no alerts.rollbackOn entry)"
		}
		if err := r.note(ctx, a, text, &out); err != nil {
			return out, err
		}
	}
	if p.TruncatedAlerts > 0 {
		actor := engine.Actor{Name: "alertmanager", Role: engine.RoleOperator, Source: "alertmanager"}
		text := fmt.Sprintf("Alertmanager left %d alert(s) out of a notification (its max_alerts); perch could not act on them", p.TruncatedAlerts)
		if err := r.eng.Note(ctx, actor, text); err != nil {
			return out, fmt.Errorf("note truncated alerts: %w", err)
		}
	}
	return out, nil
}

// rollback sends the rollback a matching alert asks for, against the step the rollout is at.
// A rollout that cannot roll back any more gets a note instead, as the engine would refuse.
func (r *Receiver) rollback(ctx context.Context, a Alert, out *Outcome) error {
	reason := firingText(a)
	for range staleRetries {
		st := r.eng.Snapshot()
		if !canRollBack(st) {
			return r.note(ctx, a, fmt.Sprintf("%s; it matches alerts.rollbackOn but the rollout is already %s", reason, st.Phase.Words()), out)
		}
		err := r.eng.Do(ctx, engine.Command{Kind: engine.CommandRollback, Actor: actorFor(a), Step: st.Step, Reason: reason})
		switch {
		case err == nil:
			out.RolledBack = append(out.RolledBack, a.Name())
			return nil
		case errors.Is(err, engine.ErrStaleCommand):
			// The step ended between the snapshot and the command: send it for the new step.
		case errors.Is(err, engine.ErrNotAllowed):
			return nil // the rollout ended meanwhile; the engine journaled why it refused
		default:
			return fmt.Errorf("roll back for %s: %w", a.Name(), err)
		}
	}
	return fmt.Errorf("roll back for %s: the rollout changed step %d times while sending it", a.Name(), staleRetries)
}

// note records text for the alert unless this occurrence of it was noted already.
func (r *Receiver) note(ctx context.Context, a Alert, text string, out *Outcome) error {
	id := a.identity()
	r.mu.Lock()
	seen := r.noted[id]
	r.mu.Unlock()
	if seen {
		out.Repeats++
		return nil
	}
	if err := r.eng.Note(ctx, actorFor(a), text); err != nil {
		return fmt.Errorf("note %s: %w", a.Name(), err)
	}
	r.mu.Lock()
	if len(r.noted) >= maxRemembered {
		clear(r.noted)
	}
	r.noted[id] = true
	r.mu.Unlock()
	out.Noted++
	return nil
}

func actorFor(a Alert) engine.Actor {
	return engine.Actor{Name: "alertmanager/" + a.Name(), Role: engine.RoleOperator, Source: "alertmanager"}
}

func firingText(a Alert) string {
	text := a.Name() + " firing"
	if s := strings.TrimSpace(a.Annotations["summary"]); s != "" {
		text += ": " + s
	}
	return text
}

// canRollBack reports whether the engine would take a rollback now. A pending rollout counts:
// Run starts it before it reads any command.
func canRollBack(st engine.State) bool {
	return st.Phase == engine.PhasePending || st.Allowed(engine.CommandRollback) == nil
}
