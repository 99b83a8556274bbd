package notify_test

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/notify"
)

// TestDryRunWouldHaveMessage: a dry-run check that would have rolled back is news once, said
// as what it would have done; the rollout is promoted.
func TestDryRunWouldHaveMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		yaml := strings.Replace(rolloutYAML, "    critical: true\n", "    critical: true\n    dryRun: true\n", 1)
		net := newFakeNet()
		r := startRollout(t, parseSpec(t, yaml+notifyBoth), &world{failAt: 50}, notify.Options{Client: net.client()})
		<-r.done
		<-r.notified
		if r.outcome != engine.OutcomePromoted {
			t.Fatalf("outcome %s, want promoted", r.outcome)
		}
		docs := webhookDocs(t, net.delivered(hookHost))
		wouldHave := "errors (dry run) would have rolled back at step 2/2 (50% for 1m): errors failed: canary 30% vs baseline 0% (+30pp over a zero baseline; tolerance +1pp) (critical)"
		want := []string{
			"rollout started",
			"step 1/2 (10% for 1m) passed: every check passed",
			wouldHave,
			"step 2/2 (50% for 1m) passed: every check passed (dry runs not counted: errors)",
			"promoted: all traffic is on the canary, 2m20s after the rollout started",
		}
		if got := headlines(docs); !slices.Equal(got, want) {
			t.Fatalf("headlines\n%q\nwant\n%q", got, want)
		}
		if docs[2].Event.Type != engine.EventDryRun || docs[2].Event.Check != "errors" || docs[2].Event.Would != engine.WouldRollBack {
			t.Errorf("dry-run document's event %+v", docs[2].Event)
		}
		if !strings.Contains(docs[0].Message, "- checks: errors (critical) (dry run)") {
			t.Errorf("started message %q does not mark the dry run", docs[0].Message)
		}
	})
}
