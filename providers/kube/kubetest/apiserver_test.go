package kubetest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/perchhq/perch/providers/kube/kubetest"
)

func client(t *testing.T) (*kubetest.APIServer, kubernetes.Interface) {
	t.Helper()
	srv := kubetest.NewAPIServer()
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: ts.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	return srv, cs
}

// TestConfigMapsKeepResourceVersionRules checks, with client-go's typed client, that a stale
// update and a second create are refused as a real API server refuses them.
func TestConfigMapsKeepResourceVersionRules(t *testing.T) {
	_, cs := client(t)
	ctx := context.Background()
	cms := cs.CoreV1().ConfigMaps("shop")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "j", Labels: map[string]string{"app": "perch"}}, Data: map[string]string{"a": "1"}}
	first, err := cms.Create(ctx, cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	second := first.DeepCopy()
	second.Data["b"] = "2"
	if second, err = cms.Update(ctx, second, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if second.ResourceVersion == first.ResourceVersion {
		t.Errorf("update kept resourceVersion %s", first.ResourceVersion)
	}
	stale := first.DeepCopy()
	stale.Data["c"] = "3"
	if _, err := cms.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale update: %v, want Conflict", err)
	}
	got, err := cms.Get(ctx, "j", metav1.GetOptions{})
	if err != nil || got.Data["b"] != "2" || got.Data["c"] != "" {
		t.Errorf("after the refused update: %v %v", got.Data, err)
	}
	big := got.DeepCopy()
	big.Data["big"] = strings.Repeat("x", 1<<20)
	if _, err := cms.Update(ctx, big, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("1 MiB of data: %v, want Invalid", err)
	}
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other"}}
	if _, err := cms.Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "app=perch"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "j" || list.ResourceVersion == "" {
		t.Errorf("list app=perch: %+v %v", list, err)
	}
	pre := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &first.ResourceVersion}}
	if err := cms.Delete(ctx, "j", pre); !apierrors.IsConflict(err) {
		t.Errorf("delete with a stale precondition: %v, want Conflict", err)
	}
	if err := cms.Delete(ctx, "j", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "j", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v, want NotFound", err)
	}
}

// TestWatchStreamsChangesAfterAVersion watches ConfigMaps from a list's resourceVersion.
func TestWatchStreamsChangesAfterAVersion(t *testing.T) {
	_, cs := client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cms := cs.CoreV1().ConfigMaps("shop")
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before", Labels: map[string]string{"app": "perch"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "app=perch"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: "app=perch", ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after", Labels: map[string]string{"app": "perch"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"k": "v"}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case ev := <-w.ResultChan():
			c := ev.Object.(*corev1.ConfigMap)
			got = append(got, string(ev.Type)+" "+c.Name+" "+c.Data["k"])
		case <-ctx.Done():
			t.Fatalf("watch: got %v", got)
		}
	}
	if got[0] != string(watch.Added)+" after " || got[1] != string(watch.Modified)+" after v" {
		t.Errorf("watch events %q", got)
	}
}

