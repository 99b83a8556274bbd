package istio

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/providers/kube"
)

// SegmentPrefix starts the name of every http route perch adds for a segment
// ("perch-segment-employees"); perch changes and removes only routes named so.
const SegmentPrefix = "perch-segment-"

func isSegmentRoute(route map[string]any) bool {
	name, _ := route["name"].(string)
	return strings.HasPrefix(name, SegmentPrefix)
}

// RouteSegments makes segs, and only them, perch's segment routes of the VirtualService: one
// http route per segment, just before the weighted route, sending the requests the weighted
// route matches and the segment's match wholly to the canary destination. Each is a copy of
// the weighted route (its rewrites, timeouts, retries, headers, mirror…) but for its name,
// its match and its destination, so a segment's requests are served as the rest are. Every
// other route stays as it is; an empty segs removes perch's routes.
func (r *Router) RouteSegments(ctx context.Context, segs []segment.Segment) error {
	for _, s := range segs {
		if err := s.Err(); err != nil {
			return fmt.Errorf("istio: %w", err)
		}
	}
	return kube.Update(ctx, r.client, r.obj, func(vs *unstructured.Unstructured) (bool, error) {
		field, _, _ := unstructured.NestedFieldNoCopy(vs.Object, "spec", "http")
		routes, _ := field.([]any)
		at, err := r.routeIndex(routes)
		if err != nil {
			return false, err
		}
		weighted := routes[at].(map[string]any)
		dests, err := r.destinations(vs)
		if err != nil {
			return false, err
		}
		var next []any
		for i, x := range routes {
			if i == at {
				for _, s := range segs {
					route, err := r.segmentRoute(weighted, dests.canary, s)
					if err != nil {
						return false, err
					}
					next = append(next, route)
				}
			}
			if !isSegmentRoute(x.(map[string]any)) {
				next = append(next, x)
			}
		}
		if reflect.DeepEqual(routes, next) {
			return false, nil
		}
		return true, unstructured.SetNestedField(vs.Object, next, "spec", "http")
	})
}

// RoutedSegments is the names of the segments perch routes in the VirtualService now.
func (r *Router) RoutedSegments(ctx context.Context) ([]string, error) {
	vs, err := kube.Get(ctx, r.client, r.obj)
	if err != nil {
		return nil, err
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	names := []string{}
	for _, x := range routes {
		if route, ok := x.(map[string]any); ok && isSegmentRoute(route) {
			names = append(names, strings.TrimPrefix(route["name"].(string), SegmentPrefix))
		}
	}
	return names, nil
}

// segmentRoute is the http route of one segment: the weighted route's settings, its matches
// each narrowed by the segment's, and the canary destination alone.
func (r *Router) segmentRoute(weighted, canary map[string]any, s segment.Segment) (map[string]any, error) {
	route := map[string]any{}
	for k, v := range weighted {
		switch k {
		case "name", "match", "route":
		default:
			route[k] = runtime.DeepCopyJSONValue(v)
		}
	}
	route["name"] = SegmentPrefix + s.Name
	name, test := headerTest(s.Match)
	matches, _ := weighted["match"].([]any)
	if len(matches) == 0 {
		matches = []any{map[string]any{}}
	}
	var narrowed []any
	for _, x := range matches {
		m, ok := runtime.DeepCopyJSONValue(x).(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: a match of the weighted route is not a mapping", r.where())
		}
		headers, _ := m["headers"].(map[string]any)
		if headers == nil {
			headers = map[string]any{}
		}
		if _, taken := headers[name]; taken {
			return nil, fmt.Errorf("%s already matches header %s; segment %s cannot narrow it", r.where(), name, s.Name)
		}
		headers[name] = test
		m["headers"] = headers
		narrowed = append(narrowed, m)
	}
	route["match"] = narrowed
	dest := runtime.DeepCopyJSONValue(canary).(map[string]any)
	dest["weight"] = int64(100)
	route["route"] = []any{dest}
	return route, nil
}

// headerTest is the Istio header match of a segment: the header (lower case, as Istio wants
// it) and its StringMatch. A cookie is a regex over the Cookie header; Istio's regexes
// match the whole value, as the segment's do.
func headerTest(m segment.Match) (string, map[string]any) {
	switch {
	case m.Header != nil && m.Header.Regex != "":
		return strings.ToLower(m.Header.Name), map[string]any{"regex": m.Header.Regex}
	case m.Header != nil:
		return strings.ToLower(m.Header.Name), map[string]any{"exact": m.Header.Value}
	}
	return "cookie", map[string]any{"regex": m.Cookie.Regex()}
}
