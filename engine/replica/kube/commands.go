package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/perchhq/perch/engine"
	"github.com/perchhq/perch/engine/replica"
)

// Commands from a standby reach the leader through two ConfigMaps per command:
//
//	NAME-ROLLOUT-cmd-ID   the command (replica.Request, key "request"), created by the
//	                      standby; labelled perch.dev/command=NAME-ROLLOUT
//	NAME-ROLLOUT-ans-ID   the leader's answer (replica.Answer, key "answer"); labelled
//	                      perch.dev/answer=NAME-ROLLOUT and perch.dev/command-id=ID
//
// ID is 32 hex digits, so the names stay far below the 253 characters of an object name
// (NAME-ROLLOUT is at most 63) and every label value is at most 63 characters.
//
// The leader takes a command by deleting its ConfigMap with the resourceVersion it read as a
// precondition, while its fence is up, and only then runs it: the API server lets one delete
// succeed, so a command is taken once, by one leader, and applied at most once even when
// leaders change (one taken by a leader that dies before answering is lost, and its sender
// says so). A command nobody takes is withdrawn by its sender when it stops waiting, by the
// same guarded delete: it is never applied late. A sender that dies leaves its command
// behind; a leader that finds one older than the wait plus a margin answers it without
// running it, and deletes answers left that long.

// Labels on relayed commands and answers.
const (
	LabelCommand   = "perch.dev/command"
	LabelAnswer    = "perch.dev/answer"
	LabelCommandID = "perch.dev/command-id"
)

// commandTTL is how old a command or answer may grow: the longest a sender waits, plus a
// margin for the clocks of the leader and the API server to differ.
const commandTTL = replica.RelayTimeout + 5*time.Second

// answerGrace is how long a sender whose command was taken as it gave up still waits for
// the answer.
const answerGrace = 2 * time.Second

func (r *Rollout) commandName(id string) string { return r.base + "-cmd-" + id }
func (r *Rollout) answerName(id string) string  { return r.base + "-ans-" + id }

// commandID is ID of NAME-ROLLOUT-cmd-ID, "" for any other name.
func (r *Rollout) commandID(name string) string {
	id, ok := strings.CutPrefix(name, r.base+"-cmd-")
	if !ok || len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return ""
	}
	return id
}

func (r *Rollout) answerSelector(id string) string {
	return LabelAnswer + "=" + r.base + "," + LabelCommandID + "=" + id
}

// Relay sends cmd to the rollout's leader and waits for its answer, at most
// replica.RelayTimeout or until ctx ends. It implements replica.Relay.
func (r *Rollout) Relay(ctx context.Context, cmd engine.Command) (int64, error) {
	if r.err != nil {
		return 0, r.err
	}
	send, ctx, cancel, err := replica.Send(ctx, r.s.id, cmd)
	if err != nil {
		return 0, err
	}
	defer cancel()
	cms := r.s.cs.CoreV1().ConfigMaps(r.s.ns)
	created, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: r.commandName(send.ID), Namespace: r.s.ns,
			Labels: map[string]string{LabelCommand: r.base, "app.kubernetes.io/managed-by": "perch"}},
		Data: map[string]string{"request": string(send.Data)},
	}, metav1.CreateOptions{FieldManager: "perch"})
	if err != nil {
		return 0, fmt.Errorf("%w: kubernetes: %w", engine.ErrNotRunning, err)
	}
	if ans, ok := r.awaitAnswer(ctx, send.ID); ok {
		return replica.ParseAnswer(ans)
	}
	return r.withdraw(created.ResourceVersion, send)
}

// withdraw takes back a command the leader has not answered: deleted while it is still the
// version the sender created, it was never taken and never will be.
func (r *Rollout) withdraw(rv string, send replica.Sending) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), answerGrace)
	defer cancel()
	err := r.s.cs.CoreV1().ConfigMaps(r.s.ns).Delete(ctx, r.commandName(send.ID),
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	switch {
	case err == nil:
		leader, _ := r.Leader(ctx)
		return 0, send.Withdrawn(leader)
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Taken as the sender gave up: the answer may be on its way.
		actx, cancel := context.WithTimeout(context.Background(), answerGrace)
		defer cancel()
		if ans, ok := r.awaitAnswer(actx, send.ID); ok {
			return replica.ParseAnswer(ans)
		}
		return 0, send.Unanswered()
	}
	return 0, send.Unknown("the API server", err)
}

