package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/perchhq/perch/engine"
)

// Relay carries a standby's command to the rollout's leader through the store and returns the
// leader's answer: nil once its engine took the command, or the error its engine refused it
// with (engine.ErrStaleCommand, ErrNotAllowed, ErrForbidden, ErrNotRunning, wrapped with the
// engine's words). Seq is the leader's newest event once it took the command, so the standby
// can wait until it shows it. A store implements it (etcd.Rollout.Relay, kube.Rollout.Relay).
type Relay interface {
	Relay(ctx context.Context, cmd engine.Command) (seq int64, err error)
}

// Target is the engine a leader runs relayed commands on (*engine.Engine).
type Target interface {
	Do(ctx context.Context, cmd engine.Command) error
	Snapshot() engine.State
}

// RelayTimeout is how long a relayed command waits for the leader's answer at most; a command
// no leader has taken by then is withdrawn, so it is never applied later.
const RelayTimeout = 10 * time.Second

// MaxRequest bounds a relayed command or answer as stored: the leader reads them from a store
// other programs may write.
const MaxRequest = 8 << 10

// Request is a command as a standby stores it for the leader.
type Request struct {
	// ID names the command (random; unique per command).
	ID    string             `json:"id"`
	Kind  engine.CommandKind `json:"kind"`
	Actor engine.Actor       `json:"actor"`
	Step  int                `json:"step"`
	// Reason is the optional why, for the event log.
	Reason string `json:"reason,omitempty"`
	// Replica is the id of the standby that relayed it.
	Replica string    `json:"replica"`
	Sent    time.Time `json:"sent"`
}

// Sending is a command on its way from a standby to the leader: its request as stored, and
// how long the standby waits for the answer.
type Sending struct {
	ID   string
	Data []byte        // the Request, as stored
	Wait time.Duration // RelayTimeout, or less if the caller's deadline comes sooner
}

// Send prepares cmd for the store: a fresh random id, the request as stored, and a context
// that ends when the wait does (cancel it once answered).
func Send(ctx context.Context, replica string, cmd engine.Command) (Sending, context.Context, context.CancelFunc, error) {
	wait := RelayTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = max(time.Until(d), 0)
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	data, err := json.Marshal(NewRequest(id, replica, cmd))
	if err != nil {
		return Sending{}, ctx, func() {}, err
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	return Sending{ID: id, Data: data, Wait: wait}, ctx, cancel, nil
}

// Withdrawn is the error of a command no leader took in time, taken back from the store:
// nothing changed. leader is who leads now, if anyone.
func (s Sending) Withdrawn(leader string) error {
	if leader == "" {
		leader = "none"
	}
	return fmt.Errorf("%w: no leader took the command within %s (leader: %s); it was withdrawn, nothing changed", engine.ErrNotRunning, s.Wait.Round(time.Millisecond), leader)
}

// Unanswered is the error of a command a leader took but did not answer in time: it may
// have been applied.
func (s Sending) Unanswered() error {
	return fmt.Errorf("the leader took the command but did not answer within %s (it may have stopped leading): it may have been applied; see the rollout's events", s.Wait.Round(time.Millisecond))
}

// Unknown is the error of a command neither answered nor withdrawn, the store (named) failing
// with err: its fate is unknown.
func (s Sending) Unknown(store string, err error) error {
	return fmt.Errorf("no answer from the leader within %s, and %s did not answer either (%w): the command may yet be applied; see the rollout's events", s.Wait.Round(time.Millisecond), store, err)
}

// NewRequest makes the request that relays cmd from the standby named replica.
func NewRequest(id, replica string, cmd engine.Command) Request {
	return Request{ID: id, Kind: cmd.Kind, Actor: cmd.Actor, Step: cmd.Step, Reason: cmd.Reason, Replica: replica, Sent: time.Now().UTC()}
}

// ParseRequest reads a stored request and checks it before it reaches the engine: bounded,
// printable text, and an actor with a role the standby's authentication gives (operator or
// viewer; an actor without one would pass the engine as an operator).
func ParseRequest(data []byte) (Request, error) {
	var r Request
	if len(data) > MaxRequest {
		return r, fmt.Errorf("%w: a relayed command of %d bytes (at most %d)", engine.ErrNotAllowed, len(data), MaxRequest)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: a relayed command that is not one: %v", engine.ErrNotAllowed, err)
	}
	if r.Actor.Role != engine.RoleOperator && r.Actor.Role != engine.RoleViewer {
		return r, fmt.Errorf("%w: a relayed command without the sender's role", engine.ErrForbidden)
	}
	for _, s := range []string{r.ID, string(r.Kind), r.Actor.Name, r.Actor.Source, r.Actor.Fingerprint, r.Reason, r.Replica} {
		if !printable(s) {
			return r, fmt.Errorf("%w: a relayed command with unprintable text", engine.ErrNotAllowed)
		}
	}
	if r.ID == "" || r.Actor.Name == "" {
		return r, fmt.Errorf("%w: a relayed command without its id or sender", engine.ErrNotAllowed)
	}
	return r, nil
}

// Run runs the request's command on t, the leader's engine, waiting for it at most
// RelayTimeout; an engine that did not answer by then may yet apply it, and the error says so.
func Run(ctx context.Context, t Target, r Request) error {
	ctx, cancel := context.WithTimeout(ctx, RelayTimeout)
	defer cancel()
	err := t.Do(ctx, r.Command())
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errors.New("the leader stopped waiting for its engine: the command may have been applied; see the rollout's events")
	}
	return err
}

// Command is the engine command the request carries.
func (r Request) Command() engine.Command {
	return engine.Command{Kind: r.Kind, Actor: r.Actor, Step: r.Step, Reason: r.Reason}
}

// Answer is the leader's reply to a relayed command.
type Answer struct {
	// Code is "" when the engine took the command, else the kind of refusal, as the control
	// socket names them: stale, not_allowed, forbidden, not_running or error.
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
	// Seq is the leader's newest event after it took the command.
	Seq int64 `json:"seq,omitempty"`
}

// AnswerFor is the answer for the engine's result err.
func AnswerFor(err error, seq int64) Answer {
	if err == nil {
		return Answer{Seq: seq}
	}
	code := "error"
	for c, sentinel := range codes {
		if errors.Is(err, sentinel) {
			code = c
		}
	}
	return Answer{Code: code, Error: err.Error()}
}

var codes = map[string]error{
	"stale":       engine.ErrStaleCommand,
	"not_allowed": engine.ErrNotAllowed,
	"forbidden":   engine.ErrForbidden,
	"not_running": engine.ErrNotRunning,
}

// ParseAnswer reads a stored answer and returns the engine's result it carries: nil, or an
// error that wraps the same sentinel the leader's engine refused with and reads as its words.
func ParseAnswer(data []byte) (seq int64, err error) {
	var a Answer
	if len(data) > MaxRequest {
		return 0, errors.New("the leader's answer is too long")
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return 0, fmt.Errorf("the leader's answer does not read: %w", err)
	}
	if a.Code == "" {
		return a.Seq, nil
	}
	msg := a.Error
	if !printable(msg) || msg == "" {
		msg = "refused by the leader"
	}
	return 0, refused{msg: msg, sentinel: codes[a.Code]}
}

// refused is a command the leader's engine refused: its words, and the sentinel for errors.Is.
type refused struct {
	msg      string
	sentinel error
}

func (r refused) Error() string { return r.msg }
func (r refused) Unwrap() error { return r.sentinel }

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}