// TestLeasesKeepResourceVersionRules: two holders updating one Lease, the slower refused.
func TestLeasesKeepResourceVersionRules(t *testing.T) {
	_, cs := client(t)
	ctx := context.Background()
	leases := cs.CoordinationV1().Leases("shop")
	holder, secs := "a", int32(2)
	l, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "perch"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := l.DeepCopy(), l.DeepCopy()
	hb := "b"
	b.Spec.HolderIdentity = &hb
	if _, err := leases.Update(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Update(ctx, a, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale lease update: %v, want Conflict", err)
	}
	got, err := leases.Get(ctx, "perch", metav1.GetOptions{})
	if err != nil || *got.Spec.HolderIdentity != "b" || *got.Spec.LeaseDurationSeconds != 2 {
		t.Errorf("lease %+v %v", got, err)
	}
}

// TestDeletePreconditionsAndSelectedWatch checks, with client-go's typed client, what relayed
// commands rely on: a delete carrying the object's resourceVersion as a precondition
// succeeds once (a second one finds nothing), a watch with a two-term label selector sees
// only the objects that carry both labels, their deletion included, and creationTimestamp is
// the server's, whatever the client sends.
func TestDeletePreconditionsAndSelectedWatch(t *testing.T) {
	_, cs := client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cms := cs.CoreV1().ConfigMaps("shop")
	sel := "perch.dev/answer=perch-ha,perch.dev/command-id=1"
	w, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	past := metav1.NewTime(time.Now().Add(-time.Hour))
	both := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "both", CreationTimestamp: past,
		Labels: map[string]string{"perch.dev/answer": "perch-ha", "perch.dev/command-id": "1"}}}
	one := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "one", Labels: map[string]string{"perch.dev/answer": "perch-ha", "perch.dev/command-id": "2"}}}
	if _, err := cms.Create(ctx, one, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created, err := cms.Create(ctx, both, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if age := time.Since(created.CreationTimestamp.Time); age > time.Minute {
		t.Errorf("creationTimestamp %s: the client's, not the server's", created.CreationTimestamp)
	}
	updated := created.DeepCopy()
	updated.Data = map[string]string{"k": "v"}
	if updated, err = cms.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stale := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &created.ResourceVersion}}
	if err := cms.Delete(ctx, "both", stale); !apierrors.IsConflict(err) {
		t.Errorf("delete at the created version after an update: %v, want Conflict", err)
	}
	current := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &updated.ResourceVersion}}
	if err := cms.Delete(ctx, "both", current); err != nil {
		t.Fatalf("delete at the current version: %v", err)
	}
	if err := cms.Delete(ctx, "both", current); !apierrors.IsNotFound(err) {
		t.Errorf("a second delete: %v, want NotFound", err)
	}
	if err := cms.Delete(ctx, "one", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case ev := <-w.ResultChan():
			got = append(got, string(ev.Type)+" "+ev.Object.(*corev1.ConfigMap).Name)
		case <-ctx.Done():
			t.Fatalf("watch: got %v", got)
		}
	}
	if want := []string{"ADDED both", "MODIFIED both", "DELETED both"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("watch %s saw %v, want %v", sel, got, want)
	}
	select {
	case ev := <-w.ResultChan():
		t.Errorf("watch %s saw %s %s too", sel, ev.Type, ev.Object.(*corev1.ConfigMap).Name)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestMergePatch checks, with client-go's typed client, a JSON merge patch on a ConfigMap: it
// adds and replaces keys, null removes one, a metadata.resourceVersion in it is a
// precondition (a stale one is refused, none patches whatever is there), it is refused past
// 1 MiB of data, watchers see it as MODIFIED, and other patch types are 415.
func TestMergePatch(t *testing.T) {
	srv, cs := client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cms := cs.CoreV1().ConfigMaps("shop")
	first, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "j", Labels: map[string]string{"app": "perch"}},
		Data: map[string]string{"a": "1", "b": "2"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: "app=perch", ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	patch := func(rv string, data map[string]any) []byte {
		p := map[string]any{"data": data}
		if rv != "" {
			p["metadata"] = map[string]any{"resourceVersion": rv}
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	second, err := cms.Patch(ctx, "j", types.MergePatchType, patch(first.ResourceVersion, map[string]any{"c": "3", "a": "one"}), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.ResourceVersion == first.ResourceVersion || second.UID != first.UID || second.Labels["app"] != "perch" {
		t.Errorf("patched %+v; want a new resourceVersion, the same uid and labels", second.ObjectMeta)
	}
	if want := map[string]string{"a": "one", "b": "2", "c": "3"}; !maps.Equal(second.Data, want) {
		t.Errorf("patched data %v, want %v", second.Data, want)
	}
	if _, err := cms.Patch(ctx, "j", types.MergePatchType, patch(first.ResourceVersion, map[string]any{"d": "4"}), metav1.PatchOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("patch at a stale resourceVersion: %v, want Conflict", err)
	}
	third, err := cms.Patch(ctx, "j", types.MergePatchType, patch("", map[string]any{"b": nil}), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("patch without a resourceVersion: %v", err)
	}
	if want := map[string]string{"a": "one", "c": "3"}; !maps.Equal(third.Data, want) {
		t.Errorf("data after null for b: %v, want %v", third.Data, want)
	}
	big := map[string]any{"big": strings.Repeat("x", 1<<20)}
	if _, err := cms.Patch(ctx, "j", types.MergePatchType, patch(third.ResourceVersion, big), metav1.PatchOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("patch to 1 MiB of data: %v, want Invalid", err)
	}
	if _, err := cms.Patch(ctx, "none", types.MergePatchType, patch("", map[string]any{"a": "1"}), metav1.PatchOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("patch of a missing ConfigMap: %v, want NotFound", err)
	}
	jsonPatch := []byte(`[{"op":"add","path":"/data/e","value":"5"}]`)
	if _, err := cms.Patch(ctx, "j", types.JSONPatchType, jsonPatch, metav1.PatchOptions{}); !apierrors.IsUnsupportedMediaType(err) {
		t.Errorf("JSON patch: %v, want UnsupportedMediaType", err)
	}
	rename := []byte(`{"metadata":{"name":"k"}}`)
	if _, err := cms.Patch(ctx, "j", types.MergePatchType, rename, metav1.PatchOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("patch of the name: %v, want BadRequest", err)
	}
	stored := srv.Object("configmaps", "shop", "j")
	if data := stored["data"].(map[string]any); len(data) != 2 || data["a"] != "one" || data["c"] != "3" {
		t.Errorf("stored data %v after the refused patches", data)
	}
	var got []string
	for len(got) < 2 {
		select {
		case ev := <-w.ResultChan():
			c := ev.Object.(*corev1.ConfigMap)
			got = append(got, fmt.Sprintf("%s %s %v", ev.Type, c.ResourceVersion, c.Data))
		case <-ctx.Done():
			t.Fatalf("watch: got %v", got)
		}
	}
	want := []string{
		fmt.Sprintf("MODIFIED %s %v", second.ResourceVersion, second.Data),
		fmt.Sprintf("MODIFIED %s %v", third.ResourceVersion, third.Data),
	}
	if !slices.Equal(got, want) {
		t.Errorf("watch saw %q, want %q", got, want)
	}
}
