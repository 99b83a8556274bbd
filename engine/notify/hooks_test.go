package notify_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/hooks"
	"github.com/perchhq/perch/engine/notify"
	"github.com/perchhq/perch/engine/spec"
)

// failingRecorder fails every "record" hook and passes the rest at once.
type failingRecorder struct{}

func (failingRecorder) Run(ctx context.Context, h spec.Hook, v spec.HookVars) hooks.Result {
	if h.Exec != nil && h.Exec.Command[0] == "record" {
		return hooks.Result{Outcome: hooks.Failed, Error: "exit status 2", ExitCode: new(2), Output: "deploy tracker unreachable"}
	}
	return hooks.Result{Outcome: hooks.OK}
}

// TestFailingAfterHookIsNews: an after-step hook's failure changes nothing in the rollout, so
// it is news of its own; a passing gate and a hook's start are not.
func TestFailingAfterHookIsNews(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		w := &world{}
		text := rolloutYAML + "hooks:\n  - {on: before-step, exec: {command: [smoke]}}\n  - {on: after-step, exec: {command: [record]}}\n" + webhookOnly
		r := startWith(t, engine.Config{Spec: parseSpec(t, text), Router: w, Source: w, Hooks: failingRecorder{}}, notify.Options{Client: net.client()})
		<-r.done
		<-r.notified
		got := headlines(webhookDocs(t, net.delivered(hookHost)))
		want := "after-step hook failed at step 1/2 (10% for 1m)"
		if !slices.Contains(got, want) || slices.ContainsFunc(got, func(h string) bool { return strings.Contains(h, "before-step") }) {
			t.Errorf("headlines %q: want %q, and nothing on the passing before-step hook", got, want)
		}
	})
}
