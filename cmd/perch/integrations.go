package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/alerts"
	"github.com/perchhq/perch/engine/notify"
	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/internal/printable"
)

// alertsCloseTimeout bounds how long stopping waits for alert payloads being handled.
const alertsCloseTimeout = 5 * time.Second

// startIntegrations starts what the rollout file asks for around the rollout: the
// Alertmanager receiver (alerts) and the notifier (notify). Call it after engine.New and
// before eng.Run, so the notifier sees the first event; call stop once Run has returned: it
// closes the receiver and waits for the last notifications (at most notify's drain timeout).
func (a *app) startIntegrations(ctx context.Context, spec *spec.Rollout, eng *engine.Engine) (stop func(), err error) {
	var mu sync.Mutex // the receiver and the notifier's workers report from their goroutines
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// Reports quote alert payloads and webhook answers: one printable line each.
		fmt.Fprintf(a.stderr, "perch: %s\n", printable.Line(fmt.Sprintf(format, args...)))
	}
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if len(spec.Notify) > 0 {
		n, err := notify.New(spec, a.getenv, notify.Options{Logf: logf})
		if err != nil {
			return nil, badInput(err)
		}
		events, from := eng.Events(), eng.Snapshot()
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Not cancelled with ctx: a signal stops the engine, and the news that it stopped
			// should still go out.
			n.Run(context.WithoutCancel(ctx), events, from)
		}()
		stops = append(stops, func() {
			events.Close() // what the engine published is still delivered
			<-done
		})
	}
	if spec.Alerts != nil {
		rcv, err := alerts.NewReceiver(eng, spec.Alerts, alerts.Options{Logf: logf, Getenv: a.getenv})
		if err != nil {
			stop()
			return nil, badInput(err)
		}
		srv, err := rcv.Listen(ctx, spec.Alerts.Listen)
		if err != nil {
			stop()
			return nil, runtimeError(err)
		}
		logf("receiving Alertmanager webhooks on %s", srv.URL())
		stops = append(stops, func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), alertsCloseTimeout)
			defer cancel()
			srv.Close(ctx)
		})
	}
	return stop, nil
}
