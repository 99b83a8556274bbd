package istio_test

import (
	"context"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/providers/istio"
	"github.com/perchhq/perch/providers/kube/kubetest"
)

var (
	employees = segment.Segment{Name: "employees", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-Employee", Value: "true"}}}
	euWest    = segment.Segment{Name: "eu", Match: segment.Match{Cookie: &segment.CookieMatch{Name: "region", Value: "eu-west"}}}
)

// withSegmentRoutes is the fixture with testdata/segment-routes.yaml inserted before the
// primary route, the weights set to stable and canary.
func withSegmentRoutes(t *testing.T, stable, canary int64) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile("testdata/segment-routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	// Decoded as the fake client decodes objects, so numbers are int64 as theirs are.
	wrapped := []byte(`{"apiVersion": "v1", "kind": "X", "routes": ` + string(js) + `}`)
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(wrapped); err != nil {
		t.Fatal(err)
	}
	routes := obj.Object["routes"].([]any)
	want := withWeights(t, stable, canary)
	spec := want.Object["spec"].(map[string]any)
	http := spec["http"].([]any)
	spec["http"] = slices.Concat(http[:1], routes, http[1:])
	return want
}

func TestSegmentRoutesGoBeforeTheWeightedRoute(t *testing.T) {
	client := kubetest.NewClient(fixture(t))
	r, _ := istio.New(client, "", primaryConfig())
	ctx := context.Background()
	if err := r.RouteSegments(ctx, []segment.Segment{employees, euWest}); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, client).Object, withSegmentRoutes(t, 100, 0).Object; !reflect.DeepEqual(got, want) {
		t.Errorf("after RouteSegments:\n got %v\nwant %v", got, want)
	}
	if names, err := r.RoutedSegments(ctx); err != nil || !slices.Equal(names, []string{"employees", "eu"}) {
		t.Errorf("RoutedSegments = %q, %v", names, err)
	}
	// The weight is the weighted route's alone; the segment routes keep theirs.
	if err := r.SetWeight(ctx, 25); err != nil {
		t.Fatal(err)
	}
	if w, err := r.Weight(ctx); err != nil || w != 25 {
		t.Errorf("Weight = %d, %v", w, err)
	}
	if got, want := read(t, client).Object, withSegmentRoutes(t, 75, 25).Object; !reflect.DeepEqual(got, want) {
		t.Errorf("after SetWeight(25):\n got %v\nwant %v", got, want)
	}
	// The same segments again write nothing.
	before := len(client.Actions())
	if err := r.RouteSegments(ctx, []segment.Segment{employees, euWest}); err != nil {
		t.Fatal(err)
	}
	if verbs := kubetest.Actions(client)[before:]; !slices.Equal(verbs, []string{"get"}) {
		t.Errorf("routing the same segments again made %v, want a single get", verbs)
	}
	// Fewer segments, then none: perch's routes go, nothing else moves.
	if err := r.RouteSegments(ctx, []segment.Segment{euWest}); err != nil {
		t.Fatal(err)
	}
	if names, _ := r.RoutedSegments(ctx); !slices.Equal(names, []string{"eu"}) {
		t.Errorf("after dropping employees: %q", names)
	}
	if err := r.RouteSegments(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, client).Object, withWeights(t, 75, 25).Object; !reflect.DeepEqual(got, want) {
		t.Errorf("after removing the segments:\n got %v\nwant %v", got, want)
	}
}

// TestTheOnlyRouteStaysTheOnlyOne: with no route named, perch's segment routes do not count
// as routes of the VirtualService's own.
func TestTheOnlyRouteStaysTheOnlyOne(t *testing.T) {
	vs := fixture(t)
	spec := vs.Object["spec"].(map[string]any)
	spec["http"] = spec["http"].([]any)[1:2]
	client := kubetest.NewClient(vs)
	cfg := primaryConfig()
	cfg.Route = ""
	r, _ := istio.New(client, "", cfg)
	ctx := context.Background()
	if err := r.RouteSegments(ctx, []segment.Segment{employees}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetWeight(ctx, 40); err != nil {
		t.Fatal(err)
	}
	routes := read(t, client).Object["spec"].(map[string]any)["http"].([]any)
	if len(routes) != 2 || routes[0].(map[string]any)["name"] != "perch-segment-employees" {
		t.Errorf("routes %v", routes)
	}
	if w, err := r.Weight(ctx); err != nil || w != 40 {
		t.Errorf("Weight = %d, %v", w, err)
	}
}

func TestSegmentRoutesRefuse(t *testing.T) {
	vs := fixture(t)
	matches := httpRoute(vs.Object, 1)["match"].([]any)
	matches[1].(map[string]any)["headers"] = map[string]any{"x-employee": map[string]any{"exact": "no"}}
	client := kubetest.NewClient(vs)
	r, _ := istio.New(client, "", primaryConfig())
	ctx := context.Background()
	for _, tc := range []struct {
		segs []segment.Segment
		want string
	}{
		{[]segment.Segment{employees}, `route "primary" already matches header x-employee; segment employees cannot narrow it`},
		{[]segment.Segment{{Name: "Beta_Testers", Match: employees.Match}}, `segment "Beta_Testers": name:`},
	} {
		if err := r.RouteSegments(ctx, tc.segs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RouteSegments: %v, want %q", err, tc.want)
		}
	}
	for _, verb := range kubetest.Actions(client) {
		if verb != "get" {
			t.Errorf("a refused change made a %q request", verb)
		}
	}
}
