package unleash_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// fake is an Unleash server's admin API as its reference describes it, for the routes perch
// uses:
//
//	GET    /api/admin/projects/{projectId}/features/{featureName}/environments/{environment}
//	       https://docs.getunleash.io/api/get-feature-environment
//	POST   …/environments/{environment}/strategies
//	       https://docs.getunleash.io/api/add-feature-strategy
//	PATCH  …/environments/{environment}/strategies/{strategyId}   (a JSON Patch, RFC 6902)
//	       https://docs.getunleash.io/api/patch-feature-strategy
//	DELETE …/environments/{environment}/strategies/{strategyId}
//	       https://docs.getunleash.io/api/delete-feature-strategy
//
// Authorization is the token itself or "Bearer TOKEN"; errors are Unleash's apiError
// ({"id", "name", "message", "details"}); a queued 429 carries Retry-After.
type fake struct {
	mu       sync.Mutex
	token    string
	envs     map[string]map[string]any // by "project/feature/environment": the featureEnvironmentSchema
	requests []request
	fail     []failure
	nextID   int
}

type request struct {
	Method, Path, Auth, ContentType string
	Body                            any // the JSON body, decoded; nil without one
}

type failure struct {
	status  int
	name    string
	message string
	header  http.Header
}

func newFake(token string) *fake { return &fake{token: token, envs: map[string]map[string]any{}} }

// put stores a feature environment as GET answers it.
func (f *fake) put(project, feature, env string, doc string) {
	var v map[string]any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.envs[project+"/"+feature+"/"+env] = v
}

// get is the stored feature environment, as JSON text with sorted keys.
func (f *fake) get(project, feature, env string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(f.envs[project+"/"+feature+"/"+env])
	return string(b)
}

func (f *fake) failNext(fl ...failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = append(f.fail, fl...)
}

func (f *fake) log() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func writeError(w http.ResponseWriter, status int, name, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"id": "6f5b7c1e-29b4-4c1a-9d0e-3b8a2f7c9e10", "name": name, "message": msg,
		"details": []map[string]string{{"message": msg}},
	})
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	req := request{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type")}
	if len(data) > 0 {
		json.Unmarshal(data, &req.Body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if token := strings.TrimPrefix(req.Auth, "Bearer "); token == "" || token != f.token {
		writeError(w, http.StatusUnauthorized, "AuthenticationRequired", "You must log in to use Unleash. Your request had no authorization header, or its token is not valid.")
		return
	}
	if len(f.fail) > 0 {
		fl := f.fail[0]
		f.fail = f.fail[1:]
		for k, v := range fl.header {
			w.Header()[k] = v
		}
		writeError(w, fl.status, fl.name, fl.message)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/admin/projects/"), "/")
	if !strings.HasPrefix(r.URL.Path, "/api/admin/projects/") || len(parts) < 5 || parts[1] != "features" || parts[3] != "environments" {
		writeError(w, http.StatusNotFound, "NotFoundError", "The requested resource was not found.")
		return
	}
	key := parts[0] + "/" + parts[2] + "/" + parts[4]
	env := f.envs[key]
	if env == nil {
		writeError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("Could not find feature flag %s in project %s, environment %s", parts[2], parts[0], parts[4]))
		return
	}
	strategies, _ := env["strategies"].([]any)
	find := func(id string) int {
		for i, s := range strategies {
			if s.(map[string]any)["id"] == id {
				return i
			}
		}
		return -1
	}
	if (r.Method == http.MethodPost || r.Method == http.MethodPatch) && !strings.HasPrefix(req.ContentType, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "ContentTypeError", "We do not accept the content-type you provided ("+req.ContentType+"). Try using one of the content-types we do accept instead (application/json) and make sure the body is in the corresponding format.")
		return
	}
	switch {
	case r.Method == http.MethodGet && len(parts) == 5:
		writeJSON(w, env)
	case r.Method == http.MethodPost && len(parts) == 6 && parts[5] == "strategies":
		s, ok := req.Body.(map[string]any)
		if !ok || s["name"] == nil {
			writeError(w, http.StatusBadRequest, "ValidationError", `Request validation failed: your request body or params contain invalid data: "name" is required`)
			return
		}
		f.nextID++
		s["id"] = fmt.Sprintf("00000000-0000-4000-8000-%012d", f.nextID)
		s["featureName"] = parts[2]
		s["sortOrder"] = float64(len(strategies))
		s["segments"] = []any{}
		env["strategies"] = append(strategies, s)
		writeJSON(w, s)
	case len(parts) == 7 && parts[5] == "strategies" && (r.Method == http.MethodPatch || r.Method == http.MethodDelete):
		i := find(parts[6])
		if i < 0 {
			writeError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("Could not find strategy with id %s", parts[6]))
			return
		}
		if r.Method == http.MethodDelete {
			env["strategies"] = append(strategies[:i:i], strategies[i+1:]...)
			w.WriteHeader(http.StatusOK)
			return
		}
		s := strategies[i].(map[string]any)
		ops, ok := req.Body.([]any)
		if !ok {
			writeError(w, http.StatusBadRequest, "ValidationError", "Request validation failed: the request body must be a list of patch operations")
			return
		}
		for _, o := range ops {
			op, _ := o.(map[string]any)
			path, _ := op["path"].(string)
			name, isParam := strings.CutPrefix(path, "/parameters/")
			if (op["op"] != "replace" && op["op"] != "add") || !isParam {
				writeError(w, http.StatusBadRequest, "BadDataError", fmt.Sprintf("Unsupported patch operation %v on %s", op["op"], path))
				return
			}
			s["parameters"].(map[string]any)[name] = op["value"]
		}
		writeJSON(w, s)
	default:
		writeError(w, http.StatusNotFound, "NotFoundError", "The requested resource was not found.")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v)
}
