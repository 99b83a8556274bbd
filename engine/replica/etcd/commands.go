package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica"
)

// Commands from a standby reach the leader through two keys per command, both on a lease
// the standby grants:
//
//	commands/ID   the command (replica.Request), put by the standby
//	answers/ID    the leader's answer (replica.Answer), put on the command's lease
//
// The leader takes a command by deleting its key in a transaction guarded by its leadership
// and by the key's revision, and only then runs it: a command is taken once, by one leader,
// so it is applied at most once even when leaders change (one taken by a leader that dies
// before answering is lost, and its sender says so). A command nobody takes is withdrawn by
// its sender when it stops waiting, in a transaction that deletes the key only if it is
// still there, or goes with its lease: it is never applied late.

func (r *Rollout) commandPrefix() string       { return r.dir + "commands/" }
func (r *Rollout) commandKey(id string) string { return r.commandPrefix() + id }
func (r *Rollout) answerKey(id string) string  { return r.dir + "answers/" + id }

// relayLease outlives the sender's wait, so the command cannot vanish while it still waits.
const relayLease = 5 * time.Second

// Relay sends cmd to the rollout's leader and waits for its answer, at most
// replica.RelayTimeout or until ctx ends. It implements replica.Relay.
func (r *Rollout) Relay(ctx context.Context, cmd engine.Command) (int64, error) {
	send, ctx, cancel, err := replica.Send(ctx, r.s.id, cmd)
	if err != nil {
		return 0, err
	}
	defer cancel()
	cli := r.s.cli
	grant, err := cli.Grant(ctx, int64((send.Wait+relayLease+time.Second-1)/time.Second))
	if err != nil {
		return 0, fmt.Errorf("%w: etcd: %w", engine.ErrNotRunning, err)
	}
	defer func() { // the command, if still there, and the answer go with the lease
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cli.Revoke(rctx, grant.ID)
	}()
	ck, ak := r.commandKey(send.ID), r.answerKey(send.ID)
	put, err := cli.Put(ctx, ck, string(send.Data), clientv3.WithLease(grant.ID))
	if err != nil {
		return 0, fmt.Errorf("%w: etcd: %w", engine.ErrNotRunning, err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for resp := range cli.Watch(clientv3.WithRequireLeader(wctx), ak, clientv3.WithRev(put.Header.Revision+1)) {
		if resp.Err() != nil {
			break // read the answer below, once ctx ends
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypePut {
				return replica.ParseAnswer(ev.Kv.Value)
			}
		}
	}
	<-ctx.Done()
	return r.withdraw(ck, ak, send)
}

// withdraw takes back a command the leader has not answered: deleted while still there, it
// was never taken and never will be.
func (r *Rollout) withdraw(ck, ak string, send replica.Sending) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := r.s.cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(ck), ">", 0)).
		Then(clientv3.OpDelete(ck)).Else(clientv3.OpGet(ak)).Commit()
	switch {
	case err != nil:
		return 0, send.Unknown("etcd", err)
	case resp.Succeeded:
		leader, _ := r.Leader(ctx)
		return 0, send.Withdrawn(leader)
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		return replica.ParseAnswer(kvs[0].Value)
	}
	return 0, send.Unanswered()
}

// ServeCommands runs the commands standbys relay on t, one at a time, and answers each, until
// ctx ends or the lead is lost. Commands waiting when it starts are taken first.
func (l *Leadership) ServeCommands(ctx context.Context, t replica.Target) {
	ctx, cancel := l.fence.Bound(ctx)
	defer cancel()
	for ctx.Err() == nil {
		if err := l.serveCommands(ctx, t); err != nil && ctx.Err() == nil {
			select { // etcd unreachable: try again shortly
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
	}
}

func (l *Leadership) serveCommands(ctx context.Context, t replica.Target) error {
	prefix := l.r.commandPrefix()
	resp, err := l.r.s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return err
	}
	for _, kv := range resp.Kvs {
		l.serveCommand(ctx, t, kv.Key, kv.Value, kv.ModRevision, clientv3.LeaseID(kv.Lease))
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range l.r.s.cli.Watch(clientv3.WithRequireLeader(wctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut {
				l.serveCommand(ctx, t, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision, clientv3.LeaseID(ev.Kv.Lease))
			}
		}
	}
	return ctx.Err()
}

// serveCommand takes one command, runs it and answers.
func (l *Leadership) serveCommand(ctx context.Context, t replica.Target, key, value []byte, rev int64, lease clientv3.LeaseID) {
	taken, err := l.take(string(key), rev)
	if err != nil || !taken {
		return // not leading any more, or withdrawn, expired or taken already
	}
	if lease == clientv3.NoLease {
		return // not put by a standby, which always bounds its command's life: dropped unread
	}
	id := strings.TrimPrefix(string(key), l.r.commandPrefix())
	req, err := replica.ParseRequest(value)
	if err == nil {
		err = replica.Run(ctx, t, req)
	}
	data, err := json.Marshal(replica.AnswerFor(err, t.Snapshot().Seq))
	if err != nil {
		return
	}
	actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Not guarded by the lead: the answer is true whoever leads now. A lease already gone
	// means the sender stopped waiting; there is nobody to tell.
	l.r.s.cli.Put(actx, l.r.answerKey(id), string(data), clientv3.WithLease(lease))
}

// take deletes the command key at revision rev while this replica leads: true when it did,
// and the command is this leader's to run.
func (l *Leadership) take(key string, rev int64) (bool, error) {
	resp, err := l.commit([]clientv3.Op{clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)},
		[]clientv3.Op{clientv3.OpDelete(key)}, nil)})
	if err != nil {
		return false, err
	}
	if len(resp.Responses) != 1 {
		return false, errors.New("etcd: an unexpected answer to a nested transaction")
	}
	return resp.Responses[0].GetResponseTxn().GetSucceeded(), nil
}
