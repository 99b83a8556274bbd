// Package replica is the store-neutral half of running one rollout on several replicas (--ha):
// a Fence that says whether this replica may still act as leader (a local deadline kept
// shorter than its lease on the store, so it stops before the store could let another replica
// in), the Router and Flags wrappers that refuse to touch traffic once the fence is down, and
// a Follower that folds the events a leader journals so a standby shows the rollout live,
// and the Relay through which a standby's commands reach the leader (with Request and Answer,
// their stored forms).
//
// A store (engine/replica/etcd, engine/replica/kube) supplies the election, the guarded journal and the watch; it
// calls Fence.Extend each time the store confirms the lease and Fence.Lose when it is gone.
// It also implements Relay for standbys and, for its leader, runs the relayed commands on a
// Target, taking each by a write only a current leader can make before running it, so that a
// command is applied at most once.
// The pieces are per rollout: a fleet campaigns once per rollout name, with one Fence, one
// journal and one Follower each.
package replica
