// Package istio moves traffic between two destinations of one HTTP route of an Istio
// VirtualService (networking.istio.io/v1). It rewrites the two destinations' weights and
// nothing else: other routes, matches, retries, timeouts, headers and mirrors stay as they are.
package istio

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

// VirtualServices is the resource the router reads and updates.
var VirtualServices = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// Destination is a VirtualService destination: a host and an optional subset.
type Destination struct {
	Host   string
	Subset string
}

// String is "host/subset", or the host alone.
func (d Destination) String() string {
	if d.Subset == "" {
		return d.Host
	}
	return d.Host + "/" + d.Subset
}

// Config names the VirtualService, its route and the two destinations.
type Config struct {
	Namespace      string // empty: the cluster's default namespace
	VirtualService string
	Route          string // the http route's name; empty: the only http route
	Stable, Canary Destination
	Cluster        string // which cluster, for messages ("context prod-eu")
}

// Router sets and reads the canary weight of one VirtualService route.
type Router struct {
	client         dynamic.Interface
	obj            kube.Object
	route          string
	stable, canary Destination
	cluster        string
}

// New makes a router for cfg; defaultNamespace applies when cfg names none.
func New(client dynamic.Interface, defaultNamespace string, cfg Config) (*Router, error) {
	switch {
	case cfg.VirtualService == "":
		return nil, errors.New("istio: no VirtualService named")
	case cfg.Stable.Host == "" || cfg.Canary.Host == "":
		return nil, errors.New("istio: stable and canary need a host")
	case cfg.Stable == cfg.Canary:
		return nil, fmt.Errorf("istio: stable and canary are the same destination %s", cfg.Stable)
	}
	ns := kube.Namespace(cfg.Namespace, defaultNamespace)
	return &Router{
		client: client,
		obj:    kube.Object{Resource: VirtualServices, Kind: "virtualservice", Namespace: ns, Name: cfg.VirtualService},
		route:  cfg.Route, stable: cfg.Stable, canary: cfg.Canary, cluster: cfg.Cluster,
	}, nil
}

// String says what the router points at, for perch traffic.
func (r *Router) String() string {
	route := "its only http route"
	if r.route != "" {
		route = fmt.Sprintf("http route %q", r.route)
	}
	s := fmt.Sprintf("Istio %s, %s (stable %s, canary %s)", r.obj, route, r.stable, r.canary)
	if r.cluster != "" {
		s += " in " + r.cluster
	}
	return s
}

// SetWeight sends canaryPercent of the route's traffic to the canary and the rest to stable.
func (r *Router) SetWeight(ctx context.Context, canaryPercent int) error {
	if canaryPercent < 0 || canaryPercent > 100 {
		return fmt.Errorf("set weight on %s: %d%% is outside 0..100", r.obj, canaryPercent)
	}
	return kube.Update(ctx, r.client, r.obj, func(vs *unstructured.Unstructured) (bool, error) {
		dests, err := r.destinations(vs)
		if err != nil {
			return false, err
		}
		stable, canary := int64(100-canaryPercent), int64(canaryPercent)
		if s, ok := weightOf(dests.stable); ok && s == stable {
			if c, ok := weightOf(dests.canary); ok && c == canary {
				return false, nil
			}
		}
		dests.stable["weight"] = stable
		dests.canary["weight"] = canary
		return true, nil
	})
}

// Weight reads the canary's share of the route's traffic.
func (r *Router) Weight(ctx context.Context) (int, error) {
	vs, err := kube.Get(ctx, r.client, r.obj)
	if err != nil {
		return 0, err
	}
	dests, err := r.destinations(vs)
	if err != nil {
		return 0, err
	}
	// Istio's weights are relative; an absent weight is 0.
	stable, okS := weightOf(dests.stable)
	canary, okC := weightOf(dests.canary)
	if !okS || !okC {
		return 0, fmt.Errorf("%s: a destination weight is not a whole number", r.where())
	}
	p, err := split.Percent(canary, stable)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", r.where(), err)
	}
	return p, nil
}

func weightOf(dest map[string]any) (int64, bool) {
	w, ok := dest["weight"]
	if !ok || w == nil {
		return 0, true
	}
	return kube.Int(w)
}

// pair is the stable and canary entries of a route, as the maps inside the object, so
// writing to them changes the object.
type pair struct{ stable, canary map[string]any }

func (r *Router) where() string {
	if r.route == "" {
		return r.obj.String()
	}
	return fmt.Sprintf("%s route %q", r.obj, r.route)
}

// destinations finds the route and checks that it sends to exactly stable and canary.
func (r *Router) destinations(vs *unstructured.Unstructured) (pair, error) {
	route, err := r.findRoute(vs)
	if err != nil {
		return pair{}, err
	}
	entries, ok := route["route"].([]any)
	if !ok || len(entries) == 0 {
		return pair{}, fmt.Errorf("%s has no destinations (want stable %s and canary %s)", r.where(), r.stable, r.canary)
	}
	var found pair
	var names []string
	for i, e := range entries {
		entry, ok := e.(map[string]any)
		if !ok {
			return pair{}, fmt.Errorf("%s: destination %d is not a mapping", r.where(), i)
		}
		d := destinationOf(entry)
		names = append(names, d.String())
		switch d {
		case r.stable:
			found.stable = entry
		case r.canary:
			found.canary = entry
		}
	}
	if len(entries) != 2 || found.stable == nil || found.canary == nil {
		return pair{}, fmt.Errorf("%s sends to %s; perch moves traffic between exactly stable %s and canary %s (add the missing one with weight 0, or fix traffic.istio)",
			r.where(), strings.Join(names, ", "), r.stable, r.canary)
	}
	return found, nil
}

func destinationOf(entry map[string]any) Destination {
	d, _ := entry["destination"].(map[string]any)
	host, _ := d["host"].(string)
	subset, _ := d["subset"].(string)
	return Destination{Host: host, Subset: subset}
}

// findRoute is the http route named in the config, or the only one.
func (r *Router) findRoute(vs *unstructured.Unstructured) (map[string]any, error) {
	// NoCopy: the route is changed in place, inside the object that is written back.
	field, _, _ := unstructured.NestedFieldNoCopy(vs.Object, "spec", "http")
	routes, _ := field.([]any)
	i, err := r.routeIndex(routes)
	if err != nil {
		return nil, err
	}
	return routes[i].(map[string]any), nil
}

// routeIndex is where the http route named in the config, or the only one, is in routes.
// The routes perch adds for segments are not candidates.
func (r *Router) routeIndex(routes []any) (int, error) {
	var names []string
	only := -1
	for i, x := range routes {
		route, ok := x.(map[string]any)
		if !ok {
			return 0, fmt.Errorf("%s: an http route is not a mapping", r.obj)
		}
		if isSegmentRoute(route) {
			continue
		}
		name, _ := route["name"].(string)
		if r.route != "" && name == r.route {
			return i, nil
		}
		if name == "" {
			name = "(unnamed)"
		}
		names = append(names, name)
		only = i
	}
	switch {
	case len(names) == 0:
		return 0, fmt.Errorf("%s has no http routes", r.obj)
	case r.route != "":
		return 0, fmt.Errorf("%s has no http route named %q (it has %s)", r.obj, r.route, strings.Join(names, ", "))
	case len(names) > 1:
		return 0, fmt.Errorf("%s has %d http routes (%s); name one in traffic.istio.route", r.obj, len(names), strings.Join(names, ", "))
	}
	return only, nil
}
