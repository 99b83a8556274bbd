package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/enginetest"
	"github.com/perchhq/perch/engine/spec"
)

// The fleet's healthy canaries stay healthy through a whole 10-minute step of looks every
// second: the benchmark's source through the engine and the default judge, as the fleet runs
// it, in fake time. The p50 and p99 checks' d's sit four noise sds inside their +20% tolerance,
// the long quiet window that used to climb into a false rollback after 250–420 looks.
func TestHealthyFleetIsNotRolledBack(t *testing.T) {
	for seed := range 2 {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				name := fmt.Sprintf("service-%03d", seed)
				file := strings.NewReplacer("NAME", name, "STEP", "10m", "JUDGE", "sequential").Replace(rolloutFile)
				rollout, err := spec.Parse(name+".yaml", []byte(file))
				if err != nil {
					t.Fatal(err)
				}
				eng, err := engine.New(engine.Config{Spec: rollout, Router: &enginetest.Router{}, Source: builtinSource{seed: uint64(seed)}})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() { defer close(done); _, _ = eng.Run(ctx) }()
				time.Sleep(11 * time.Minute)
				synctest.Wait()
				st := eng.Snapshot()
				cancel()
				<-done
				if st.Phase == engine.PhaseRolledBack {
					t.Fatalf("a healthy canary rolled back at look %d of step %d: %s", st.Looks, st.Step+1, st.EndReason)
				}
				if st.Looks < 500 {
					t.Fatalf("%d looks in step %d (%s), want the whole 10-minute step's", st.Looks, st.Step+1, st.Phase)
				}
			})
		})
	}
}
