package engine

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/perchhq/perch/metrics"
)

// EventType names what happened. The names are the journal's contract: replays of old
// journals depend on them, so they are never renamed. A new type must be handled by every
// switch marked //exhaustive:enforce (State.Apply, Describe, the journal's check,
// notifications); .ci/run fails until it is.
type EventType string

// Every event the engine records, in roughly the order a rollout produces them.
const (
	EventRolloutStarted  EventType = "rollout_started"  // a rollout (or a retry of it) begins; Attempt
	EventStepStarted     EventType = "step_started"     // Step begins; Weight is its target (absent for a pause)
	EventWeightSet       EventType = "weight_set"       // the provider confirmed Weight
	EventWeightFailed    EventType = "weight_failed"    // setting Weight failed; Error, Attempt, RetryAt
	EventAnalysisStarted EventType = "analysis_started" // stabilization is over; the analysis window opens
	EventAnalysis        EventType = "analysis"         // one look at every check; Checks
	EventStepPassed      EventType = "step_passed"      // Step is done (by its analysis, its pause, or Actor)
	EventPaused          EventType = "paused"           // Actor paused; Reason
	EventResumed         EventType = "resumed"          // Actor resumed
	EventHeld            EventType = "held"             // the engine holds; Reason (inconclusive evidence, or a failing provider)
	EventRollbackStarted EventType = "rollback_started" // sending all traffic back to stable; Actor or Reason
	EventRolledBack      EventType = "rolled_back"      // the provider confirmed 0%
	EventPromoteStarted  EventType = "promote_started"  // sending all traffic to canary; Actor or Reason
	EventPromoted        EventType = "promoted"         // the provider confirmed 100%
	EventCommandRefused  EventType = "command_refused"  // Actor's Command was refused; Reason
	EventReconciled      EventType = "reconciled"       // on resume: Weight is what the provider really has
	EventStopped         EventType = "stopped"          // the engine stopped without touching traffic; Reason
	EventNote            EventType = "note"             // Actor recorded Reason (an alert that fired or resolved, say)
	EventSegmentsSet     EventType = "segments_set"     // the provider confirmed routing Segments (names) wholly to the canary; Reason on resume
	EventSegmentsFailed  EventType = "segments_failed"  // routing Segments failed; Error, Attempt, RetryAt
	EventFlagRead        EventType = "flag_read"        // Flag's rollout before perch changed it: Percent (-1: not a percentage), Saved
	EventFlagSet         EventType = "flag_set"         // the flag system confirmed Flag at Percent; Reason on resume
	EventFlagRestored    EventType = "flag_restored"    // Flag was put back as read; Percent as read back
	EventFlagFailed      EventType = "flag_failed"      // reading, setting or restoring Flag failed; Error, Attempt, RetryAt
	EventWindowOverride  EventType = "window_override"  // Actor advanced or promoted outside the release window; Reason says why it was closed
	EventHookStarted     EventType = "hook_started"     // a hook began: Hook (index, on, kind); Reason on resume
	EventHookFinished    EventType = "hook_finished"    // a hook ended: Hook with its outcome, exit code or status, duration and last output; Error; Reason when cancelled
	EventDryRun          EventType = "dry_run"          // dry-run Check would have made the rollout do Would, for Reason; it did not
)

// Event is one thing the engine did or observed. Fields beyond the first four are set only by
// the event types that use them (see the EventType constants).
//
// Step is the step's index (0 for the first) in memory; in JSON — the journal, -o json, the
// webhook's event — it is the step's number as people count it, 1 for the first, as in
// `perch status -o json`, the webhook's "step" and the verbs' --step: one numbering for
// every script. (Journals of format 1 counted from 0; ReadJournal reads both.)
type Event struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	Type EventType `json:"type"`
	Step int       `json:"step"`

	Actor   *Actor        `json:"actor,omitempty"`
	Command CommandKind   `json:"command,omitempty"`
	Weight  *int          `json:"weight,omitempty"`
	Reason  string        `json:"reason,omitempty"`
	Error   string        `json:"error,omitempty"`
	Attempt int           `json:"attempt,omitempty"`
	RetryAt *time.Time    `json:"retryAt,omitempty"`
	Until   *time.Time    `json:"until,omitempty"`
	Hold    HoldKind      `json:"hold,omitempty"`
	Checks  []CheckResult `json:"checks,omitempty"`

	Check    string          `json:"check,omitempty"`
	Would    DryRunAction    `json:"would,omitempty"`
	Segments []string        `json:"segments,omitempty"`
	Flag     string          `json:"flag,omitempty"`
	Percent  *int            `json:"percent,omitempty"`
	Saved    json.RawMessage `json:"saved,omitempty"`

	Hook *HookRun `json:"hook,omitempty"`
}

