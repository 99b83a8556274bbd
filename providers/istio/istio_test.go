package istio_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/perchhq/perch/providers/internal/rollouttest"
	"github.com/perchhq/perch/providers/istio"
	"github.com/perchhq/perch/providers/kube/kubetest"
)

const host = "checkout.shop.svc.cluster.local"

func primaryConfig() istio.Config {
	return istio.Config{
		Namespace: "shop", VirtualService: "checkout", Route: "primary",
		Stable: istio.Destination{Host: host, Subset: "stable"},
		Canary: istio.Destination{Host: host, Subset: "canary"},
	}
}

func fixture(t *testing.T) *unstructured.Unstructured {
	return kubetest.Load(t, "testdata/checkout.yaml")
}

// read is the VirtualService as the fake holds it now.
func read(t *testing.T, client dynamic.Interface) *unstructured.Unstructured {
	t.Helper()
	obj, err := client.Resource(istio.VirtualServices).Namespace("shop").Get(context.Background(), "checkout", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// withWeights is the fixture with the primary route's weights set to stable and canary.
func withWeights(t *testing.T, stable, canary int64) *unstructured.Unstructured {
	want := fixture(t)
	routes := want.Object["spec"].(map[string]any)["http"].([]any)
	dests := routes[1].(map[string]any)["route"].([]any)
	dests[0].(map[string]any)["weight"] = stable
	dests[1].(map[string]any)["weight"] = canary
	return want
}

func TestSetWeightChangesOnlyTheTwoWeights(t *testing.T) {
	for _, canary := range []int{1, 25, 50, 100, 0} {
		client := kubetest.NewClient(fixture(t))
		r, err := istio.New(client, "default", primaryConfig())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SetWeight(context.Background(), canary); err != nil {
			t.Fatalf("SetWeight(%d): %v", canary, err)
		}
		got := read(t, client)
		want := withWeights(t, int64(100-canary), int64(canary))
		if !reflect.DeepEqual(got.Object, want.Object) {
			t.Errorf("SetWeight(%d) changed more than the weights:\n got %v\nwant %v", canary, got.Object, want.Object)
		}
		w, err := r.Weight(context.Background())
		if err != nil || w != canary {
			t.Errorf("Weight after SetWeight(%d) = %d, %v", canary, w, err)
		}
	}
}

func TestSetWeightToTheCurrentWeightWritesNothing(t *testing.T) {
	client := kubetest.NewClient(fixture(t))
	r, _ := istio.New(client, "", primaryConfig())
	if err := r.SetWeight(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if verbs := kubetest.Actions(client); !slices.Equal(verbs, []string{"get"}) {
		t.Errorf("actions = %v, want a single get", verbs)
	}
}

func TestConflictIsRetriedOnAFreshRead(t *testing.T) {
	client := kubetest.NewClient(fixture(t))
	updates := kubetest.FailUpdates(client, "virtualservices", 2)
	r, _ := istio.New(client, "", primaryConfig())
	if err := r.SetWeight(context.Background(), 5); err != nil {
		t.Fatalf("SetWeight after 2 conflicts: %v", err)
	}
	if n := updates.Attempts(); n != 3 {
		t.Errorf("update attempts = %d, want 3", n)
	}
	// Each attempt is preceded by its own read and carries the version it read.
	if verbs := kubetest.Actions(client); !slices.Equal(verbs, []string{"get", "update", "get", "update", "get", "update"}) {
		t.Errorf("actions = %v", verbs)
	}
	for i, v := range updates.Versions() {
		if v != "48213" {
			t.Errorf("update %d carried resourceVersion %q, want the one read (48213)", i, v)
		}
	}
	if !reflect.DeepEqual(read(t, client).Object, withWeights(t, 95, 5).Object) {
		t.Error("the object does not hold the new weights")
	}
}

func TestConflictsThatDoNotStopGiveUp(t *testing.T) {
	client := kubetest.NewClient(fixture(t))
	kubetest.FailUpdates(client, "virtualservices", 1000)
	r, _ := istio.New(client, "", primaryConfig())
	err := r.SetWeight(context.Background(), 5)
	if err == nil || !strings.Contains(err.Error(), "changed by someone else 5 times") || !apierrors.IsConflict(err) {
		t.Fatalf("err = %v, want a conflict after 5 attempts", err)
	}
	if !reflect.DeepEqual(read(t, client).Object, fixture(t).Object) {
		t.Error("the object changed although every update was refused")
	}
}

func TestWrongShapeIsExplained(t *testing.T) {
	tests := []struct {
		name   string
		config func(*istio.Config)
		edit   func(vs map[string]any)
		want   string
	}{
		{name: "several routes and none named", config: func(c *istio.Config) { c.Route = "" },
			want: "virtualservice shop/checkout has 3 http routes (testers, primary, legacy); name one in traffic.istio.route"},
		{name: "no such route", config: func(c *istio.Config) { c.Route = "main" },
			want: `virtualservice shop/checkout has no http route named "main" (it has testers, primary, legacy)`},
		{name: "route to other hosts", config: func(c *istio.Config) { c.Route = "legacy" },
			want: `virtualservice shop/checkout route "legacy" sends to checkout-legacy.shop.svc.cluster.local; perch moves traffic between exactly stable checkout.shop.svc.cluster.local/stable and canary checkout.shop.svc.cluster.local/canary`},
		{name: "canary alone", config: func(c *istio.Config) { c.Route = "testers" },
			want: `route "testers" sends to checkout.shop.svc.cluster.local/canary; perch moves traffic between exactly`},
		{name: "a third destination", edit: func(vs map[string]any) {
			route := httpRoute(vs, 1)
			route["route"] = append(route["route"].([]any), map[string]any{"destination": map[string]any{"host": "checkout-v3"}, "weight": int64(0)})
		}, want: "sends to checkout.shop.svc.cluster.local/stable, checkout.shop.svc.cluster.local/canary, checkout-v3; perch moves"},
		{name: "subset renamed", config: func(c *istio.Config) { c.Canary.Subset = "v2" },
			want: "perch moves traffic between exactly stable checkout.shop.svc.cluster.local/stable and canary checkout.shop.svc.cluster.local/v2"},
		{name: "no http routes", edit: func(vs map[string]any) { delete(vs["spec"].(map[string]any), "http") },
			want: "virtualservice shop/checkout has no http routes"},
		{name: "no destinations", edit: func(vs map[string]any) { delete(httpRoute(vs, 1), "route") },
			want: `route "primary" has no destinations`},
		{name: "weight not a number", edit: func(vs map[string]any) {
			httpRoute(vs, 1)["route"].([]any)[1].(map[string]any)["weight"] = "ten"
		}, want: "a destination weight is not a whole number"},
		{name: "both weights zero", edit: func(vs map[string]any) {
			httpRoute(vs, 1)["route"].([]any)[0].(map[string]any)["weight"] = int64(0)
		}, want: "both weights are 0"},
		{name: "no such VirtualService", config: func(c *istio.Config) { c.VirtualService = "cart" },
			want: "virtualservice shop/cart not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := fixture(t)
			if tt.edit != nil {
				tt.edit(vs.Object)
			}
			cfg := primaryConfig()
			if tt.config != nil {
				tt.config(&cfg)
			}
			client := kubetest.NewClient(vs)
			r, err := istio.New(client, "", cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Weight(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Weight error = %v\nwant it to contain %q", err, tt.want)
			}
			if strings.Contains(tt.want, "both weights") || strings.Contains(tt.want, "not a whole number") {
				return // SetWeight repairs weights; it only refuses a wrong shape
			}
			if err := r.SetWeight(context.Background(), 10); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SetWeight error = %v\nwant it to contain %q", err, tt.want)
			}
			for _, verb := range kubetest.Actions(client) {
				if verb != "get" {
					t.Errorf("a refused SetWeight made a %q request", verb)
				}
			}
		})
	}
}

func httpRoute(vs map[string]any, i int) map[string]any {
	return vs["spec"].(map[string]any)["http"].([]any)[i].(map[string]any)
}

func TestAPIErrorsNameTheObject(t *testing.T) {
	tests := []struct {
		name string
		verb string
		err  error
		want string
	}{
		{name: "forbidden read", verb: "get", err: apierrors.NewForbidden(istio.VirtualServices.GroupResource(), "checkout", errors.New(`User "ci" cannot get resource`)),
			want: "not allowed to read virtualservice shop/checkout (RBAC: grant get and update on virtualservices.networking.istio.io)"},
		{name: "forbidden update", verb: "update", err: apierrors.NewForbidden(istio.VirtualServices.GroupResource(), "checkout", errors.New(`User "ci" cannot update resource`)),
			want: "not allowed to update virtualservice shop/checkout"},
		{name: "invalid", verb: "update", err: apierrors.NewInvalid(schema.GroupKind{Group: "networking.istio.io", Kind: "VirtualService"}, "checkout", nil),
			want: "update virtualservice shop/checkout: the API server rejected the change as invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := kubetest.NewClient(fixture(t))
			kubetest.Refuse(client, tt.verb, "virtualservices", tt.err)
			r, _ := istio.New(client, "", primaryConfig())
			err := r.SetWeight(context.Background(), 10)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("err = %v\nwant one line containing %q", err, tt.want)
			}
		})
	}
}

