package alerts_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/alerts"
)

// floodRate is the unmatched alerts a second BenchmarkMatchedAlertUnderFlood sends.
const floodRate = 1000

// BenchmarkMatchedAlertUnderFlood measures how long a matching alert takes to start a
// rollback while 1,000 alerts a second that match no rule arrive, each in its own payload,
// through the real HTTP server with a bearer token, to an engine journaling to a real file
// (every event fsynced):
//
//	go test -run XXX -bench MatchedAlertUnderFlood -benchtime 5x ./engine/alerts/
//
// rollback-ms is the matching alert's time from its POST to the journaled rollback_started,
// flood-alerts/s what the flood achieved, and notes/s what it cost the journal.
func BenchmarkMatchedAlertUnderFlood(b *testing.B) {
	var latencies []time.Duration
	var sent, notes atomic.Int64
	var flooded time.Duration
	for i := range b.N {
		lat, n, d := floodOnce(b, i, &sent)
		latencies = append(latencies, lat)
		notes.Add(int64(n))
		flooded += d
	}
	var total, worst time.Duration
	for _, l := range latencies {
		total += l
		worst = max(worst, l)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(len(latencies)), "rollback-ms")
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-rollback-ms")
	b.ReportMetric(float64(sent.Load())/flooded.Seconds(), "flood-alerts/s")
	b.ReportMetric(float64(notes.Load())/flooded.Seconds(), "notes/s")
	if worst > time.Second {
		b.Logf("a matching alert took %s to start the rollback under the flood (want under 1s)", worst)
	}
}

// floodOnce runs one rollout under the flood for two seconds, posts a matching alert, and
// returns the time to its rollback, the notes in the journal and how long the flood ran.
func floodOnce(b *testing.B, run int, sent *atomic.Int64) (time.Duration, int, time.Duration) {
	spec := parseSpec(b, authYAML("  bearerToken: \"${ALERTS_TOKEN}\"\n"))
	path := filepath.Join(b.TempDir(), "journal.jsonl")
	journal, err := engine.CreateJournal(path, spec, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	defer journal.Close()
	w := &world{}
	eng, err := engine.New(engine.Config{Spec: spec, Router: w, Source: w, Journal: journal, Linger: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() { defer close(ran); eng.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	rcv, err := alerts.NewReceiver(eng, spec.Alerts, alerts.Options{Getenv: env(map[string]string{"ALERTS_TOKEN": token})})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := rcv.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close(context.Background())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	send := func(body string) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL(), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}

	// The flood: floodRate payloads a second, queued as time passes and sent by a few
	// workers, so a slow answer does not slow the flood down.
	floodStart := time.Now()
	stop := make(chan struct{})
	work := make(chan int, floodRate)
	var workers sync.WaitGroup
	for range 16 {
		workers.Go(func() {
			for {
				var i int
				select {
				case <-stop:
					return
				case i = <-work:
				}
				if code, err := send(payload(firing("alertname", fmt.Sprintf("Noise%d", i%7), "instance", fmt.Sprintf("r%d-%d", run, i)))); err == nil && code == http.StatusOK {
					sent.Add(1)
				}
			}
		})
	}
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for queued := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for due := int(time.Since(floodStart).Seconds() * floodRate); queued < due; queued++ {
				select {
				case work <- queued:
				default: // the workers are behind: the flood is what the receiver can take
				}
			}
		}
	}()
	time.Sleep(2 * time.Second)

	posted := time.Now()
	if code, err := send(payload(firing("alertname", "HighErrorRate", "service", "web"))); err != nil || code != http.StatusOK {
		b.Fatalf("the matching alert: %d %v", code, err)
	}
	var latency time.Duration
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if ev := find(eng.Snapshot().Log, engine.EventRollbackStarted); ev != nil {
			latency = ev.Time.Sub(posted)
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no rollback 30s after the matching alert")
		}
	}
	close(stop)
	workers.Wait()
	flooded := time.Since(floodStart)
	rec, err := engine.LoadRecording(path)
	if err != nil {
		b.Fatal(err)
	}
	return latency, len(findAll(rec.Events, engine.EventNote)), flooded
}

func find(log []engine.Event, typ engine.EventType) *engine.Event {
	for i := range log {
		if log[i].Type == typ {
			return &log[i]
		}
	}
	return nil
}

func findAll(events []engine.Event, typ engine.EventType) []engine.Event {
	var out []engine.Event
	for _, ev := range events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}
