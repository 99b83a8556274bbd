package alerts

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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
	// DefaultMaxBody is the largest payload read, in bytes: about a thousand alerts. Set
	// Alertmanager's max_alerts so a notification stays below it.
	DefaultMaxBody       = 1 << 20
	DefaultTimeout       = 5 * time.Second // Alertmanager waits no longer than this on perch
	DefaultMaxConcurrent = 16              // payloads read and handled at once
)

const (
	maxRemembered = 4096 // alert identities kept to skip repeats; forgotten all at once beyond
	staleRetries  = 3    // rollbacks refused as stale before giving up
)

// Options tune a Receiver; zero values take the defaults.
type Options struct {
	MaxBody int64         // the largest body read, in bytes
	Timeout time.Duration // the longest one request waits for a slot, and then for the engine
	// MaxConcurrent is how many payloads are read and handled at once; more wait for a slot
	// (at most Timeout, then 503).
	MaxConcurrent int
	// Interval is the period of note summaries; zero takes the rollout's analysis.interval.
	Interval time.Duration
	// Getenv reads the environment variables credentials name as ${NAME}; nil is os.Getenv.
	Getenv func(string) string
	// Logf reports refused requests (the first of each interval in full, the rest in sum),
	// summaries the journal could not take and unwise settings; nil discards them.
	Logf func(format string, args ...any)
}

// Receiver is the http.Handler Alertmanager's webhook posts to. It refuses requests without
// the credentials the alerts block asks for, and handles one payload at a time, so of two
// matching alerts arriving together the second sees the first's rollback. Alerts it does not
// act on are noted within a quota (see quota), so a flood costs one note per interval.
type Receiver struct {
	eng   Engine
	rules []map[string]string
	opts  Options
	auth  credentials
	tls   *tls.Config
	quota *quota
	turn  chan struct{}
	slots chan struct{}

	mu    sync.Mutex
	noted map[string]bool // identities already noted or counted, so a group's re-sends are not again
}

