package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/notify"
)

const webhookOnly = `notify:
  - webhook: {url: "https://hooks.example.test/perch"}
`

// pauses are n paused events, one notification each ("pause 1" … "pause n").
func pauses(from, n int) []engine.Event {
	alice := &engine.Actor{Name: "alice", Role: engine.RoleOperator}
	var out []engine.Event
	for i := from; i < from+n; i++ {
		out = append(out, engine.Event{Seq: int64(i), Time: time.Now(), Type: engine.EventPaused, Actor: alice, Reason: fmt.Sprintf("pause %d", i)})
	}
	return out
}

// runNotifier runs a notifier over events in the background; the returned channel is closed
// when Run returns.
func runNotifier(t *testing.T, yaml string, opts notify.Options, events eventChan) chan struct{} {
	t.Helper()
	n, err := notify.New(parseSpec(t, yaml), getenv, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(context.Background(), events, engine.State{})
	}()
	return done
}

func offsets(ds []delivery) []time.Duration {
	var out []time.Duration
	for _, d := range ds {
		out = append(out, d.at.Sub(ds[0].at))
	}
	return out
}

func TestRetriesBackOffExponentially(t *testing.T) {
	s := time.Second
	tests := []struct {
		name     string
		opts     notify.Options
		receiver func(n int, req *http.Request) (*http.Response, error)
		attempts []time.Duration // when each attempt was made, after the first
		log      string          // what is reported when the message is not delivered
	}{
		{"5xx then recovers", notify.Options{}, func(n int, req *http.Request) (*http.Response, error) {
			if n <= 3 {
				return answer(503)(n, req)
			}
			return answer(200)(n, req)
		}, []time.Duration{0, s, 3 * s, 7 * s}, ""},
		{"network error then recovers", notify.Options{}, func(n int, req *http.Request) (*http.Response, error) {
			if n == 1 {
				return nil, errors.New("connection refused")
			}
			return answer(204)(n, req)
		}, []time.Duration{0, s}, ""},
		{"429 honours Retry-After", notify.Options{}, func(n int, req *http.Request) (*http.Response, error) {
			if n == 1 {
				return answer(429, "7")(n, req)
			}
			return answer(200)(n, req)
		}, []time.Duration{0, 7 * s}, ""},
		{"Retry-After is capped", notify.Options{MaxBackoff: 20 * s}, func(n int, req *http.Request) (*http.Response, error) {
			if n == 1 {
				return answer(429, "3600")(n, req)
			}
			return answer(200)(n, req)
		}, []time.Duration{0, 20 * s}, ""},
		{"backoff is capped, attempts are limited", notify.Options{MaxAttempts: 5, MaxBackoff: 3 * s}, answer(502),
			[]time.Duration{0, s, 3 * s, 6 * s, 9 * s}, `notify: notify[0] (webhook to hooks.example.test): "paused at step 1/2 (10% for 1m) by alice" not delivered: attempt 5 of 5: 502 Bad Gateway: Bad Gateway`},
		{"4xx is not retried", notify.Options{}, answer(404),
			[]time.Duration{0}, "not delivered: attempt 1 of 5: 404 Not Found: Not Found"},
		{"each attempt at a hanging receiver times out", notify.Options{MaxAttempts: 3, AttemptTimeout: 10 * s}, hang,
			[]time.Duration{0, 11 * s, 23 * s}, "not delivered: attempt 3 of 3: no answer within 10s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := newFakeNet()
				net.handle(hookHost, tc.receiver)
				var log logs
				tc.opts.Client, tc.opts.Logf, tc.opts.DrainTimeout = net.client(), log.logf, time.Hour
				events := make(eventChan, 1)
				done := runNotifier(t, rolloutYAML+webhookOnly, tc.opts, events)
				events <- pauses(1, 1)[0]
				close(events)
				<-done
				if got := offsets(net.attempts(hookHost)); !slices.Equal(got, tc.attempts) {
					t.Errorf("attempts at %v, want %v", got, tc.attempts)
				}
				got := strings.Join(log.all(), "\n")
				if tc.log == "" && got != "" || !strings.Contains(got, tc.log) {
					t.Errorf("logged %q, want %q", got, tc.log)
				}
			})
		})
	}
}

func TestUndeliveredNotificationIsReportedInTheNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		net.handle(hookHost, func(n int, req *http.Request) (*http.Response, error) {
			if n <= 2 {
				return answer(500)(n, req)
			}
			return answer(200)(n, req)
		})
		events := make(eventChan)
		done := runNotifier(t, rolloutYAML+webhookOnly, notify.Options{Client: net.client(), MaxAttempts: 2}, events)
		events <- pauses(1, 1)[0]
		time.Sleep(time.Minute)
		events <- pauses(2, 1)[0]
		close(events)
		<-done
		docs := webhookDocs(t, net.delivered(hookHost))
		if len(docs) != 1 || docs[0].Missed != 1 || !strings.HasSuffix(docs[0].Message, "- why: pause 2\n- earlier notifications missed here: 1 not delivered after retries") {
			t.Fatalf("delivered %+v, want pause 2 saying one notification was not delivered", docs)
		}
	})
}

func TestQueueIsBoundedAndDropsAreReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		release := make(chan struct{})
		net.handle(hookHost, func(n int, req *http.Request) (*http.Response, error) {
			select {
			case <-release:
				return answer(200)(n, req)
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		})
		events := make(eventChan)
		done := runNotifier(t, rolloutYAML+notifyBoth, notify.Options{Client: net.client(), QueueSize: 3, AttemptTimeout: time.Hour}, events)
		for _, ev := range pauses(1, 20) {
			events <- ev
			synctest.Wait() // one at a time, so only the hanging destination falls behind
		}
		// The healthy destination got everything while the other hung.
		if n := len(net.delivered(slackHost)); n != 20 {
			t.Errorf("Slack got %d notifications while the webhook hung, want 20", n)
		}
		close(release)
		close(events)
		<-done
		docs := webhookDocs(t, net.delivered(hookHost))
		var whys []string
		for _, d := range docs {
			whys = append(whys, strings.Split(d.Message, "\n")[1])
		}
		// The first was in flight; of the 19 queued behind it, the newest 3 were kept.
		want := []string{"- why: pause 1", "- why: pause 18", "- why: pause 19", "- why: pause 20"}
		if !slices.Equal(whys, want) {
			t.Fatalf("delivered %q, want %q", whys, want)
		}
		if docs[1].Missed != 16 || !strings.HasSuffix(docs[1].Message, "earlier notifications missed here: 16 dropped because the queue was full") {
			t.Errorf("the first message after the drops: missed %d, %q", docs[1].Missed, docs[1].Message)
		}
		if docs[2].Missed != 0 {
			t.Errorf("drops reported twice: %+v", docs[2])
		}
	})
}

// A receiver that hangs delays neither the engine nor the other destination; at exit, perch
// waits for it at most DrainTimeout.
func TestHangingReceiverDoesNotDelayTheEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		net.handle(slackHost, hang)
		var log logs
		r := startRollout(t, parseSpec(t, rolloutYAML+notifyBoth), &world{}, notify.Options{
			Client: net.client(), Logf: log.logf, AttemptTimeout: time.Hour, DrainTimeout: 10 * time.Second,
		})
		<-r.done
		stopped := time.Now()
		synctest.Wait() // the notifier has taken every event
		if r.outcome != engine.OutcomePromoted {
			t.Fatalf("outcome %s", r.outcome)
		}
		docs := webhookDocs(t, net.delivered(hookHost))
		first, last := docs[0].Event, docs[len(docs)-1].Event
		if last.Type != engine.EventPromoted || last.Time.Sub(first.Time) != 140*time.Second {
			t.Errorf("the rollout took %s to %s, want 2m20s to promoted (2 × (10s stabilization + 1m analysis))", last.Time.Sub(first.Time), last.Type)
		}
		for i, d := range net.delivered(hookHost) {
			if !d.at.Equal(docs[i].Event.Time) {
				t.Errorf("%s was delivered %s after it happened, want at once", docs[i].Event.Type, d.at.Sub(docs[i].Event.Time))
			}
		}
		<-r.notified
		if waited := time.Since(stopped); waited != 10*time.Second {
			t.Errorf("the notifier returned %s after the engine stopped, want the 10s drain timeout", waited)
		}
		if got := len(net.attempts(slackHost)); got != 1 {
			t.Errorf("%d attempts at Slack, want 1 (hanging the whole time)", got)
		}
		if got := strings.Join(log.all(), "\n"); !strings.Contains(got, "notify[0] (slack): 3 notification(s) not sent: perch is exiting") {
			t.Errorf("logged %q, want the undelivered notifications reported", got)
		}
	})
}

func TestDrainDeliversWhatIsQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		net.handle(hookHost, func(n int, req *http.Request) (*http.Response, error) {
			time.Sleep(3 * time.Second) // a slow but working receiver
			return answer(200)(n, req)
		})
		events := make(eventChan, 3)
		for _, ev := range pauses(1, 3) {
			events <- ev
		}
		close(events)
		start := time.Now()
		<-runNotifier(t, rolloutYAML+webhookOnly, notify.Options{Client: net.client()}, events)
		if n, took := len(net.delivered(hookHost)), time.Since(start); n != 3 || took != 9*time.Second {
			t.Errorf("%d delivered, Run returned after %s; want all 3, as soon as the last was delivered (9s)", n, took)
		}
	})
}
