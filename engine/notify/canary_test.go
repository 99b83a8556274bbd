package notify_test

import (
	"strings"
	"testing"
	"testing/synctest"

	"github.com/perchhq/perch/engine/notify"
)

// TestMessagesNameTheCanary: with the rollout file's canary block, every message names the
// version at its head, the start gives the whole identity, and the webhook document carries
// it; the step counts from 1 in the document and in its event alike.
func TestMessagesNameTheCanary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		yaml := strings.Replace(rolloutYAML, "name: web\n", "name: web\ncanary: {version: v2.4.0, image: ghcr.io/acme/web:v2.4.0, commit: 1a2b3c4}\n", 1)
		net := newFakeNet()
		r := startRollout(t, parseSpec(t, yaml+notifyBoth), &world{failAt: 50}, notify.Options{Client: net.client()})
		<-r.done
		<-r.notified
		docs := webhookDocs(t, net.delivered(hookHost))
		if len(docs) == 0 {
			t.Fatal("no webhook documents")
		}
		if !strings.Contains(docs[0].Message, "web v2.4.0: rollout started\n- canary: v2.4.0 (image ghcr.io/acme/web:v2.4.0, commit 1a2b3c4)") {
			t.Errorf("the start message does not name the canary:\n%s", docs[0].Message)
		}
		for _, d := range docs {
			if !strings.HasPrefix(d.Message, "web v2.4.0: ") || d.Canary == nil || d.Canary.Commit != "1a2b3c4" {
				t.Errorf("document %+v does not name the canary", d)
			}
			if d.Step != d.Event.Step+1 {
				t.Errorf("document step %d, its event's %d (in memory, from 0): one numbering in the JSON", d.Step, d.Event.Step)
			}
		}
		if texts := slackTexts(t, net.delivered(slackHost)); len(texts) == 0 || !strings.HasPrefix(texts[0], "*web v2.4.0* rollout started") {
			t.Errorf("Slack: %q", texts)
		}
	})
}
