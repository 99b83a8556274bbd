// Package kubetest builds client-go fake dynamic clients from YAML fixtures for the tests of
// perch's Kubernetes traffic providers and of the commands that use them.
package kubetest

import (
	"errors"
	"os"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

// Resources the fakes know how to list.
var listKinds = map[schema.GroupVersionResource]string{
	{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}:  "VirtualServiceList",
	{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}: "HTTPRouteList",
}

// Load reads one object from a YAML file.
func Load(t testing.TB, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return obj
}

// NewClient is a fake dynamic client holding copies of objs.
func NewClient(objs ...*unstructured.Unstructured) *dynamicfake.FakeDynamicClient {
	var in []runtime.Object
	for _, o := range objs {
		in = append(in, o.DeepCopy())
	}
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, in...)
}

// Updates records the updates a fake client was asked to make, refusing the first few with
// a conflict as an API server does when the object changed since it was read.
type Updates struct {
	mu        sync.Mutex
	conflicts int
	attempts  int
	versions  []string // resourceVersion each update carried
}

// FailUpdates makes the first conflicts updates of resource fail with 409 Conflict and
// records every update's resourceVersion.
func FailUpdates(client *dynamicfake.FakeDynamicClient, resource string, conflicts int) *Updates {
	u := &Updates{conflicts: conflicts}
	client.PrependReactor("update", resource, func(action k8stesting.Action) (bool, runtime.Object, error) {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.attempts++
		obj := action.(k8stesting.UpdateAction).GetObject().(*unstructured.Unstructured)
		u.versions = append(u.versions, obj.GetResourceVersion())
		if u.attempts <= u.conflicts {
			gr := action.GetResource().GroupResource()
			return true, nil, apierrors.NewConflict(gr, obj.GetName(), errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		return false, nil, nil
	})
	return u
}

// Attempts is how many updates were tried.
func (u *Updates) Attempts() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.attempts
}

// Versions is the resourceVersion each update carried, in order.
func (u *Updates) Versions() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.versions...)
}

// Refuse makes every verb on resource fail with err.
func Refuse(client *dynamicfake.FakeDynamicClient, verb, resource string, err error) {
	client.PrependReactor(verb, resource, func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, err
	})
}

// Actions is the verbs the client was asked for, in order ("get", "update", …).
func Actions(client *dynamicfake.FakeDynamicClient) []string {
	var verbs []string
	for _, a := range client.Actions() {
		verbs = append(verbs, a.GetVerb())
	}
	return verbs
}
