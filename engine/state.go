package engine

import (
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/perchhq/perch/engine/hooks"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

// Phase is where a rollout stands.
type Phase string

// The phases. RolledBack and Promoted end a rollout (a rolled-back one may be retried).
const (
	PhasePending     Phase = "pending"
	PhaseRunning     Phase = "running"
	PhasePaused      Phase = "paused"
	PhaseHolding     Phase = "holding"
	PhaseRollingBack Phase = "rolling_back"
	PhaseRolledBack  Phase = "rolled_back"
	PhasePromoting   Phase = "promoting"
	PhasePromoted    Phase = "promoted"
)

// Done reports whether the phase ends the rollout.
func (p Phase) Done() bool { return p == PhaseRolledBack || p == PhasePromoted }

// StepStatus is where one step of the timeline stands.
type StepStatus string

// The step statuses.
const (
	StepPending StepStatus = "pending"
	StepCurrent StepStatus = "current"
	StepPassed  StepStatus = "passed"
	StepFailed  StepStatus = "failed"  // the rollout rolled back during it
	StepSkipped StepStatus = "skipped" // promoted before it ran
)

// Limits of what State keeps in memory, so a long rollout stays flat.
const (
	MaxHistory = 720 // points per check per step (6 h at 30 s)
	MaxLog     = 200 // events in the log
)

// State is the rollout as folded from its events: what the TUI shows, what a replay shows and
// what a resumed engine continues from. Apply is its only mutator and uses nothing but the
// event (no clock, no I/O), so folding the same events always gives the same State.
type State struct {
	Spec    *spec.Rollout `json:"-"`
	Seq     int64         // last event applied
	Attempt int           // 1 for the first run, +1 per retry
	Phase   Phase

	Step          int // current step index
	StepStartedAt time.Time
	Steps         []StepState

	// Weight is the canary percent the provider last confirmed, -1 before any.
	Weight int
	// Target is the weight the current step (or a rollback/promotion) wants, -1 before any;
	// TargetConfirmed is set once the provider has confirmed it.
	Target          int
	TargetConfirmed bool
	WeightSetAt     time.Time
	// Failed weight changes since the last success, and when the next try is due.
	WeightAttempts int
	RetryAt        time.Time
	RouterError    string

	// Segments are the segments the provider last confirmed routing wholly to the canary, by
	// name; nil until it has confirmed any (or when a resume made them unknown).
	Segments []string
	// Failed segment changes since the last success, when the next try is due, and why.
	SegmentAttempts int
	SegmentRetryAt  time.Time
	SegmentError    string
	// Flags are the feature flags the rollout's setFlag steps set, in step order.
	Flags []FlagState
	// ChangedAt is when a segment or a flag last changed the canary's traffic, as confirmed.
	ChangedAt time.Time

	AnalysisStartedAt time.Time // zero while setting the weight or stabilizing
	LastLookAt        time.Time
	Looks             int
	Checks            []CheckState
	// OutageSince is the first look of the current run of looks where the metrics source
	// failed for some check; zero when the last look had data.
	OutageSince time.Time

	PausedBy    *Actor // nil for a pause step
	PauseReason string
	PauseUntil  time.Time // zero: until resumed
	PauseStep   bool      // paused by the rollout's own pause step

	// HooksPassed are the before-* hooks (by index in the file's hooks) that passed: the
	// before-rollout ones in this attempt, the before-step ones in this step.
	HooksPassed []int
	// HooksRunning are the hooks journaled as started and not yet finished: a gate among them
	// when perch restarts runs again.
	HooksRunning []int

	Hold       HoldKind
	HoldReason string
	HoldUntil  time.Time // when a hold for the release window ends (zero otherwise)

	EndedBy     *Actor // who rolled back or promoted (nil: the engine)
	EndReason   string
	Stopped     bool // the engine stopped (signal, error) with the rollout unfinished
	StopReason  string
	Log         []Event // newest last, at most MaxLog
	StartedAt   time.Time
	LastEventAt time.Time
}

// StepState is one step of the timeline.
type StepState struct {
	Status StepStatus
	By     *Actor // who advanced it, if not its own analysis
	Reason string
}

// CheckState is one check as the current step has seen it.
type CheckState struct {
	Name     string
	Unit     string
	Critical bool
	// DryRun checks are judged and shown but never act; Would is what the check last said it
	// would have done (an EventDryRun), cleared when it passes and at each step.
	DryRun   bool
	Would    DryRunAction
	Judge    string
	Criteria metrics.Criteria
	Last     *CheckResult // nil until the first look of the step
	Failures int          // fail verdicts this step
	History  []Point      // newest last, at most MaxHistory
}

// FlagState is one feature flag the rollout sets.
type FlagState struct {
	Name string
	// Read is set once the flag's rollout before perch changed it is recorded: Original, its
	// percent then (-1 when it was no single percentage), and Saved, what restores it.
	Read     bool
	Original int
	Saved    json.RawMessage
	// Percent is what the flag system last confirmed (-1 unknown); Restored that it was put
	// back as read.
	Percent  int
	Restored bool
	// Failed changes since the last success, when the next try is due, and why.
	Attempts int
	RetryAt  time.Time
	Error    string
}

// Point is one look at a check: the newest interval's values, the canary's weight then (so a
// chart can mark where it changed), and the judge's evidence over the window: the harm p-value
// and, from judges that test safety too, the safety p-value (NaN where the judge gives none).
type Point struct {
	Time          time.Time
	Canary        float64
	Baseline      float64
	Weight        int
	PValue, PSafe float32
}

// NewState is the state of rollout before its first event.
func NewState(rollout *spec.Rollout) State {
	s := State{Spec: rollout, Phase: PhasePending, Weight: -1, Target: -1}
	s.Steps = make([]StepState, len(rollout.Steps))
	for i := range s.Steps {
		s.Steps[i].Status = StepPending
	}
	s.Checks = make([]CheckState, len(rollout.Checks))
	for i, c := range rollout.Checks {
		judge := c.Judge
		if judge == "" {
			judge = rollout.Analysis.Judge
		}
		s.Checks[i] = CheckState{Name: c.Name, Unit: c.Unit, Critical: c.Critical, DryRun: c.DryRun, Judge: judge, Criteria: c.Criteria()}
	}
	for _, name := range rollout.FlagNames() {
		s.Flags = append(s.Flags, FlagState{Name: name, Original: -1, Percent: -1})
	}
	return s
}

// Apply folds one event into the state.
func (s *State) Apply(ev Event) {
	s.Seq = ev.Seq
	s.LastEventAt = ev.Time
	s.Log = appendBounded(s.Log, ev, MaxLog)
	// Every event type is listed, so a new one cannot be forgotten here (.ci/run checks).
	//exhaustive:enforce
	switch ev.Type {
	case EventRolloutStarted:
		s.Attempt = max(ev.Attempt, 1)
		s.Phase = PhaseRunning
		s.StartedAt = ev.Time
		s.EndedBy, s.EndReason = nil, ""
		for i := range s.Steps {
			s.Steps[i] = StepState{Status: StepPending}
		}
		s.clearPause()
		s.clearHold()
		s.resetStrategyAttempts()
		s.HooksPassed = nil
	case EventStepStarted:
		s.Step = ev.Step
		s.HooksPassed = slices.DeleteFunc(s.HooksPassed, func(i int) bool { return s.Spec.Hooks[i].On != spec.HookBeforeRollout })
		s.StepStartedAt = ev.Time
		s.Steps[ev.Step] = StepState{Status: StepCurrent}
		s.resetAnalysis()
		if ev.Weight != nil {
			s.Target = *ev.Weight
			s.TargetConfirmed = false
		}
		if st := s.Spec.Steps[ev.Step]; st.Pause != nil {
			s.Phase = PhasePaused
			s.PauseStep = true
			s.PausedBy = nil
			s.PauseReason = "pause step"
			if ev.Until != nil {
				s.PauseUntil = *ev.Until
			}
		}
	case EventWeightSet:
		w := *ev.Weight
		if w != s.Weight {
			s.AnalysisStartedAt = time.Time{} // traffic changed: stabilize again
		}
		s.Weight = w
		s.TargetConfirmed = w == s.Target
		s.WeightSetAt = ev.Time
		s.WeightAttempts, s.RetryAt, s.RouterError = 0, time.Time{}, ""
	case EventWeightFailed:
		s.WeightAttempts = ev.Attempt
		s.RouterError = ev.Error
		if ev.RetryAt != nil {
			s.RetryAt = *ev.RetryAt
		}
	case EventAnalysisStarted:
		s.AnalysisStartedAt = ev.Time
		s.LastLookAt = time.Time{}
		s.Looks = 0
	case EventAnalysis:
		s.LastLookAt = ev.Time
		s.Looks++
		outage := false
		for _, r := range ev.Checks {
			// A dry-run check's source failing holds nothing, so it is no outage.
			if i := s.checkIndex(r.Check); r.SourceError != "" && (i < 0 || !s.Checks[i].DryRun) {
				outage = true
			}
		}
		switch {
		case !outage:
			s.OutageSince = time.Time{}
		case s.OutageSince.IsZero():
			s.OutageSince = ev.Time
		}
		for _, r := range ev.Checks {
			i := s.checkIndex(r.Check)
			if i < 0 {
				continue
			}
			c := &s.Checks[i]
			c.Last = &r
			if r.Verdict == metrics.Fail {
				c.Failures++
			}
			if r.Verdict == metrics.Pass && r.SourceError == "" {
				c.Would = ""
			}
			c.History = appendBounded(c.History, lookPoint(ev.Time, s.Weight, r), MaxHistory)
		}
	case EventStepPassed:
		s.Steps[ev.Step] = StepState{Status: StepPassed, By: ev.Actor, Reason: ev.Reason}
		s.Phase = PhaseRunning
		s.clearPause()
		s.clearHold()
	case EventPaused:
		s.Phase = PhasePaused
		s.PausedBy = ev.Actor
		s.PauseReason = ev.Reason
		s.PauseUntil = time.Time{}
		s.PauseStep = false
		s.clearHold()
	case EventResumed:
		s.Phase = PhaseRunning
		s.clearPause()
		s.clearHold()
		s.WeightAttempts, s.RetryAt = 0, time.Time{}
		s.resetStrategyAttempts()
	case EventHeld:
		s.Phase = PhaseHolding
		s.Hold = ev.Hold
		s.HoldReason = ev.Reason
		s.HoldUntil = time.Time{}
		if ev.Until != nil {
			s.HoldUntil = *ev.Until
		}
	case EventRollbackStarted:
		s.Phase = PhaseRollingBack
		s.Target, s.TargetConfirmed = 0, false
		s.EndedBy, s.EndReason = ev.Actor, ev.Reason
		s.Steps[s.Step].Status = StepFailed
		s.Steps[s.Step].Reason = ev.Reason
		s.WeightAttempts, s.RetryAt = 0, time.Time{}
		s.resetStrategyAttempts()
		s.clearPause()
		s.clearHold()
	case EventRolledBack:
		s.Phase = PhaseRolledBack
	case EventPromoteStarted:
		s.Phase = PhasePromoting
		s.Target, s.TargetConfirmed = 100, false
		s.EndedBy, s.EndReason = ev.Actor, ev.Reason
		s.WeightAttempts, s.RetryAt = 0, time.Time{}
		s.resetStrategyAttempts()
		s.clearPause()
		s.clearHold()
	case EventPromoted:
		s.Phase = PhasePromoted
		for i := range s.Steps {
			switch s.Steps[i].Status {
			case StepCurrent:
				s.Steps[i].Status = StepPassed
			case StepPending:
				s.Steps[i].Status = StepSkipped
			}
		}
	case EventReconciled:
		s.Stopped, s.StopReason = false, ""
		// Segments and flags are read again after the reconciliation (segments_set,
		// flag_set); until then they are unknown, so whatever is not read back is set again.
		if s.Segments != nil {
			s.Segments = nil
		}
		for i := range s.Flags {
			s.Flags[i].Percent = -1
		}
		switch {
		case ev.Weight == nil: // the provider could not be read: set the target again to be sure
			s.TargetConfirmed = false
		case *ev.Weight != s.Weight:
			s.Weight = *ev.Weight
			s.TargetConfirmed = s.Weight == s.Target
			s.WeightSetAt = ev.Time
			s.AnalysisStartedAt = time.Time{}
		}
	case EventStopped:
		s.Stopped = true
		s.StopReason = ev.Reason
	case EventSegmentsSet:
		s.applySegmentsSet(ev)
	case EventSegmentsFailed:
		s.SegmentAttempts, s.SegmentError = ev.Attempt, ev.Error
		s.SegmentRetryAt = time.Time{}
		if ev.RetryAt != nil {
			s.SegmentRetryAt = *ev.RetryAt
		}
	case EventFlagRead, EventFlagSet, EventFlagRestored, EventFlagFailed:
		s.applyFlag(ev)
	case EventHookStarted:
		if !slices.Contains(s.HooksRunning, ev.Hook.Index) {
			s.HooksRunning = append(s.HooksRunning, ev.Hook.Index)
		}
	case EventHookFinished:
		s.HooksRunning = slices.DeleteFunc(s.HooksRunning, func(i int) bool { return i == ev.Hook.Index })
		if ev.Hook.Outcome == hooks.OK && ev.Hook.On.Gates() && !slices.Contains(s.HooksPassed, ev.Hook.Index) {
			s.HooksPassed = append(s.HooksPassed, ev.Hook.Index)
		}
	case EventDryRun:
		if i := s.checkIndex(ev.Check); i >= 0 {
			s.Checks[i].Would = ev.Would
		}
	case EventCommandRefused, EventNote, EventWindowOverride:
		// Only the log keeps them: a refused command, a note or an override (the step_passed
		// or promote_started that follows it does the rest) changes nothing.
	}
}

// lookPoint is the point a look's result adds to its check's history.
func lookPoint(t time.Time, weight int, r CheckResult) Point {
	p := Point{Time: t, Canary: float64(r.LastCanary), Baseline: float64(r.LastBaseline), Weight: weight,
		PValue: float32(math.NaN()), PSafe: float32(math.NaN())}
	if r.PValue != nil {
		p.PValue = float32(*r.PValue)
	}
	if v, ok := r.Stats["pSafe"]; ok {
		p.PSafe = float32(v)
	}
	return p
}

func (s *State) clearPause() {
	s.PausedBy, s.PauseReason, s.PauseUntil, s.PauseStep = nil, "", time.Time{}, false
}

func (s *State) clearHold() { s.Hold, s.HoldReason, s.HoldUntil = "", "", time.Time{} }

func (s *State) resetAnalysis() {
	s.AnalysisStartedAt, s.LastLookAt, s.Looks, s.OutageSince = time.Time{}, time.Time{}, 0, time.Time{}
	for i := range s.Checks {
		s.Checks[i].Last = nil
		s.Checks[i].Failures = 0
		s.Checks[i].Would = ""
		s.Checks[i].History = s.Checks[i].History[:0]
	}
}

func (s *State) checkIndex(name string) int {
	for i := range s.Checks {
		if s.Checks[i].Name == name {
			return i
		}
	}
	return -1
}

// Clone is a deep copy of the state, safe to hand to another goroutine.
func (s State) Clone() State {
	c := s
	c.Steps = slices.Clone(s.Steps)
	c.Log = slices.Clone(s.Log)
	c.Checks = slices.Clone(s.Checks)
	c.Segments = slices.Clone(s.Segments)
	c.Flags = slices.Clone(s.Flags)
	c.HooksPassed = slices.Clone(s.HooksPassed)
	c.HooksRunning = slices.Clone(s.HooksRunning)
	for i := range c.Checks {
		c.Checks[i].History = slices.Clone(s.Checks[i].History)
	}
	return c
}

// CurrentStep is the spec's step the rollout is in.
func (s *State) CurrentStep() spec.Step { return s.Spec.Steps[s.Step] }

// AnalysisEndsAt is when the current step's analysis time is over (zero if it has not begun or
// the step does not analyze).
func (s *State) AnalysisEndsAt() time.Time {
	if s.AnalysisStartedAt.IsZero() {
		return time.Time{}
	}
	return s.AnalysisStartedAt.Add(time.Duration(s.CurrentStep().Analyze))
}

// StabilizedAt is when the canary's traffic — its weight, segments and flags — has been in
// place long enough to be judged (zero until the step's weight is confirmed, or before any
// change when no weight was set yet).
func (s *State) StabilizedAt() time.Time {
	at := s.ChangedAt
	if s.TargetConfirmed && s.WeightSetAt.After(at) {
		at = s.WeightSetAt
	}
	if s.Target >= 0 && !s.TargetConfirmed || at.IsZero() {
		return time.Time{}
	}
	return at.Add(time.Duration(s.Spec.Analysis.Stabilization))
}

// NextLookAt is when the engine next samples the checks (zero when it is not analysing).
func (s *State) NextLookAt() time.Time {
	if s.AnalysisStartedAt.IsZero() {
		return time.Time{}
	}
	interval := time.Duration(s.Spec.Analysis.Interval)
	if s.LastLookAt.IsZero() {
		return s.AnalysisStartedAt.Add(interval)
	}
	next := s.LastLookAt.Add(interval)
	if end := s.AnalysisEndsAt(); s.LastLookAt.Before(end) && next.After(end) {
		next = end // always look once more when the analysis time is up
	}
	return next
}

// appendBounded appends v, dropping the oldest element once the slice holds limit.
func appendBounded[T any](list []T, v T, limit int) []T {
	if len(list) >= limit {
		copy(list, list[1:])
		list = list[:len(list)-1]
	}
	return append(list, v)
}