func TestTheOnlyRouteAndTheDefaultNamespace(t *testing.T) {
	vs := fixture(t)
	spec := vs.Object["spec"].(map[string]any)
	spec["http"] = spec["http"].([]any)[1:2]
	client := kubetest.NewClient(vs)
	cfg := primaryConfig()
	cfg.Namespace, cfg.Route = "", ""
	r, err := istio.New(client, "shop", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetWeight(context.Background(), 30); err != nil {
		t.Fatal(err)
	}
	if w, err := r.Weight(context.Background()); w != 30 || err != nil {
		t.Errorf("Weight = %d, %v; want 30", w, err)
	}
}

func TestRejectsWeightsOutsideZeroToHundred(t *testing.T) {
	client := kubetest.NewClient(fixture(t))
	r, _ := istio.New(client, "", primaryConfig())
	for _, w := range []int{-1, 101} {
		if err := r.SetWeight(context.Background(), w); err == nil {
			t.Errorf("SetWeight(%d) succeeded", w)
		}
	}
	if len(client.Actions()) != 0 {
		t.Errorf("out-of-range weights made requests: %v", kubetest.Actions(client))
	}
}

func TestEngineRollsOutThroughAVirtualService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := kubetest.NewClient(fixture(t))
		spec := rollouttest.Spec(t, `  istio:
    namespace: shop
    virtualService: checkout
    route: primary
    stable: {host: checkout.shop.svc.cluster.local, subset: stable}
    canary: {host: checkout.shop.svc.cluster.local, subset: canary}`)
		a := spec.Traffic.Istio
		r, err := istio.New(client, "", istio.Config{Namespace: a.Namespace, VirtualService: a.VirtualService, Route: a.Route,
			Stable: istio.Destination(a.Stable), Canary: istio.Destination(a.Canary)})
		if err != nil {
			t.Fatal(err)
		}
		if got := rollouttest.Promote(t, spec, r); !slices.Equal(got, []int{10, 50, 100}) {
			t.Errorf("confirmed weights = %v, want [10 50 100]", got)
		}
		if !reflect.DeepEqual(read(t, client).Object, withWeights(t, 0, 100).Object) {
			t.Error("after promotion the VirtualService differs from the fixture by more than the weights")
		}
	})
}