// NewReceiver builds a receiver that rolls back on alerts matching cfg.RollbackOn, checking
// the credentials cfg names and reading its TLS files now. Its errors are about cfg: an unset
// environment variable, a certificate that does not load.
func NewReceiver(eng Engine, cfg *spec.Alerts, opts Options) (*Receiver, error) {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.Interval <= 0 {
		opts.Interval = spec.DefaultInterval
		if st := eng.Snapshot(); st.Spec != nil && st.Spec.Analysis.Interval > 0 {
			opts.Interval = time.Duration(st.Spec.Analysis.Interval)
		}
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	auth, err := newCredentials(cfg, opts.Getenv, func(w string) { opts.Logf("alerts: %s", w) })
	if err != nil {
		return nil, err
	}
	tlsConf, err := loadTLS(cfg.TLS, opts.Getenv)
	if err != nil {
		return nil, err
	}
	if tlsConf == nil && (auth.bearer || auth.basic) && !cfg.Loopback() {
		opts.Logf("alerts: the receiver's credentials cross the network in clear text; set alerts.tls to serve HTTPS")
	}
	r := &Receiver{
		eng: eng, rules: cfg.RollbackOn, opts: opts, auth: auth, tls: tlsConf,
		turn: make(chan struct{}, 1), slots: make(chan struct{}, opts.MaxConcurrent), noted: map[string]bool{},
	}
	r.quota = newQuota(opts.Interval, r.flush)
	return r, nil
}

// TLSConfig is the TLS configuration the alerts block asks for, or nil for plain HTTP.
func (r *Receiver) TLSConfig() *tls.Config { return r.tls }

// Close journals what waits for a summary now (or logs it if the engine has stopped) and
// stops the summary timer.
func (r *Receiver) Close() {
	r.quota.stop()
	r.flush()
}

// flush journals the pending summary and logs the pending refusals.
func (r *Receiver) flush() {
	note, log := r.quota.take(time.Now())
	if log != "" {
		r.opts.Logf("alerts: %s", log)
	}
	if note == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	if err := r.eng.Note(ctx, summaryActor(), note); err != nil {
		r.opts.Logf("alerts: could not journal %q: %v", note, err)
	}
}

// summaryActor signs the notes that speak for many alerts.
func summaryActor() engine.Actor {
	return engine.Actor{Name: "alertmanager", Role: engine.RoleOperator, Source: "alertmanager"}
}

// Outcome is what one payload did.
type Outcome struct {
	RolledBack []string // names of the alerts a rollback was sent for
	Noted      int      // alerts recorded as notes
	Repeats    int      // alerts skipped because they were noted before
	Summarised int      // alerts counted for the interval's summary note
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
	if o.Summarised > 0 {
		parts = append(parts, fmt.Sprintf("%d left to the interval's summary", o.Summarised))
	}
	return strings.Join(parts, "; ")
}

// ServeHTTP answers Alertmanager: 401 without the credentials, 200 once the payload is
// handled, 4xx for a payload it should not send again, 503 when the receiver or the engine
// could not take it in time (Alertmanager retries).
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	// Credentials first, before reading anything more: a stranger costs a hash and a refusal.
	if why := r.auth.check(req); why != "" {
		if c := r.auth.challenge(); c != "" {
			w.Header().Set("WWW-Authenticate", c)
		}
		if req.ProtoMajor == 1 {
			w.Header().Set("Connection", "close") // a guesser reconnects for every guess
		}
		r.logRefusal(req, http.StatusUnauthorized, why)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST Alertmanager's webhook payload here", http.StatusMethodNotAllowed)
		return
	}
	wait, cancelWait := context.WithTimeout(req.Context(), r.opts.Timeout)
	select {
	case r.slots <- struct{}{}:
		cancelWait()
		defer func() { <-r.slots }()
	case <-wait.Done():
		cancelWait()
		w.Header().Set("Retry-After", "1")
		r.refuse(w, req, http.StatusServiceUnavailable, fmt.Errorf("busy: %d payloads in hand", cap(r.slots)))
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
	r.logRefusal(req, code, msg)
	http.Error(w, msg, code)
}

// logRefusal logs the first refusal of an interval in full and counts the rest by code.
func (r *Receiver) logRefusal(req *http.Request, code int, msg string) {
	if r.quota.refused(time.Now(), fmt.Sprintf("%d %s", code, http.StatusText(code))) {
		r.opts.Logf("alerts: answered %d to %s: %s", code, req.RemoteAddr, msg)
	}
}

// Handle acts on a parsed payload: rollbacks first, so a matching alert never waits behind
// notes about others, then a note for each other alert not noted before, within the quota.
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
		text, k := a.Name()+" resolved", kindResolved
		if a.Status == StatusFiring {
			text, k = firingText(a)+" (matches no alerts.rollbackOn entry)", kindUnmatched
		}
		if err := r.note(ctx, a, text, k, &out); err != nil {
			return out, err
		}
	}
	if n := p.TruncatedAlerts; n > 0 {
		if now := time.Now(); !r.quota.admit(now) {
			r.quota.add(now, kindTruncated, "", n)
			return out, nil
		}
		text := fmt.Sprintf("Alertmanager left %d alert(s) out of a notification (its max_alerts); perch could not act on them", n)
		if err := r.eng.Note(ctx, summaryActor(), text); err != nil {
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
			return r.note(ctx, a, fmt.Sprintf("%s; it matches alerts.rollbackOn but the rollout is already %s", reason, st.Phase.Words()), kindTooLate, out)
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

// note records text for the alert unless this occurrence of it was noted already, or counts
// it as k for the interval's summary once the interval has noted its share one by one.
func (r *Receiver) note(ctx context.Context, a Alert, text string, k kind, out *Outcome) error {
	id := a.identity()
	r.mu.Lock()
	seen := r.noted[id]
	r.mu.Unlock()
	if seen {
		out.Repeats++
		return nil
	}
	if now := time.Now(); r.quota.admit(now) {
		if err := r.eng.Note(ctx, actorFor(a), text); err != nil {
			return fmt.Errorf("note %s: %w", a.Name(), err)
		}
		out.Noted++
	} else {
		r.quota.add(now, k, a.Name(), 1)
		out.Summarised++
	}
	r.mu.Lock()
	if len(r.noted) >= maxRemembered {
		clear(r.noted)
	}
	r.noted[id] = true
	r.mu.Unlock()
	return nil
}

func actorFor(a Alert) engine.Actor {
	return engine.Actor{Name: "alertmanager/" + a.Name(), Role: engine.RoleOperator, Source: "alertmanager"}
}

func firingText(a Alert) string {
	text := a.Name() + " firing"
	if s := strings.TrimSpace(a.Annotations["summary"]); s != "" {
		text += ": " + clean(s, maxSummary)
	}
	return text
}

// canRollBack reports whether the engine would take a rollback now. A pending rollout counts:
// Run starts it before it reads any command.
func canRollBack(st engine.State) bool {
	return st.Phase == engine.PhasePending || st.Allowed(engine.CommandRollback) == nil
}
