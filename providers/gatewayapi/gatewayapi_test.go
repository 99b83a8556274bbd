package gatewayapi_test

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
	"k8s.io/client-go/dynamic"

	"github.com/perchhq/perch/providers/gatewayapi"
	"github.com/perchhq/perch/providers/internal/rollouttest"
	"github.com/perchhq/perch/providers/kube/kubetest"
)

func config() gatewayapi.Config {
	return gatewayapi.Config{Namespace: "shop", HTTPRoute: "checkout", StableBackend: "checkout-stable", CanaryBackend: "checkout-canary"}
}

func fixture(t *testing.T) *unstructured.Unstructured {
	return kubetest.Load(t, "testdata/checkout.yaml")
}

// read is the HTTPRoute as the fake holds it now.
func read(t *testing.T, client dynamic.Interface) *unstructured.Unstructured {
	t.Helper()
	obj, err := client.Resource(gatewayapi.HTTPRoutes).Namespace("shop").Get(context.Background(), "checkout", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func rule(route map[string]any, i int) map[string]any {
	return route["spec"].(map[string]any)["rules"].([]any)[i].(map[string]any)
}

func backendRef(route map[string]any, ruleIndex, ref int) map[string]any {
	return rule(route, ruleIndex)["backendRefs"].([]any)[ref].(map[string]any)
}

// withWeights is the fixture with both split rules (0 and 1) at stable and canary.
func withWeights(t *testing.T, stable, canary int64) *unstructured.Unstructured {
	want := fixture(t)
	for _, i := range []int{0, 1} {
		backendRef(want.Object, i, 0)["weight"] = stable
		backendRef(want.Object, i, 1)["weight"] = canary
	}
	return want
}

func TestSetWeightChangesOnlyTheWeightsOfTheSplitRules(t *testing.T) {
	for _, canary := range []int{1, 5, 50, 100, 0} {
		client := kubetest.NewClient(fixture(t))
		r, err := gatewayapi.New(client, "default", config())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SetWeight(context.Background(), canary); err != nil {
			t.Fatalf("SetWeight(%d): %v", canary, err)
		}
		got, want := read(t, client), withWeights(t, int64(100-canary), int64(canary))
		if !reflect.DeepEqual(got.Object, want.Object) {
			t.Errorf("SetWeight(%d) changed more than the weights:\n got %v\nwant %v", canary, got.Object, want.Object)
		}
		if w, err := r.Weight(context.Background()); err != nil || w != canary {
			t.Errorf("Weight after SetWeight(%d) = %d, %v", canary, w, err)
		}
	}
}

func TestUnsetWeightsCountAsOne(t *testing.T) {
	route := fixture(t)
	for _, i := range []int{0, 1} {
		delete(backendRef(route.Object, i, 0), "weight")
		delete(backendRef(route.Object, i, 1), "weight")
	}
	r, _ := gatewayapi.New(kubetest.NewClient(route), "", config())
	if w, err := r.Weight(context.Background()); err != nil || w != 50 {
		t.Errorf("Weight with both weights unset = %d, %v; want 50 (the Gateway API default is 1 each)", w, err)
	}
}

func TestConflictIsRetriedOnAFreshRead(t *testing.T) {
	client := kubetest.NewClient(fixture(t))
	updates := kubetest.FailUpdates(client, "httproutes", 1)
	r, _ := gatewayapi.New(client, "", config())
	if err := r.SetWeight(context.Background(), 25); err != nil {
		t.Fatalf("SetWeight after a conflict: %v", err)
	}
	if verbs := kubetest.Actions(client); !slices.Equal(verbs, []string{"get", "update", "get", "update"}) {
		t.Errorf("actions = %v, want each update after its own read", verbs)
	}
	if v := updates.Versions(); !slices.Equal(v, []string{"90125", "90125"}) {
		t.Errorf("updates carried resourceVersions %v, want the one read", v)
	}
	if !reflect.DeepEqual(read(t, client).Object, withWeights(t, 75, 25).Object) {
		t.Error("the object does not hold the new weights")
	}
}

func TestRulesThatDisagreeAreReported(t *testing.T) {
	route := fixture(t)
	backendRef(route.Object, 1, 0)["weight"] = int64(90)
	backendRef(route.Object, 1, 1)["weight"] = int64(10)
	client := kubetest.NewClient(route)
	r, _ := gatewayapi.New(client, "", config())
	_, err := r.Weight(context.Background())
	want := `httproute shop/checkout: the rules sending to checkout-stable and checkout-canary disagree (rule "api" at 0%, rule 1 at 10%)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant %q", err, want)
	}
	// Setting a weight brings them back together.
	if err := r.SetWeight(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	if w, err := r.Weight(context.Background()); err != nil || w != 10 {
		t.Errorf("Weight = %d, %v; want 10", w, err)
	}
}

func TestWrongShapeIsExplained(t *testing.T) {
	tests := []struct {
		name   string
		config func(*gatewayapi.Config)
		edit   func(route map[string]any)
		want   string
	}{
		{name: "a third backend", edit: func(route map[string]any) {
			r := rule(route, 1)
			r["backendRefs"] = append(r["backendRefs"].([]any), map[string]any{"name": "checkout-v3", "port": int64(8080)})
		}, want: "httproute shop/checkout rule 1 sends to checkout-stable, checkout-canary, checkout-v3; perch moves traffic between exactly checkout-stable and checkout-canary"},
		{name: "canary missing everywhere", config: func(c *gatewayapi.Config) { c.CanaryBackend = "checkout-next" },
			want: "httproute shop/checkout has no rule that sends to both checkout-stable and checkout-next"},
		{name: "no rules", edit: func(route map[string]any) { delete(route["spec"].(map[string]any), "rules") },
			want: "httproute shop/checkout has no rules"},
		{name: "weight not a number", edit: func(route map[string]any) { backendRef(route, 0, 1)["weight"] = "half" },
			want: `rule "api": backend checkout-canary has weight half, not a whole number`},
		{name: "no such HTTPRoute", config: func(c *gatewayapi.Config) { c.HTTPRoute = "cart" },
			want: "httproute shop/cart not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := fixture(t)
			if tt.edit != nil {
				tt.edit(route.Object)
			}
			cfg := config()
			if tt.config != nil {
				tt.config(&cfg)
			}
			client := kubetest.NewClient(route)
			r, err := gatewayapi.New(client, "", cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Weight(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Weight error = %v\nwant it to contain %q", err, tt.want)
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

func TestForbiddenUpdateNamesTheRoute(t *testing.T) {
	client := kubetest.NewClient(fixture(t))
	kubetest.Refuse(client, "update", "httproutes",
		apierrors.NewForbidden(gatewayapi.HTTPRoutes.GroupResource(), "checkout", errors.New(`User "ci" cannot update resource "httproutes"`)))
	r, _ := gatewayapi.New(client, "", config())
	err := r.SetWeight(context.Background(), 10)
	want := "not allowed to update httproute shop/checkout (RBAC: grant get and update on httproutes.gateway.networking.k8s.io)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v\nwant %q", err, want)
	}
}

func TestEngineRollsOutThroughAnHTTPRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := kubetest.NewClient(fixture(t))
		spec := rollouttest.Spec(t, `  gatewayAPI: {namespace: shop, httpRoute: checkout, stableBackend: checkout-stable, canaryBackend: checkout-canary}`)
		g := spec.Traffic.GatewayAPI
		r, err := gatewayapi.New(client, "", gatewayapi.Config{Namespace: g.Namespace, HTTPRoute: g.HTTPRoute, StableBackend: g.StableBackend, CanaryBackend: g.CanaryBackend})
		if err != nil {
			t.Fatal(err)
		}
		if got := rollouttest.Promote(t, spec, r); !slices.Equal(got, []int{10, 50, 100}) {
			t.Errorf("confirmed weights = %v, want [10 50 100]", got)
		}
		if !reflect.DeepEqual(read(t, client).Object, withWeights(t, 0, 100).Object) {
			t.Error("after promotion the HTTPRoute differs from the fixture by more than the weights")
		}
	})
}
