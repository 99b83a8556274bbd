package kubetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// APIServer is a Kubernetes API server over HTTP for namespaced ConfigMaps (core v1) and
// Leases (coordination.k8s.io/v1), speaking the wire protocol of the API reference
// (https://kubernetes.io/docs/reference/using-api/api-concepts/): get, list (with an
// equality labelSelector of one or more comma-separated terms), create, update, patch,
// delete and watch. It keeps the concurrency rules the real one has: every write gives the
// object a new resourceVersion from one counter, and creationTimestamp is the server's; an
// update or a patch carrying another resourceVersion, or a delete whose DeleteOptions carry a
// preconditions.resourceVersion other than the object's
// (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/delete-options/), is
// refused with 409 Conflict
// (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency;
// for a patch, https://github.com/kubernetes/kubernetes/issues/63104), a create of a name
// that exists with 409 AlreadyExists; a ConfigMap whose data exceeds 1 MiB
// is refused with 422 Invalid. A patch is a JSON merge patch (RFC 7386, Content-Type
// application/merge-patch+json; other patch types are 415) applied to the stored object. A
// watch streams the changes after the resourceVersion it names as JSON watch events, one per
// line, a deletion as a DELETED event carrying the object's last state. It speaks JSON only:
// clients must set ContentType "application/json" (client-go's clientsets send protobuf
// otherwise).
type APIServer struct {
	mu      sync.Mutex
	rv      int64
	objs    map[objKey]map[string]any
	history []change      // every write, oldest first
	wake    chan struct{} // closed and replaced on each write
}

type objKey struct{ resource, namespace, name string }

type change struct {
	rv  int64
	typ string // ADDED, MODIFIED, DELETED
	key objKey
	obj map[string]any
}

// kinds are the resources served: their API group version and kind.
var kinds = map[string]struct{ apiVersion, kind string }{
	"configmaps": {"v1", "ConfigMap"},
	"leases":     {"coordination.k8s.io/v1", "Lease"},
}

// configMapLimit is the API server's limit on a ConfigMap's data.
const configMapLimit = 1 << 20

// NewAPIServer is an empty server.
func NewAPIServer() *APIServer {
	return &APIServer{objs: map[objKey]map[string]any{}, wake: make(chan struct{})}
}

// Object is a copy of the stored object, nil when there is none.
func (s *APIServer) Object(resource, namespace, name string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objs[objKey{resource, namespace, name}]
	if o == nil {
		return nil
	}
	return clone(o)
}

// Names lists the stored objects of a resource in a namespace, sorted.
func (s *APIServer) Names(resource, namespace string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for k := range s.objs {
		if k.resource == resource && k.namespace == namespace {
			names = append(names, k.name)
		}
	}
	slices.Sort(names)
	return names
}

// parsePath reads /api/v1/namespaces/NS/RES[/NAME] and /apis/G/V/namespaces/NS/RES[/NAME].
func parsePath(p string) (k objKey, ok bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api" && parts[1] == "v1":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return k, false
	}
	if len(parts) < 3 || len(parts) > 4 || parts[0] != "namespaces" {
		return k, false
	}
	k = objKey{resource: parts[2], namespace: parts[1]}
	if len(parts) == 4 {
		k.name = parts[3]
	}
	want, known := kinds[k.resource]
	if !known || want.apiVersion != "v1" && !strings.HasPrefix(p, "/apis/"+want.apiVersion+"/") || want.apiVersion == "v1" && !strings.HasPrefix(p, "/api/v1/") {
		return k, false
	}
	return k, true
}

// ServeHTTP serves the API paths of ConfigMaps and Leases; any other path is 404.
func (s *APIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); r.Method == http.MethodPatch && !strings.HasPrefix(ct, mergePatch) {
		status(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: "+mergePatch)
		return
	} else if r.Method != http.MethodPatch && ct != "" && !strings.HasPrefix(ct, "application/json") {
		status(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "this server speaks JSON only, not "+ct)
		return
	}
	k, ok := parsePath(r.URL.Path)
	if !ok {
		status(w, http.StatusNotFound, "NotFound", fmt.Sprintf("the server could not find the requested resource %s", r.URL.Path))
		return
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && k.name == "" && (q.Get("watch") == "true" || q.Get("watch") == "1"):
		s.watch(w, r, k)
	case r.Method == http.MethodGet && k.name == "":
		s.list(w, k, q.Get("labelSelector"))
	case r.Method == http.MethodGet:
		s.get(w, k)
	case r.Method == http.MethodPost && k.name == "":
		s.write(w, r, k, "create")
	case r.Method == http.MethodPut && k.name != "":
		s.write(w, r, k, "update")
	case r.Method == http.MethodPatch && k.name != "":
		s.write(w, r, k, "patch")
	case r.Method == http.MethodDelete && k.name != "":
		s.write(w, r, k, "delete")
	default:
		status(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" "+r.URL.Path)
	}
}

