package kube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/perchhq/perch/providers/kube"
)

var widgets = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

// apiServer is the smallest Kubernetes API server that holds one object at path and does
// what the real one does with resourceVersion: bumps it on every write, and refuses a write
// carrying an older one with 409 Conflict.
type apiServer struct {
	mu      sync.Mutex
	path    string
	obj     map[string]any
	version int
	// beforePut runs before each PUT is judged, to let "someone else" write first.
	beforePut func(s *apiServer)
	puts      int
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path != s.path {
		status(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s not found", r.URL.Path))
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.write(w)
	case http.MethodPut:
		s.puts++
		if s.beforePut != nil {
			s.beforePut(s)
		}
		body, _ := io.ReadAll(r.Body)
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			status(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		rv := obj["metadata"].(map[string]any)["resourceVersion"]
		if rv != strconv.Itoa(s.version) {
			status(w, http.StatusConflict, "Conflict", `Operation cannot be fulfilled on widgets.example.com "w": the object has been modified; please apply your changes to the latest version and try again`)
			return
		}
		s.obj = obj
		s.version++
		s.write(w)
	default:
		status(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method)
	}
}

func (s *apiServer) write(w http.ResponseWriter) {
	s.obj["metadata"].(map[string]any)["resourceVersion"] = strconv.Itoa(s.version)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.obj)
}

func status(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": msg, "code": code})
}

// kubeconfig writes a kubeconfig with contexts dev (namespace shop) and prod (no namespace),
// both pointing at server, dev current.
func kubeconfig(t *testing.T, server string) string {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: local
  cluster: {server: %q}
users:
- name: ci
  user: {token: not-a-real-token}
contexts:
- name: dev
  context: {cluster: local, user: ci, namespace: shop}
- name: prod
  context: {cluster: local, user: ci}
`, server)
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noAmbientConfig hides the machine's own kubeconfig and any in-cluster environment.
func noAmbientConfig(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
}

func TestConnectFindsTheContextAndItsNamespace(t *testing.T) {
	tests := []struct {
		name          string
		flag, context string
		env           bool // give the file through $KUBECONFIG instead of the flag
		wantNS        string
		wantWhere     string
	}{
		{name: "current context", flag: "file", wantNS: "shop", wantWhere: "context dev"},
		{name: "context flag", flag: "file", context: "prod", wantNS: "default", wantWhere: "context prod"},
		{name: "KUBECONFIG", env: true, wantNS: "shop", wantWhere: "context dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noAmbientConfig(t)
			path := kubeconfig(t, "https://127.0.0.1:1")
			opts := kube.ConnectOptions{Context: tt.context}
			if tt.env {
				t.Setenv("KUBECONFIG", path)
			} else {
				opts.Kubeconfig = path
			}
			c, err := kube.Connect(opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.Namespace != tt.wantNS || c.Where != tt.wantWhere {
				t.Errorf("namespace %q, where %q; want %q, %q", c.Namespace, c.Where, tt.wantNS, tt.wantWhere)
			}
		})
	}
}

func TestConnectExplainsMissingConfiguration(t *testing.T) {
	noAmbientConfig(t)
	_, err := kube.Connect(kube.ConnectOptions{})
	if err == nil || !strings.Contains(err.Error(), "no Kubernetes configuration: give --kubeconfig, set $KUBECONFIG, or run inside a cluster") {
		t.Errorf("err = %v", err)
	}
	_, err = kube.Connect(kube.ConnectOptions{Kubeconfig: kubeconfig(t, "https://127.0.0.1:1"), Context: "staging"})
	if err == nil || !strings.Contains(err.Error(), `context "staging" does not exist`) {
		t.Errorf("err = %v", err)
	}
}

// TestUpdateAgainstAnAPIServer runs the read-change-write over HTTP against a server that
// enforces resourceVersion, with another writer getting in first.
func TestUpdateAgainstAnAPIServer(t *testing.T) {
	noAmbientConfig(t)
	srv := &apiServer{
		path: "/apis/example.com/v1/namespaces/shop/widgets/w",
		obj: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w", "namespace": "shop"},
			"spec":     map[string]any{"size": int64(1), "colour": "blue"}},
		version: 7,
	}
	// Someone else changes the colour between perch's first read and its first write.
	srv.beforePut = func(s *apiServer) {
		if s.puts == 1 {
			s.obj["spec"].(map[string]any)["colour"] = "green"
			s.version++
		}
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, err := kube.Connect(kube.ConnectOptions{Kubeconfig: kubeconfig(t, ts.URL)})
	if err != nil {
		t.Fatal(err)
	}
	o := kube.Object{Resource: widgets, Kind: "widget", Namespace: c.Namespace, Name: "w"}
	reads := 0
	err = kube.Update(context.Background(), c.Client, o, func(u *unstructured.Unstructured) (bool, error) {
		reads++
		return true, unstructured.SetNestedField(u.Object, int64(2), "spec", "size")
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := srv.obj["spec"].(map[string]any)
	if reads != 2 || srv.puts != 2 || spec["size"] != float64(2) || spec["colour"] != "green" {
		t.Errorf("reads %d, puts %d, spec %v; want 2 reads, 2 puts, size 2 and the other writer's colour kept", reads, srv.puts, spec)
	}

	missing := kube.Object{Resource: widgets, Kind: "widget", Namespace: "shop", Name: "gone"}
	if _, err := kube.Get(context.Background(), c.Client, missing); err == nil || !strings.Contains(err.Error(), "widget shop/gone not found") {
		t.Errorf("Get of a missing object: %v", err)
	}
}
