// Package kube connects perch's Kubernetes traffic providers to a cluster the way kubectl
// does, and holds what they share: a read-modify-write of one object that retries when
// someone else changed it in between, and the reading of route weights out of unstructured
// objects.
package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ConnectOptions say which cluster to talk to, as kubectl's --kubeconfig and --context do.
type ConnectOptions struct {
	Kubeconfig string // empty: $KUBECONFIG, then ~/.kube/config, then the in-cluster config
	Context    string // empty: the kubeconfig's current context
}

// Cluster is a dynamic client and the namespace objects live in when a rollout file names none.
type Cluster struct {
	Client dynamic.Interface
	// Namespace is the kubeconfig context's namespace, the pod's own namespace in cluster, or
	// "default".
	Namespace string
	// Where names the cluster in messages ("context kind-dev" or "in-cluster").
	Where string
	// Config is the client configuration the dynamic client was made from, for typed
	// clientsets (the --ha kubernetes:// store).
	Config *rest.Config
}

// Connect loads the client configuration kubectl would use. It makes no request: a cluster
// that is down shows up at the first call.
func Connect(opts ConnectOptions) (*Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = opts.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: opts.Context}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := loader.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no Kubernetes configuration: give --kubeconfig, set $KUBECONFIG, or run inside a cluster")
		}
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig namespace: %w", err)
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	where := "in-cluster"
	if raw, err := loader.RawConfig(); err == nil && len(raw.Contexts) > 0 {
		where = "context " + raw.CurrentContext
		if opts.Context != "" {
			where = "context " + opts.Context
		}
	}
	return &Cluster{Client: client, Namespace: ns, Where: where, Config: cfg}, nil
}

// Object names one namespaced object of a resource, for requests and messages.
type Object struct {
	Resource  schema.GroupVersionResource
	Kind      string // lower-case, as an operator writes it: "virtualservice"
	Namespace string
	Name      string
}

// Namespace is where an object lives: named (the rollout file's), else the cluster's default,
// else "default", as kubectl decides.
func Namespace(named, clusterDefault string) string {
	switch {
	case named != "":
		return named
	case clusterDefault != "":
		return clusterDefault
	}
	return "default"
}

// String is "virtualservice prod/checkout".
func (o Object) String() string { return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name) }

// Conflict retries: an update that lost a race is tried again on a fresh read this many
// times, a little apart, before giving up.
const (
	maxUpdateAttempts = 5
	conflictBackoff   = 50 * time.Millisecond
)

// Get reads the object, with errors an operator can act on.
func Get(ctx context.Context, client dynamic.Interface, o Object) (*unstructured.Unstructured, error) {
	obj, err := client.Resource(o.Resource).Namespace(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
	if err != nil {
		return nil, explain(o, "read", err)
	}
	return obj, nil
}

// Update reads the object, lets change rewrite it, and writes it back carrying the
// resourceVersion it read, so a change made by someone else in between is never overwritten:
// the API server refuses the write with a conflict, and the whole read-change-write is tried
// again on the newer object. When change reports nothing changed, nothing is written.
func Update(ctx context.Context, client dynamic.Interface, o Object, change func(*unstructured.Unstructured) (changed bool, err error)) error {
	res := client.Resource(o.Resource).Namespace(o.Namespace)
	for attempt := 1; ; attempt++ {
		obj, err := res.Get(ctx, o.Name, metav1.GetOptions{})
		if err != nil {
			return explain(o, "read", err)
		}
		changed, err := change(obj)
		if err != nil || !changed {
			return err
		}
		_, err = res.Update(ctx, obj, metav1.UpdateOptions{FieldManager: "perch"})
		switch {
		case err == nil:
			return nil
		case !apierrors.IsConflict(err):
			return explain(o, "update", err)
		case attempt == maxUpdateAttempts:
			return fmt.Errorf("update %s: changed by someone else %d times in a row; try again: %w", o, attempt, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("update %s: %w", o, ctx.Err())
		case <-time.After(conflictBackoff * time.Duration(attempt)):
		}
	}
}

// explain turns an API error into one line naming the object and what to check.
func explain(o Object, verb string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found (check the name and namespace, and that the %s resource is installed): %w", o, o.Resource.GroupResource(), err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed to %s %s (RBAC: grant get and update on %s): %w", verb, o, o.Resource.GroupResource(), err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s %s: the cluster did not accept the credentials (log in again or check the kubeconfig user): %w", verb, o, err)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("%s %s: the API server rejected the change as invalid: %w", verb, o, err)
	}
	return fmt.Errorf("%s %s: %w", verb, o, err)
}

// Int reads a whole number out of an unstructured field, whichever way the JSON or YAML
// decoder typed it.
func Int(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return 0, false
}