func (s *APIServer) get(w http.ResponseWriter, k objKey) {
	s.mu.Lock()
	o := s.objs[k]
	if o != nil {
		o = clone(o)
	}
	s.mu.Unlock()
	if o == nil {
		notFound(w, k)
		return
	}
	reply(w, http.StatusOK, o)
}

func (s *APIServer) list(w http.ResponseWriter, k objKey, selector string) {
	sel, err := parseSelector(selector)
	if err != nil {
		status(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	s.mu.Lock()
	var keys []objKey
	for ok := range s.objs {
		if ok.resource == k.resource && ok.namespace == k.namespace && matches(s.objs[ok], sel) {
			keys = append(keys, ok)
		}
	}
	slices.SortFunc(keys, func(a, b objKey) int { return strings.Compare(a.name, b.name) })
	items := make([]any, 0, len(keys))
	for _, ok := range keys {
		items = append(items, clone(s.objs[ok]))
	}
	rv := s.rv
	s.mu.Unlock()
	t := kinds[k.resource]
	reply(w, http.StatusOK, map[string]any{"apiVersion": t.apiVersion, "kind": t.kind + "List",
		"metadata": map[string]any{"resourceVersion": strconv.FormatInt(rv, 10)}, "items": items})
}

// mergePatch is the Content-Type of a JSON merge patch, the one patch type served.
const mergePatch = "application/merge-patch+json"

// write creates, updates, patches or deletes one object under the resourceVersion rules.
func (s *APIServer) write(w http.ResponseWriter, r *http.Request, k objKey, verb string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 3<<20))
	if err != nil {
		status(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	var obj map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &obj); err != nil {
			status(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
	}
	if verb == "patch" && obj == nil {
		status(w, http.StatusBadRequest, "BadRequest", "a merge patch of an object must be a JSON object")
		return
	}
	meta, _ := obj["metadata"].(map[string]any)
	if verb == "create" {
		name, _ := meta["name"].(string)
		if name == "" {
			status(w, http.StatusUnprocessableEntity, "Invalid", "metadata.name: Required value")
			return
		}
		k.name = name
	}
	if verb == "create" || verb == "update" {
		if meta == nil || meta["name"] != k.name {
			status(w, http.StatusBadRequest, "BadRequest", "the name of the object does not match the name on the URL")
			return
		}
		if k.resource == "configmaps" && dataSize(obj) > configMapLimit {
			status(w, http.StatusUnprocessableEntity, "Invalid", fmt.Sprintf("ConfigMap %q is invalid: []: Too long: must have at most %d bytes", k.name, configMapLimit))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.objs[k]
	switch {
	case verb == "create" && old != nil:
		status(w, http.StatusConflict, "AlreadyExists", fmt.Sprintf("%s %q already exists", k.resource, k.name))
		return
	case verb != "create" && old == nil:
		notFound(w, k)
		return
	}
	var want string
	if verb == "delete" {
		if pre, ok := obj["preconditions"].(map[string]any); ok {
			want, _ = pre["resourceVersion"].(string)
		}
	} else {
		want, _ = meta["resourceVersion"].(string)
	}
	if verb != "create" && want != "" && want != old["metadata"].(map[string]any)["resourceVersion"] {
		status(w, http.StatusConflict, "Conflict", fmt.Sprintf("Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", k.resource, k.name))
		return
	}
	if verb == "patch" {
		obj = applyMergePatch(clone(old), obj).(map[string]any)
		meta, _ = obj["metadata"].(map[string]any)
		if meta == nil || meta["name"] != k.name || meta["namespace"] != k.namespace {
			status(w, http.StatusBadRequest, "BadRequest", "a patch may not change the object's name or namespace")
			return
		}
		if k.resource == "configmaps" && dataSize(obj) > configMapLimit {
			status(w, http.StatusUnprocessableEntity, "Invalid", fmt.Sprintf("ConfigMap %q is invalid: []: Too long: must have at most %d bytes", k.name, configMapLimit))
			return
		}
	}
	s.rv++
	rv := strconv.FormatInt(s.rv, 10)
	typ := map[string]string{"create": "ADDED", "update": "MODIFIED", "patch": "MODIFIED", "delete": "DELETED"}[verb]
	if verb == "delete" {
		gone := clone(old)
		gone["metadata"].(map[string]any)["resourceVersion"] = rv
		delete(s.objs, k)
		s.record(typ, k, gone)
		reply(w, http.StatusOK, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Success"})
		return
	}
	t := kinds[k.resource]
	obj["apiVersion"], obj["kind"] = t.apiVersion, t.kind
	meta["namespace"] = k.namespace
	meta["resourceVersion"] = rv
	if old != nil {
		om := old["metadata"].(map[string]any)
		meta["uid"], meta["creationTimestamp"] = om["uid"], om["creationTimestamp"]
	} else {
		meta["uid"] = fmt.Sprintf("uid-%d", s.rv)
		meta["creationTimestamp"] = time.Now().UTC().Format(time.RFC3339)
	}
	s.objs[k] = obj
	s.record(typ, k, clone(obj))
	code := http.StatusOK
	if verb == "create" {
		code = http.StatusCreated
	}
	reply(w, code, clone(obj))
}

// applyMergePatch applies a JSON merge patch to target as RFC 7386 section 2 defines it
// (https://www.rfc-editor.org/rfc/rfc7386#section-2): an object merges key by key, null
// removes a key, anything else replaces.
func applyMergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = applyMergePatch(t[k], v)
	}
	return t
}

func (s *APIServer) record(typ string, k objKey, obj map[string]any) {
	s.history = append(s.history, change{rv: s.rv, typ: typ, key: k, obj: obj})
	close(s.wake)
	s.wake = make(chan struct{})
}

// watch streams the changes after the given resourceVersion (all objects as ADDED first when
// it is empty or "0"), until the client goes or timeoutSeconds pass.
func (s *APIServer) watch(w http.ResponseWriter, r *http.Request, k objKey) {
	q := r.URL.Query()
	sel, err := parseSelector(q.Get("labelSelector"))
	if err != nil {
		status(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	timeout := 30 * time.Minute
	if t, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && t > 0 {
		timeout = time.Duration(t) * time.Second
	}
	end := time.NewTimer(timeout)
	defer end.Stop()
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	var pending []change
	s.mu.Lock()
	from, err := strconv.ParseInt(q.Get("resourceVersion"), 10, 64)
	if err != nil || from == 0 {
		from = s.rv
		for ok, o := range s.objs {
			if ok.resource == k.resource && ok.namespace == k.namespace {
				pending = append(pending, change{typ: "ADDED", key: ok, obj: clone(o)})
			}
		}
	}
	s.mu.Unlock()
	for {
		for _, c := range pending {
			if c.key.resource != k.resource || c.key.namespace != k.namespace || !matches(c.obj, sel) {
				continue
			}
			if enc.Encode(map[string]any{"type": c.typ, "object": c.obj}) != nil {
				return
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		s.mu.Lock()
		pending = nil
		for _, c := range s.history {
			if c.rv > from {
				pending = append(pending, c)
			}
		}
		if len(pending) > 0 {
			from = pending[len(pending)-1].rv
		}
		wake := s.wake
		s.mu.Unlock()
		if len(pending) > 0 {
			continue
		}
		select {
		case <-wake:
		case <-end.C:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// exists stands for a selector term that names a key alone: the label must be there.
const exists = "\x00exists"

// parseSelector reads an equality-based labelSelector: key=value, key==value and key terms.
func parseSelector(sel string) (map[string]string, error) {
	out := map[string]string{}
	if sel == "" {
		return out, nil
	}
	for term := range strings.SplitSeq(sel, ",") {
		k, v, ok := strings.Cut(term, "=")
		if strings.ContainsAny(k, "!<>() ") {
			return nil, fmt.Errorf("labelSelector %q: only key=value and key terms are served", sel)
		}
		if !ok {
			v = exists
		}
		out[k] = strings.TrimPrefix(v, "=")
	}
	return out, nil
}

func matches(obj map[string]any, sel map[string]string) bool {
	meta, _ := obj["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	for k, v := range sel {
		if _, has := labels[k]; v == exists && has {
			continue
		}
		if labels[k] != v {
			return false
		}
	}
	return true
}

func dataSize(obj map[string]any) int {
	n := 0
	for _, field := range []string{"data", "binaryData"} {
		m, _ := obj[field].(map[string]any)
		for k, v := range m {
			s, _ := v.(string)
			n += len(k) + len(s)
		}
	}
	return n
}

func clone(o map[string]any) map[string]any {
	b, _ := json.Marshal(o)
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	return c
}

func reply(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

func notFound(w http.ResponseWriter, k objKey) {
	status(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", k.resource, k.name))
}

func status(w http.ResponseWriter, code int, reason, msg string) {
	reply(w, code, map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "reason": reason, "message": msg, "code": code})
}

// Kubeconfig writes a kubeconfig whose current context points at server, in namespace.
func Kubeconfig(t testing.TB, server, namespace string) string {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: test
clusters:
- name: test
  cluster: {server: %q}
users:
- name: test
  user: {token: not-a-real-token}
contexts:
- name: test
  context: {cluster: test, user: test, namespace: %q}
`, server, namespace)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
