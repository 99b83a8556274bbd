package control

import (
	"context"
	"fmt"
	"strings"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
)

// Fleet is many rollouts behind one socket; *fleet.Fleet is one.
type Fleet interface {
	Statuses() []fleet.Status
	Rollout(name string) (fleet.Rollout, bool)
}

// Phases of a fleet's rollout that never started, beside the engine's own.
const (
	PhaseWaiting   = "waiting"   // for the rollouts it dependsOn to promote
	PhaseCancelled = "cancelled" // one of those will not promote: it never starts
	PhaseInvalid   = "invalid"   // its file was refused
	PhaseFailed    = "failed"    // it could not start (its provider, source or journal)
)

// Summary is one rollout of a fleet in a line, as `perch status -o json` lists them.
type Summary struct {
	Name string `json:"name"`
	// Phase is the engine's phase, or waiting, cancelled, invalid or failed for a rollout that
	// never ran.
	Phase string `json:"phase"`
	// Step counts from 1, as everywhere; 0 for a rollout that never started.
	Step int `json:"step"`
	// Weight is the canary percent the provider confirmed; -1 before any.
	Weight int `json:"weight"`
	// Role and Leader are set when replicas share the rollouts.
	Role   string `json:"role,omitempty"`
	Leader string `json:"leader,omitempty"`
	// Waiting lists the rollouts a waiting one waits for.
	Waiting []string `json:"waiting,omitempty"`
	// Reason says why a rollout was cancelled; Error why its file was refused or it failed.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Summarize is the one-line form of each status, in order.
func Summarize(list []fleet.Status) []Summary {
	out := make([]Summary, 0, len(list))
	for _, st := range list {
		s := Summary{Name: st.Name, Weight: -1, Leader: st.Leader, Role: st.Role, Reason: st.Cancelled}
		switch {
		case st.Invalid != "":
			s.Phase, s.Error = PhaseInvalid, st.Invalid
		case st.Cancelled != "":
			s.Phase = PhaseCancelled
		case st.State.Spec == nil && st.Failed != "":
			s.Phase, s.Error = PhaseFailed, st.Failed
		case st.State.Spec == nil:
			s.Phase, s.Waiting = PhaseWaiting, st.Waiting
		default:
			s.Phase, s.Step, s.Weight, s.Error = string(st.State.Phase), st.State.Step+1, st.State.Weight, st.Failed
		}
		out = append(out, s)
	}
	return out
}

// fleetTarget is one running rollout of a fleet as a Target.
type fleetTarget struct {
	fleet.Rollout
	last engine.State // the fleet's copy, for a Rollout that cannot say its own
}

func (t fleetTarget) Snapshot() engine.State {
	if s, ok := t.Rollout.(interface{ Snapshot() engine.State }); ok {
		return s.Snapshot()
	}
	return t.last
}

// answerFleet finds the rollout req names (or the only one running) and carries req out on it;
// a status naming none while several rollouts are listed answers with all of them.
func (s *Server) answerFleet(ctx context.Context, req Request, actor engine.Actor) Response {
	list := s.fleet.Statuses()
	name := req.Rollout
	if name == "" {
		if req.Command == "status" && len(list) != 1 {
			return Response{OK: true, Rollouts: Summarize(list)}
		}
		var running []string
		for _, st := range list {
			if st.Invalid == "" && st.State.Spec != nil && st.Outcome == "" && st.Failed == "" {
				running = append(running, st.Name)
			}
		}
		switch {
		case req.Command == "status":
			name = list[0].Name
		case len(running) == 1:
			name = running[0]
		case len(running) == 0:
			return Response{Error: fmt.Sprintf("no rollout runs here (%s)", names(list)), Code: "not_running"}
		default:
			return Response{Error: fmt.Sprintf("%d rollouts run here; name one (perch %s NAME): %s", len(running), req.Command, strings.Join(running, ", ")), Code: "ambiguous"}
		}
	}
	var st *fleet.Status
	for i := range list {
		if list[i].Name == name && (st == nil || st.Invalid != "") {
			st = &list[i]
		}
	}
	if st == nil {
		return Response{Error: fmt.Sprintf("no rollout %q here; there are: %s", name, names(list)), Code: "not_found"}
	}
	r, ok := s.fleet.Rollout(name)
	if !ok || st.State.Spec == nil {
		if req.Command == "status" {
			return Response{OK: true, Rollouts: Summarize([]fleet.Status{*st})}
		}
		sum := Summarize([]fleet.Status{*st})[0]
		why := sum.Phase
		switch {
		case sum.Error != "":
			why += ": " + sum.Error
		case sum.Reason != "":
			why += ": " + sum.Reason
		case len(sum.Waiting) > 0:
			why += " for " + strings.Join(sum.Waiting, ", ") + " to promote"
		}
		return Response{Error: fmt.Sprintf("%s has not started (%s)", name, why), Code: "not_running"}
	}
	return answerOne(ctx, fleetTarget{Rollout: r, last: st.State}, st.Journal, req, actor)
}

// names lists the rollouts' names, or says there are none.
func names(list []fleet.Status) string {
	if len(list) == 0 {
		return "none yet"
	}
	var out []string
	for _, st := range list {
		out = append(out, st.Name)
	}
	return strings.Join(out, ", ")
}
