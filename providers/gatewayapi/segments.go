package gatewayapi

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/perchhq/perch/internal/segment"
	"github.com/perchhq/perch/providers/kube"
)

// SegmentPrefix starts the name of every rule perch adds for a segment: "perch-segment-NAME-K"
// narrows the K-th rule that sends to both backends. perch changes and removes only rules
// named so. Rule names need Gateway API v1.2 or later (GEP-995).
const SegmentPrefix = "perch-segment-"

func isSegmentRule(rule map[string]any) bool {
	name, _ := rule["name"].(string)
	return strings.HasPrefix(name, SegmentPrefix)
}

// segmentOf is the segment a rule perch added is for.
func segmentOf(ruleName string) string {
	name := strings.TrimPrefix(ruleName, SegmentPrefix)
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

// RouteSegments makes segs, and only them, perch's segment rules of the HTTPRoute: for each
// segment and each rule that sends to both backends, a rule just before it with the same
// filters and timeouts, its matches each narrowed by the segment's header (a cookie is a
// regular expression over the Cookie header), and the canary backend alone. A request that
// matches the segment goes wholly to the canary: the Gateway API prefers the rule with more
// header matches. Every other rule stays as it is; an empty segs removes perch's rules.
func (r *Router) RouteSegments(ctx context.Context, segs []segment.Segment) error {
	for _, s := range segs {
		if err := s.Err(); err != nil {
			return fmt.Errorf("gatewayAPI: %w", err)
		}
	}
	return kube.Update(ctx, r.client, r.obj, func(route *unstructured.Unstructured) (bool, error) {
		if _, err := r.rules(route); err != nil {
			return false, err
		}
		field, _, _ := unstructured.NestedFieldNoCopy(route.Object, "spec", "rules")
		list, _ := field.([]any)
		var next []any
		k := 0
		for i, x := range list {
			m := x.(map[string]any)
			if isSegmentRule(m) {
				continue
			}
			ru, weighted, err := r.rule(i, m)
			if err != nil {
				return false, err
			}
			if weighted {
				k++
				for _, s := range segs {
					sr, err := r.segmentRule(m, ru, s, k)
					if err != nil {
						return false, err
					}
					next = append(next, sr)
				}
			}
			next = append(next, m)
		}
		if reflect.DeepEqual(list, next) {
			return false, nil
		}
		return true, unstructured.SetNestedField(route.Object, next, "spec", "rules")
	})
}

// RoutedSegments is the names of the segments perch routes in the HTTPRoute now.
func (r *Router) RoutedSegments(ctx context.Context) ([]string, error) {
	route, err := kube.Get(ctx, r.client, r.obj)
	if err != nil {
		return nil, err
	}
	list, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	names := []string{}
	seen := map[string]bool{}
	for _, x := range list {
		if m, ok := x.(map[string]any); ok && isSegmentRule(m) {
			if name := segmentOf(m["name"].(string)); !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	return names, nil
}

// segmentRule is the rule of segment s narrowing the k-th weighted rule m.
func (r *Router) segmentRule(m map[string]any, ru rule, s segment.Segment, k int) (map[string]any, error) {
	out := map[string]any{}
	for key, v := range m {
		switch key {
		case "name", "matches", "backendRefs":
		default:
			out[key] = runtime.DeepCopyJSONValue(v)
		}
	}
	out["name"] = fmt.Sprintf("%s%s-%d", SegmentPrefix, s.Name, k)
	test := headerTest(s.Match)
	matches, _ := m["matches"].([]any)
	if len(matches) == 0 {
		matches = []any{map[string]any{}}
	}
	var narrowed []any
	for _, x := range matches {
		match, ok := runtime.DeepCopyJSONValue(x).(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s %s: a match is not a mapping", r.obj, ru.name)
		}
		if _, ok := match["path"]; !ok {
			// What the API server defaults an absent path to, written out so a read-back
			// compares equal.
			match["path"] = map[string]any{"type": "PathPrefix", "value": "/"}
		}
		headers, _ := match["headers"].([]any)
		for _, h := range headers {
			if name, _ := h.(map[string]any)["name"].(string); strings.EqualFold(name, test["name"].(string)) {
				return nil, fmt.Errorf("%s %s already matches header %s; segment %s cannot narrow it", r.obj, ru.name, name, s.Name)
			}
		}
		match["headers"] = append(headers, test)
		narrowed = append(narrowed, match)
	}
	out["matches"] = narrowed
	ref := runtime.DeepCopyJSONValue(ru.canary).(map[string]any)
	ref["weight"] = int64(1)
	out["backendRefs"] = []any{ref}
	return out, nil
}

// headerTest is the HTTPHeaderMatch of a segment.
func headerTest(m segment.Match) map[string]any {
	switch {
	case m.Header != nil && m.Header.Regex != "":
		return map[string]any{"name": m.Header.Name, "type": "RegularExpression", "value": m.Header.Regex}
	case m.Header != nil:
		return map[string]any{"name": m.Header.Name, "type": "Exact", "value": m.Header.Value}
	}
	return map[string]any{"name": "Cookie", "type": "RegularExpression", "value": m.Cookie.Regex()}
}
