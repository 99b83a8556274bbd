// Package gatewayapi moves traffic between two backendRefs of a Gateway API HTTPRoute
// (gateway.networking.k8s.io/v1). The rules that reference both backends are the ones it
// changes, and in them only the two weights: matches, filters, timeouts, other rules and
// other fields stay as they are.
package gatewayapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/perchhq/perch/providers/internal/split"
	"github.com/perchhq/perch/providers/kube"
)

// HTTPRoutes is the resource the router reads and updates.
var HTTPRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// defaultWeight is what the Gateway API gives a backendRef without a weight.
const defaultWeight = 1

// Config names the HTTPRoute and the two backends by their backendRef names.
type Config struct {
	Namespace     string // empty: the cluster's default namespace
	HTTPRoute     string
	StableBackend string
	CanaryBackend string
	Cluster       string // which cluster, for messages ("context prod-eu")
}

// Router sets and reads the canary weight of an HTTPRoute.
type Router struct {
	client         dynamic.Interface
	obj            kube.Object
	stable, canary string
	cluster        string
}

// New makes a router for cfg; defaultNamespace applies when cfg names none.
func New(client dynamic.Interface, defaultNamespace string, cfg Config) (*Router, error) {
	switch {
	case cfg.HTTPRoute == "":
		return nil, errors.New("gatewayAPI: no HTTPRoute named")
	case cfg.StableBackend == "" || cfg.CanaryBackend == "":
		return nil, errors.New("gatewayAPI: stable and canary backends need names")
	case cfg.StableBackend == cfg.CanaryBackend:
		return nil, fmt.Errorf("gatewayAPI: stable and canary are the same backend %q", cfg.StableBackend)
	}
	ns := kube.Namespace(cfg.Namespace, defaultNamespace)
	return &Router{
		client: client,
		obj:    kube.Object{Resource: HTTPRoutes, Kind: "httproute", Namespace: ns, Name: cfg.HTTPRoute},
		stable: cfg.StableBackend, canary: cfg.CanaryBackend, cluster: cfg.Cluster,
	}, nil
}

// String says what the router points at, for perch traffic.
func (r *Router) String() string {
	s := fmt.Sprintf("Gateway API %s (stable backend %s, canary backend %s)", r.obj, r.stable, r.canary)
	if r.cluster != "" {
		s += " in " + r.cluster
	}
	return s
}

// SetWeight sends canaryPercent of the traffic of every rule that references both backends
// to the canary and the rest to stable.
func (r *Router) SetWeight(ctx context.Context, canaryPercent int) error {
	if canaryPercent < 0 || canaryPercent > 100 {
		return fmt.Errorf("set weight on %s: %d%% is outside 0..100", r.obj, canaryPercent)
	}
	stable, canary := int64(100-canaryPercent), int64(canaryPercent)
	return kube.Update(ctx, r.client, r.obj, func(route *unstructured.Unstructured) (bool, error) {
		rules, err := r.rules(route)
		if err != nil {
			return false, err
		}
		changed := false
		for _, rule := range rules {
			if rule.stableWeight == stable && rule.canaryWeight == canary {
				continue
			}
			rule.stable["weight"] = stable
			rule.canary["weight"] = canary
			changed = true
		}
		return changed, nil
	})
}

// Weight reads the canary's share of the traffic; every rule referencing both backends must
// agree.
func (r *Router) Weight(ctx context.Context) (int, error) {
	route, err := kube.Get(ctx, r.client, r.obj)
	if err != nil {
		return 0, err
	}
	rules, err := r.rules(route)
	if err != nil {
		return 0, err
	}
	percent := -1
	var seen []string
	for _, rule := range rules {
		p, err := split.Percent(rule.canaryWeight, rule.stableWeight)
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", r.obj, rule.name, err)
		}
		seen = append(seen, fmt.Sprintf("%s at %d%%", rule.name, p))
		if percent >= 0 && p != percent {
			return 0, fmt.Errorf("%s: the rules sending to %s and %s disagree (%s); set one weight with perch traffic --set",
				r.obj, r.stable, r.canary, strings.Join(seen, ", "))
		}
		percent = p
	}
	return percent, nil
}

// rule is one rule referencing both backends, holding the backendRef maps inside the object
// so writing to them changes the object.
type rule struct {
	name                       string
	stable, canary             map[string]any
	stableWeight, canaryWeight int64
}

// rules finds every rule that references both backends and checks each references nothing
// else.
func (r *Router) rules(route *unstructured.Unstructured) ([]rule, error) {
	// NoCopy: the backendRefs are changed in place, inside the object that is written back.
	field, _, _ := unstructured.NestedFieldNoCopy(route.Object, "spec", "rules")
	list, _ := field.([]any)
	if len(list) == 0 {
		return nil, fmt.Errorf("%s has no rules", r.obj)
	}
	var found []rule
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: rule %d is not a mapping", r.obj, i)
		}
		ru, ok, err := r.rule(i, m)
		if err != nil {
			return nil, err
		}
		if ok {
			found = append(found, ru)
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s has no rule that sends to both %s and %s (add the missing backendRef with weight 0, or fix traffic.gatewayAPI)",
			r.obj, r.stable, r.canary)
	}
	return found, nil
}

// rule reads rule i, reporting ok when it references both backends.
func (r *Router) rule(i int, m map[string]any) (rule, bool, error) {
	ru := rule{name: fmt.Sprintf("rule %d", i)}
	if name, _ := m["name"].(string); name != "" {
		ru.name = fmt.Sprintf("rule %q", name)
	}
	refs, _ := m["backendRefs"].([]any)
	var names []string
	for _, x := range refs {
		ref, ok := x.(map[string]any)
		if !ok {
			return rule{}, false, fmt.Errorf("%s %s: a backendRef is not a mapping", r.obj, ru.name)
		}
		name, _ := ref["name"].(string)
		names = append(names, name)
		w := int64(defaultWeight)
		if v, ok := ref["weight"]; ok && v != nil {
			if w, ok = kube.Int(v); !ok {
				return rule{}, false, fmt.Errorf("%s %s: backend %s has weight %v, not a whole number", r.obj, ru.name, name, v)
			}
		}
		switch name {
		case r.stable:
			ru.stable, ru.stableWeight = ref, w
		case r.canary:
			ru.canary, ru.canaryWeight = ref, w
		}
	}
	if ru.stable == nil || ru.canary == nil {
		return rule{}, false, nil // a rule for other backends, or stable alone: not perch's
	}
	if len(refs) != 2 {
		return rule{}, false, fmt.Errorf("%s %s sends to %s; perch moves traffic between exactly %s and %s",
			r.obj, ru.name, strings.Join(names, ", "), r.stable, r.canary)
	}
	return ru, true, nil
}
