// Package kubernetes_test checks the example manifests: each decodes strictly with client-go's
// scheme (unknown or duplicate fields refused), the Role grants what --ha kubernetes:// uses
// and no more, and the Deployment runs the rollout file its ConfigMap holds.
package kubernetes_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/perchhq/perch/engine/spec"
)

// decode reads every document of a manifest file strictly.
func decode(t *testing.T, path string) []runtime.Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var out []runtime.Object
	for doc := range strings.SplitSeq(string(data), "\n---\n") {
		obj, _, err := dec.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, obj)
	}
	return out
}

func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	if _, _, err := dec.Decode([]byte("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\nspec: {}\n"), nil, nil); err == nil {
		t.Fatal("an unknown field decoded")
	}
}

func TestManifests(t *testing.T) {
	var (
		role   *rbacv1.Role
		bind   *rbacv1.RoleBinding
		sa     *corev1.ServiceAccount
		deploy *appsv1.Deployment
		svc    *corev1.Service
		cm     *corev1.ConfigMap
	)
	for _, f := range []string{"rbac.yaml", "deployment.yaml", "rollout.yaml"} {
		for _, obj := range decode(t, f) {
			switch o := obj.(type) {
			case *rbacv1.Role:
				role = o
			case *rbacv1.RoleBinding:
				bind = o
			case *corev1.ServiceAccount:
				sa = o
			case *appsv1.Deployment:
				deploy = o
			case *corev1.Service:
				svc = o
			case *corev1.ConfigMap:
				cm = o
			default:
				t.Errorf("%s: unexpected %T", f, obj)
			}
		}
	}
	if role == nil || bind == nil || sa == nil || deploy == nil || svc == nil || cm == nil {
		t.Fatal("a manifest is missing")
	}

	verbs := map[string][]string{}
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			verbs[res] = r.Verbs
		}
	}
	for res, want := range map[string][]string{
		"leases":     {"get", "create", "update"},
		"configmaps": {"list", "watch", "create", "update", "patch", "delete"}, // patch: journal events; delete: relayed commands
		"httproutes": {"get", "update"},
	} {
		if !slices.Equal(verbs[res], want) {
			t.Errorf("role verbs on %s = %v, want %v", res, verbs[res], want)
		}
	}
	if len(verbs) != 3 {
		t.Errorf("role covers %v; want leases, configmaps and httproutes only", verbs)
	}
	if bind.RoleRef.Name != role.Name || len(bind.Subjects) != 1 || bind.Subjects[0].Name != sa.Name {
		t.Errorf("the binding does not tie role %s to service account %s: %+v", role.Name, sa.Name, bind)
	}

	pod := deploy.Spec.Template.Spec
	if *deploy.Spec.Replicas != 2 || pod.ServiceAccountName != sa.Name {
		t.Errorf("deployment: %d replicas as %q", *deploy.Spec.Replicas, pod.ServiceAccountName)
	}
	c := pod.Containers[0]
	if !slices.Contains(c.Args, "--ha=kubernetes://$(POD_NAMESPACE)/checkout") || c.Args[0] != "serve" {
		t.Errorf("args %v", c.Args)
	}
	var nsFromPod bool
	for _, e := range c.Env {
		nsFromPod = nsFromPod || e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
	}
	if !nsFromPod {
		t.Error("POD_NAMESPACE does not come from the pod's namespace")
	}
	if svc.Spec.Ports[0].TargetPort.StrVal != c.Ports[0].Name || !labelsMatch(svc.Spec.Selector, deploy.Spec.Template.Labels) {
		t.Errorf("the service does not reach the pods' SSH port: %+v", svc.Spec)
	}

	r, err := spec.Parse("rollout.yaml", []byte(cm.Data["rollout.yaml"]))
	if err != nil {
		t.Fatalf("the rollout file in the ConfigMap: %v", err)
	}
	if r.Name != "checkout" || r.Traffic.GatewayAPI == nil || r.Traffic.GatewayAPI.HTTPRoute != role.Rules[2].ResourceNames[0] {
		t.Errorf("the rollout %q does not drive the HTTPRoute the role grants", r.Name)
	}
	if _, ok := cm.Data["ops.keys"]; !ok {
		t.Error("no ops.keys in the ConfigMap")
	}
}

func labelsMatch(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func TestDockerfileBuildsPerch(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go build", "./cmd/perch", "ENTRYPOINT [\"/perch\"]"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
