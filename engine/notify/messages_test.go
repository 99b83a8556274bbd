package notify_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/notify"
	"github.com/perchhq/perch/internal/printable/printabletest"
)

const (
	slackHost = "hooks.slack.test"
	hookHost  = "hooks.example.test"
)

func TestRollbackMessagesCarryTheNumbers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		r := startRollout(t, parseSpec(t, rolloutYAML+notifyBoth), &world{failAt: 50}, notify.Options{Client: net.client()})
		<-r.done
		<-r.notified
		if r.outcome != engine.OutcomeRolledBack {
			t.Fatalf("outcome %s, want rolled back", r.outcome)
		}
		docs := webhookDocs(t, net.delivered(hookHost))
		want := []string{
			"rollout started",
			"step 1/2 (10% for 1m) passed: every check passed",
			"rolling back at step 2/2 (50% for 1m) from 50%",
			"rolled back: all traffic is on stable; step 2/2 (50% for 1m) failed",
		}
		if got := headlines(docs); !slices.Equal(got, want) {
			t.Fatalf("headlines\n%q\nwant\n%q", got, want)
		}
		last := docs[len(docs)-1]
		wantMsg := `web: rolled back: all traffic is on stable; step 2/2 (50% for 1m) failed
- why: errors failed: canary 0.3 vs baseline 0 (+0.3 over a zero baseline; tolerance 0.01) (critical)
- errors (critical): fail: canary 0.3 vs baseline 0 (+0.3 over a zero baseline; tolerance 0.01); failed 1 look(s) this step`
		if last.Message != wantMsg {
			t.Errorf("rolled-back message\n%s\nwant\n%s", last.Message, wantMsg)
		}
		if last.Rollout != "web" || last.Phase != engine.PhaseRolledBack || last.Step != 2 || last.Steps != 2 ||
			last.Weight == nil || *last.Weight != 0 || last.Event.Type != engine.EventRolledBack || last.Missed != 0 {
			t.Errorf("webhook document %+v", last)
		}
		if !strings.Contains(docs[0].Message, "plan: 10% for 1m → 50% for 1m → promote\n- checks: errors (critical)") {
			t.Errorf("started message %q does not give the plan", docs[0].Message)
		}
		if !strings.Contains(docs[1].Message, "- errors (critical): pass: canary 0 vs baseline 0 (+0.0%; tolerance 0.01)") {
			t.Errorf("step message %q does not give the check's numbers", docs[1].Message)
		}

		// The same news reaches Slack as mrkdwn, with the secrets from the environment.
		texts := slackTexts(t, net.delivered(slackHost))
		if len(texts) != len(docs) {
			t.Fatalf("%d Slack messages, %d webhook documents", len(texts), len(docs))
		}
		wantSlack := "*web* rolled back: all traffic is on stable; step 2/2 (50% for 1m) failed\n• why: errors failed: canary 0.3 vs baseline 0"
		if !strings.HasPrefix(texts[len(texts)-1], wantSlack) {
			t.Errorf("Slack text\n%s\nwant it to start\n%s", texts[len(texts)-1], wantSlack)
		}
		slack, hook := net.delivered(slackHost)[0], net.delivered(hookHost)[0]
		if slack.path != "/services/T0/B0/slack-secret" {
			t.Errorf("Slack path %q, want the token from $SLACK_TOKEN", slack.path)
		}
		if hook.header.Get("Authorization") != "Bearer hook-secret" || hook.header.Get("X-Team") != "payments" || hook.header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook headers %v", hook.header)
		}
	})
}

func TestPauseHoldAndPromoteMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		yaml := strings.Replace(rolloutYAML, "  - {setWeight: 50, analyze: 1m}\n", "  - pause: {}\n  - {setWeight: 50, analyze: 1m}\n", 1)
		net := newFakeNet()
		w := &world{}
		r := startRollout(t, parseSpec(t, yaml+notifyBoth), w, notify.Options{Client: net.client()})
		alice := engine.Actor{Name: "alice", Role: engine.RoleOperator}

		time.Sleep(25 * time.Second) // step 1, first look taken
		if err := r.eng.Do(t.Context(), engine.Command{Kind: engine.CommandPause, Actor: alice, Reason: "waiting for the DBA"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		r.eng.Do(t.Context(), engine.Command{Kind: engine.CommandResume, Actor: alice})
		w.setDown(true) // the metrics source fails: the rollout holds
		time.Sleep(15 * time.Second)
		w.setDown(false)
		time.Sleep(2 * time.Minute) // step 1 passes; the pause step waits
		r.eng.Do(t.Context(), engine.Command{Kind: engine.CommandResume, Actor: alice, Step: 1})
		<-r.done
		<-r.notified
		if r.outcome != engine.OutcomePromoted {
			t.Fatalf("outcome %s", r.outcome)
		}
		docs := webhookDocs(t, net.delivered(hookHost))
		want := []string{
			"rollout started",
			"paused at step 1/3 (10% for 1m) by alice",
			"holding at step 1/3 (10% for 1m) with the canary at 10% (outage)",
			"step 1/3 (10% for 1m) passed: every check passed",
			"paused at step 2/3 (pause): waiting for an operator to resume",
			"step 2/3 (pause) passed: resumed by alice",
			"step 3/3 (50% for 1m) passed: every check passed",
			"promoted: all traffic is on the canary, 3m51s after the rollout started",
		}
		if got := headlines(docs); !slices.Equal(got, want) {
			t.Fatalf("headlines\n%q\nwant\n%q", got, want)
		}
		for i, wantDetail := range map[int]string{
			1: "- why: waiting for the DBA\n- errors (critical): inconclusive: too few samples (canary 1, baseline 1; need 3 each)",
			2: "- why: metrics source failing: errors: canary_errors: prometheus: connection refused\n- errors (critical): no data: canary_errors: prometheus: connection refused",
			7: "- why: every step passed\n- errors (critical): pass",
		} {
			if !strings.Contains(docs[i].Message, wantDetail) {
				t.Errorf("message %d\n%s\nwant it to contain\n%s", i, docs[i].Message, wantDetail)
			}
		}
		if docs[2].Phase != engine.PhaseHolding || *docs[2].Weight != 10 || docs[2].Step != 1 {
			t.Errorf("held document %+v", docs[2])
		}
	})
}

func TestStoppedIsNewsOnlyMidRollout(t *testing.T) {
	tests := []struct {
		name   string
		failAt int
		stopAt time.Duration
		last   string
	}{
		{"mid-rollout", 0, 100 * time.Second, "perch stopped at step 2/2 (50% for 1m) with the canary at 50%; traffic was left as it is until perch is resumed"},
		{"after a rollback", 50, 10 * time.Minute, "rolled back: all traffic is on stable; step 2/2 (50% for 1m) failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := newFakeNet()
				w := &world{failAt: tc.failAt}
				spec := parseSpec(t, rolloutYAML+webhookOnly)
				// Linger keeps the engine up after a rollback, as perch serve does.
				r := startWith(t, engine.Config{Spec: spec, Router: w, Source: w, Linger: true}, notify.Options{Client: net.client()})
				time.Sleep(tc.stopAt)
				r.stop()
				<-r.done
				<-r.notified
				got := headlines(webhookDocs(t, net.delivered(hookHost)))
				if got[len(got)-1] != tc.last {
					t.Errorf("last notification %q, want %q", got[len(got)-1], tc.last)
				}
			})
		})
	}
}

// TestMessagesArePrintable: a rollback by an alert whose name and summary hold control
// characters, escape sequences, line breaks and bidi controls: the message shows them as
// visible text on the lines it has, while the webhook's event carries them as journaled.
func TestMessagesArePrintable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		r := startRollout(t, parseSpec(t, rolloutYAML+notifyBoth), &world{}, notify.Options{Client: net.client()})
		for r.eng.Snapshot().Phase != engine.PhaseRunning {
			time.Sleep(time.Second)
		}
		alert := engine.Actor{Name: "alertmanager/" + printabletest.Hostile("alertname"), Role: engine.RoleOperator, Source: "alertmanager"}
		reason := printabletest.Hostile("summary")
		if err := r.eng.Do(context.Background(), engine.Command{Kind: engine.CommandRollback, Actor: alert, Reason: reason}); err != nil {
			t.Fatal(err)
		}
		<-r.done
		<-r.notified
		docs := webhookDocs(t, net.delivered(hookHost))
		rb := docs[len(docs)-2]
		if rb.Event.Type != engine.EventRollbackStarted || !strings.Contains(rb.Event.Reason, "\x1b]52;c;") {
			t.Fatalf("webhook event %s %q: want the rollback with its reason as journaled", rb.Event.Type, rb.Event.Reason)
		}
		texts := slackTexts(t, net.delivered(slackHost))
		for i, msg := range []string{rb.Message, texts[len(texts)-2]} {
			lines := strings.Split(msg, "\n")
			if len(lines) != 2 || !strings.Contains(lines[1], "why: summary") {
				t.Errorf("message %d is not a headline and a why line:\n%q", i, msg)
			}
			if r, ok := printabletest.Find(msg, true); ok {
				t.Errorf("message %d holds %U:\n%q", i, r, msg)
			}
		}
	})
}
