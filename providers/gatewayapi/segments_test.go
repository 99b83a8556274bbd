package gatewayapi_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/providers/gatewayapi"
	"github.com/perchhq/perch/providers/kube/kubetest"
)

var (
	employees = segment.Segment{Name: "employees", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-Employee", Value: "true"}}}
	euWest    = segment.Segment{Name: "eu", Match: segment.Match{Cookie: &segment.CookieMatch{Name: "region", Value: "eu-west"}}}
)

// withSegmentRules is withWeights with testdata/segment-rules.yaml's rules before the two
// split rules.
func withSegmentRules(t *testing.T, stable, canary int64) map[string]any {
	t.Helper()
	added := kubetest.Load(t, "testdata/segment-rules.yaml").Object
	want := withWeights(t, stable, canary).Object
	spec := want["spec"].(map[string]any)
	rules := spec["rules"].([]any)
	spec["rules"] = slices.Concat(added["before-api"].([]any), rules[:1], added["before-web"].([]any), rules[1:])
	return want
}

func TestSegmentRulesNarrowEachSplitRule(t *testing.T) {
	client := kubetest.NewClient(fixture(t))
	r, _ := gatewayapi.New(client, "", config())
	ctx := context.Background()
	if err := r.RouteSegments(ctx, []segment.Segment{employees, euWest}); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, client).Object, withSegmentRules(t, 100, 0); !reflect.DeepEqual(got, want) {
		t.Errorf("after RouteSegments:\n got %v\nwant %v", got, want)
	}
	if names, err := r.RoutedSegments(ctx); err != nil || !slices.Equal(names, []string{"employees", "eu"}) {
		t.Errorf("RoutedSegments = %q, %v", names, err)
	}
	if err := r.SetWeight(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if w, err := r.Weight(ctx); err != nil || w != 10 {
		t.Errorf("Weight = %d, %v", w, err)
	}
	if got, want := read(t, client).Object, withSegmentRules(t, 90, 10); !reflect.DeepEqual(got, want) {
		t.Errorf("after SetWeight(10):\n got %v\nwant %v", got, want)
	}
	before := len(client.Actions())
	if err := r.RouteSegments(ctx, []segment.Segment{employees, euWest}); err != nil {
		t.Fatal(err)
	}
	if verbs := kubetest.Actions(client)[before:]; !slices.Equal(verbs, []string{"get"}) {
		t.Errorf("the same segments again made %v, want a single get", verbs)
	}
	if err := r.RouteSegments(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, client).Object, withWeights(t, 90, 10).Object; !reflect.DeepEqual(got, want) {
		t.Errorf("after removing the segments:\n got %v\nwant %v", got, want)
	}
	if names, _ := r.RoutedSegments(ctx); len(names) != 0 {
		t.Errorf("RoutedSegments after removal = %q", names)
	}
}

// TestSegmentNamesEndingInADigit: a segment called "eu-2" is read back as itself.
func TestSegmentNamesEndingInADigit(t *testing.T) {
	client := kubetest.NewClient(fixture(t))
	r, _ := gatewayapi.New(client, "", config())
	ctx := context.Background()
	eu2 := segment.Segment{Name: "eu-2", Match: employees.Match}
	if err := r.RouteSegments(ctx, []segment.Segment{eu2}); err != nil {
		t.Fatal(err)
	}
	if names, err := r.RoutedSegments(ctx); err != nil || !slices.Equal(names, []string{"eu-2"}) {
		t.Errorf("RoutedSegments = %q, %v", names, err)
	}
}

func TestSegmentRulesRefuse(t *testing.T) {
	client := kubetest.NewClient(fixture(t))
	r, _ := gatewayapi.New(client, "", config())
	tenant := segment.Segment{Name: "acme", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-Tenant", Value: "acme"}}}
	err := r.RouteSegments(context.Background(), []segment.Segment{tenant})
	if err == nil || !strings.Contains(err.Error(), `httproute shop/checkout rule "api" already matches header x-tenant; segment acme cannot narrow it`) {
		t.Errorf("a header the rule matches already: %v", err)
	}
	for _, verb := range kubetest.Actions(client) {
		if verb != "get" {
			t.Errorf("a refused change made a %q request", verb)
		}
	}
}
