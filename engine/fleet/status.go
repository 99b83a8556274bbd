// Package fleet supervises many rollouts in one process: one engine and one journal per
// rollout file, started as files appear, ordered by dependsOn (waves), found by name.
//
// A Fleet reads Config.Files once, or scans Config.Dir every Config.Poll (reading a new or
// changed file once it is as it was one scan earlier, not while it is being written); each
// file is validated (spec.Load), then checked against the others: a name already taken, a dependsOn
// naming no rollout, or a cycle, refuses it (Status.Invalid) without touching the rest. A
// rollout starts, through Config.Run, once every rollout it depends on has promoted; if one
// of those rolls back, is cancelled, refused or fails, it is cancelled instead (Status.Cancelled)
// and never started, so it journals nothing. A removed file's rollout runs on; a running
// rollout's file is not read again. Views read Subscribe (latest list wins) and Rollout(name).
//
// With replicas sharing the rollouts, a RunFunc hands the fleet a View of a rollout another
// replica leads (Start.Serve: a follower of its journal) instead of an engine: its states are
// the rollout's, so waves follow a dependency led anywhere, and its Replica() fills Status.Role
// and Status.Leader.
package fleet

import (
	"context"

	"github.com/perchhq/perch/engine"
)

// Status is one rollout as the overview and `perch status` show it.
type Status struct {
	// Name is the rollout's name (its file's `name:`), unique among the rollouts that are not
	// Invalid. A refused file is named by the name it gives if that much can be read (so a
	// duplicate shares its name with the rollout it collides with), else by its file's name.
	Name string
	// State is the rollout's newest state. Its Spec is nil when the rollout never started
	// (waiting, cancelled, invalid, or it failed to start).
	State engine.State
	// Waiting lists the rollouts this one dependsOn that have not promoted yet; while it is
	// not empty the rollout has not started (phase "waiting").
	Waiting []string
	// DependsOn is the rollout file's dependsOn, for drawing the chain.
	DependsOn []string
	// Cancelled says why the rollout will never start (a rollout it depends on rolled back);
	// empty otherwise.
	Cancelled string
	// Invalid is why the rollout's file was refused (validation, a duplicate name); the
	// rollout never started. Empty otherwise.
	Invalid string
	// File is the rollout file's path.
	File string
	// Journal is the rollout's journal file once it started; empty before.
	Journal string
	// Outcome is how the rollout's engine ended; empty while it runs or if it never started.
	Outcome engine.Outcome
	// Failed says why the rollout could not start (its provider or source could not be
	// reached, its journal not created) or why its engine stopped on an error; empty otherwise.
	Failed string
	// Leader is the replica leading the rollout when replicas share it (--ha); empty otherwise.
	// Role is this replica's part in it then: leader or standby.
	Leader string
	Role   string
}

// Rollout is one rollout as a view or the control socket drives it; *engine.Engine is one.
type Rollout interface {
	Subscribe() (<-chan engine.State, func())
	Do(ctx context.Context, cmd engine.Command) error
}
