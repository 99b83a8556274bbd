package fleet_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/fleet"
	"github.com/perchhq/perch/engine/replica"
)

// TestFollowedRolloutsGateWaves runs rollouts another replica leads: the fleet shows each
// follower's state with its leader and this replica's role, starts a wave once a followed
// dependency's state says promoted (its RunFunc still following it), and shows only the
// newest view of a rollout once it is replaced.
func TestFollowedRolloutsGateWaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(rolloutFile("a", "")), 0o600)
		os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(rolloutFile("b", "a")), 0o600)
		var mu sync.Mutex
		views := map[string][]*replica.Follower{}
		finish := make(chan struct{})
		serve := func(s fleet.Start, leader string) {
			f := replica.NewFollower(engine.NewState(s.Spec))
			f.SetLeader(leader)
			s.Serve(f, "etcd://test/"+s.Spec.Name)
			mu.Lock()
			views[s.Spec.Name] = append(views[s.Spec.Name], f)
			mu.Unlock()
		}
		run := func(ctx context.Context, s fleet.Start) (engine.Outcome, error) {
			serve(s, "r2")
			if s.Spec.Name == "b" {
				serve(s, "r3") // the lead moved: the newest follower replaces the first
			}
			<-finish
			return engine.OutcomePromoted, nil
		}
		fl, err := fleet.New(fleet.Config{Files: []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")}, Run: run})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- fl.Run(context.Background()) }()
		synctest.Wait()
		status := func(name string) fleet.Status {
			for _, s := range fl.Statuses() {
				if s.Name == name {
					return s
				}
			}
			t.Fatalf("no status for %s", name)
			return fleet.Status{}
		}
		if s := status("a"); s.Leader != "r2" || s.Role != replica.RoleStandby || s.Journal != "etcd://test/a" {
			t.Errorf("a: leader %q role %q journal %q; want r2, standby, etcd://test/a", s.Leader, s.Role, s.Journal)
		}
		if s := status("b"); len(s.Waiting) != 1 || s.State.Spec != nil {
			t.Fatalf("b before a promoted: %+v; want waiting for a", s)
		}
		// a promotes on the replica leading it: this replica only sees its follower's state.
		mu.Lock()
		fa := views["a"][0]
		mu.Unlock()
		st := fa.Snapshot()
		st.Phase = engine.PhasePromoted
		fa.Reset(st)
		synctest.Wait()
		b := status("b")
		if b.State.Spec == nil || b.Leader != "r3" {
			t.Fatalf("b after a promoted elsewhere: %+v; want started, led by r3", b)
		}
		// The replaced view's states are not shown.
		mu.Lock()
		old := views["b"][0]
		mu.Unlock()
		st = old.Snapshot()
		st.Phase = engine.PhaseRolledBack
		old.Reset(st)
		synctest.Wait()
		if got := status("b").State.Phase; got == engine.PhaseRolledBack {
			t.Errorf("b shows the replaced follower's state %s", got)
		}
		if r, ok := fl.Rollout("b"); !ok || r != fleet.Rollout(views["b"][1]) {
			t.Errorf("Rollout(b) = %v, %v; want the newest follower", r, ok)
		}
		close(finish)
		for _, fs := range views {
			for _, f := range fs {
				f.Close()
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