// awaitAnswer waits until ctx ends for the answer to command id, and deletes it once read.
// It lists, then watches from the list's resourceVersion, listing again when a watch ends.
func (r *Rollout) awaitAnswer(ctx context.Context, id string) ([]byte, bool) {
	cms := r.s.cs.CoreV1().ConfigMaps(r.s.ns)
	name := r.answerName(id)
	found := func(cm *corev1.ConfigMap) ([]byte, bool) {
		if cm.Name != name {
			return nil, false
		}
		dctx, cancel := context.WithTimeout(context.Background(), answerGrace)
		defer cancel()
		rv := cm.ResourceVersion
		cms.Delete(dctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		return []byte(cm.Data["answer"]), true
	}
	for ctx.Err() == nil {
		list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: r.answerSelector(id)})
		if err != nil {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		for i := range list.Items {
			if ans, ok := found(&list.Items[i]); ok {
				return ans, true
			}
		}
		timeout := int64(replica.RelayTimeout/time.Second) + 1
		w, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: r.answerSelector(id), ResourceVersion: list.ResourceVersion, TimeoutSeconds: &timeout})
		if err != nil {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			if ans, ok := found(cm); ok {
				w.Stop()
				return ans, true
			}
		}
		w.Stop()
		sleep(ctx, 50*time.Millisecond)
	}
	return nil, false
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ServeCommands runs the commands standbys relay on t, one at a time, and answers each, until
// ctx ends or the lead is lost. Commands waiting when it starts are taken first, oldest first.
func (l *Leadership) ServeCommands(ctx context.Context, t replica.Target) {
	ctx, cancel := l.fence.Bound(ctx)
	defer cancel()
	for ctx.Err() == nil {
		if err := l.serveCommands(ctx, t); err != nil {
			sleep(ctx, time.Second) // the API server unreachable: try again shortly
		}
	}
}

// serveCommands lists the waiting commands and serves them, collects the leftovers of
// senders that died, then serves the commands a watch brings until it ends (within half a
// minute, so the leftovers are collected that often).
func (l *Leadership) serveCommands(ctx context.Context, t replica.Target) error {
	cms := l.r.s.cs.CoreV1().ConfigMaps(l.r.s.ns)
	sel := LabelCommand + "=" + l.r.base
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return err
	}
	slices.SortStableFunc(list.Items, func(a, b corev1.ConfigMap) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	for i := range list.Items {
		l.serveCommand(ctx, t, &list.Items[i])
	}
	l.collectAnswers(ctx)
	timeout := int64(30)
	w, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: list.ResourceVersion, TimeoutSeconds: &timeout})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			return fmt.Errorf("watch: %v", apierrors.FromObject(ev.Object))
		}
		if cm, ok := ev.Object.(*corev1.ConfigMap); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
			l.serveCommand(ctx, t, cm)
		}
	}
	return ctx.Err()
}

// serveCommand takes one command, runs it and answers.
func (l *Leadership) serveCommand(ctx context.Context, t replica.Target, cm *corev1.ConfigMap) {
	id := l.r.commandID(cm.Name)
	if id == "" && (!strings.HasPrefix(cm.Name, l.r.base+"-cmd-") || !l.expired(cm)) {
		return // not a command's name: left alone, or collected once old enough if it may be one
	}
	if taken, _ := l.take(cm); !taken {
		return // not leading any more, or withdrawn or taken already
	}
	if id == "" {
		return // collected unread
	}
	req, err := replica.ParseRequest([]byte(cm.Data["request"]))
	switch {
	case err != nil:
	case req.ID != id:
		err = fmt.Errorf("%w: a relayed command named %s that says it is %q", engine.ErrNotAllowed, id, req.ID)
	case l.expired(cm):
		// Its sender has stopped waiting, and may be gone: running it now would be a surprise.
		err = fmt.Errorf("%w: the command waited over %s for a leader; it was not run", engine.ErrNotRunning, commandTTL)
	default:
		if err = l.fence.Check(); err != nil {
			break // the lead was lost as the command was taken: not run
		}
		err = replica.Run(ctx, t, req)
	}
	data, err := json.Marshal(replica.AnswerFor(err, t.Snapshot().Seq))
	if err != nil {
		return
	}
	actx, cancel := context.WithTimeout(context.Background(), answerGrace)
	defer cancel()
	// Not guarded by the lead: the answer is true whoever leads now. One nobody reads is
	// collected once it is old enough.
	l.r.s.cs.CoreV1().ConfigMaps(l.r.s.ns).Create(actx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: l.r.answerName(id), Namespace: l.r.s.ns,
			Labels: map[string]string{LabelAnswer: l.r.base, LabelCommandID: id, "app.kubernetes.io/managed-by": "perch"}},
		Data: map[string]string{"answer": string(data)},
	}, metav1.CreateOptions{FieldManager: "perch"})
}

// take deletes the command's ConfigMap at the resourceVersion read, while this replica leads:
// true when it did, and the command is this leader's to run.
func (l *Leadership) take(cm *corev1.ConfigMap) (bool, error) {
	if err := l.fence.Check(); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.r.s.lease/2)
	defer cancel()
	rv := cm.ResourceVersion
	err := l.r.s.cs.CoreV1().ConfigMaps(l.r.s.ns).Delete(ctx, cm.Name,
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	if err != nil {
		return false, err
	}
	return true, nil
}

// collectAnswers deletes the answers nobody read (their senders gave up or died).
func (l *Leadership) collectAnswers(ctx context.Context) {
	cms := l.r.s.cs.CoreV1().ConfigMaps(l.r.s.ns)
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: LabelAnswer + "=" + l.r.base})
	if err != nil {
		return
	}
	for _, cm := range list.Items {
		if strings.HasPrefix(cm.Name, l.r.base+"-ans-") && l.expired(&cm) && l.fence.Check() == nil {
			rv := cm.ResourceVersion
			cms.Delete(ctx, cm.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		}
	}
}

// expired says whether a command or answer is older than any sender waits, by the API
// server's creation time.
func (l *Leadership) expired(cm *corev1.ConfigMap) bool {
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	return now().Sub(cm.CreationTimestamp.Time) > commandTTL
}
