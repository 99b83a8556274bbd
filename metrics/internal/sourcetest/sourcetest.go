// Package sourcetest runs a rollout through the engine against a metrics source, for the
// sources' tests: each checks that its queries reach its (faked) service and that the engine
// judges what comes back.
package sourcetest

import (
	"context"
	"testing"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/spec"
)

// Parse reads a rollout file's text, failing t on a problem.
func Parse(t testing.TB, text string) *spec.Rollout {
	t.Helper()
	r, err := spec.Parse("rollout.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Run runs r to its end on an in-memory router with src as its metrics, and fails t unless
// it ends as want.
func Run(t testing.TB, r *spec.Rollout, src engine.Source, want engine.Outcome) {
	t.Helper()
	eng, err := engine.New(engine.Config{Spec: r, Router: &enginetest.Router{}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	out, err := eng.Run(context.Background())
	if err != nil || out != want {
		t.Fatalf("rollout ended %q, %v; want %q", out, err, want)
	}
}