// wireEvent is Event as JSON has it field for field, without Event's methods.
type wireEvent Event

// MarshalJSON writes the event with its step counted from 1.
func (ev Event) MarshalJSON() ([]byte, error) {
	w := wireEvent(ev)
	w.Step++
	return json.Marshal(w)
}

// UnmarshalJSON reads an event whose step is counted from 1.
func (ev *Event) UnmarshalJSON(data []byte) error {
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	w.Step--
	*ev = Event(w)
	return nil
}

// CheckResult is one check at one look: the newest values of each side and the judge's verdict
// over the whole analysis window so far.
type CheckResult struct {
	Check        string         `json:"check"`
	LastCanary   metrics.Number `json:"lastCanary"`
	LastBaseline metrics.Number `json:"lastBaseline"`
	// SourceError is why the metrics source failed this look (the verdict is then
	// inconclusive); a query that merely matched nothing is not a source error.
	SourceError string `json:"sourceError,omitempty"`
	metrics.Result
}

// DryRunAction is what a dry-run check would have made the rollout do, had it not been one.
type DryRunAction string

// What a dry-run check can be recorded as having wanted.
const (
	WouldRollBack DryRunAction = "rollback" // it failed critically, or past analysis.failureLimit
	WouldHold     DryRunAction = "hold"     // it was inconclusive when the step's analysis ended, or its source failed
	WouldBlock    DryRunAction = "block"    // it was failing when the step's analysis ended: the step would not have passed
)

// Words say what the action would have done: "would have rolled back".
func (a DryRunAction) Words() string {
	switch a {
	case WouldRollBack:
		return "would have rolled back"
	case WouldHold:
		return "would have held the rollout"
	case WouldBlock:
		return "would have kept the step from passing"
	}
	return "would have acted"
}

// HoldKind says why the engine holds.
type HoldKind string

// The reasons to hold.
const (
	HoldInconclusive HoldKind = "inconclusive" // the analysis ended without a conclusive verdict
	HoldRouter       HoldKind = "router"       // the traffic provider keeps failing, or traffic was moved by hand
	HoldOutage       HoldKind = "outage"       // the metrics source is failing; continues when it recovers
	HoldFlag         HoldKind = "flag"         // the feature-flag system keeps failing, or a flag was changed by hand
	HoldWindow       HoldKind = "window"       // outside the release window; continues when one opens
	HoldHook         HoldKind = "hook"         // a before-rollout or before-step hook failed; resuming runs it again
)

// Role is what an actor may do.
type Role string

// The two roles. Only operators change traffic.
const (
	RoleOperator Role = "operator"
	RoleViewer   Role = "viewer"
)

// Actor is who sent a command: a person at a terminal, an SSH key, the control socket, or an
// alert. Name is what the event log shows.
type Actor struct {
	Name        string `json:"name"`
	Role        Role   `json:"role,omitempty"`
	Source      string `json:"source,omitempty"` // "tui", "ssh", "socket", "alertmanager"…
	Fingerprint string `json:"fingerprint,omitempty"`
}

// CommandKind is what an operator asks of the engine.
type CommandKind string

// The commands, sent from a TUI key, the control socket or an alert rule.
const (
	CommandPause    CommandKind = "pause"
	CommandResume   CommandKind = "resume"
	CommandAdvance  CommandKind = "advance"  // skip the rest of this step's wait
	CommandRollback CommandKind = "rollback" // send 0% to canary
	CommandPromote  CommandKind = "promote"  // send 100% to canary now
	CommandRetry    CommandKind = "retry"    // after a rollback, start again from step 1
)

// Command is a request to the engine, carrying who sent it and the step it was issued against.
type Command struct {
	Kind   CommandKind
	Actor  Actor
	Step   int
	Reason string // optional: why, for the event log ("alert HighErrorRate firing")
}

// Errors a command can be refused with.
var (
	// ErrStaleCommand refuses a command issued against a step that is already over (an
	// advance, resume, promote or retry; a rollback or a pause is never stale).
	ErrStaleCommand = errors.New("stale command")
	// ErrNotAllowed refuses a command that makes no sense in the current phase.
	ErrNotAllowed = errors.New("not allowed now")
	// ErrForbidden refuses a command from an actor who may only watch.
	ErrForbidden = errors.New("viewers cannot change traffic")
	// ErrNotRunning is returned when the engine is not running to take a command.
	ErrNotRunning = errors.New("engine not running")
)

func intPtr(v int) *int { return &v }

func timePtr(t time.Time) *time.Time { return &t }
