package launchdarkly_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// fake is LaunchDarkly's REST API for the routes perch uses, as its reference describes them:
//
//	GET   /api/v2/flags/{projectKey}/{featureFlagKey}?env=KEY
//	      https://launchdarkly.com/docs/api/feature-flags/get-feature-flag
//	PATCH /api/v2/flags/{projectKey}/{featureFlagKey}
//	      Content-Type: application/json; domain-model=launchdarkly.semanticpatch
//	      {"environmentKey", "comment", "instructions": [{"kind": "updateFallthroughVariationOrRollout", …}]}
//	      https://launchdarkly.com/docs/api/feature-flags/patch-feature-flag
//
// Authorization is the access token itself; errors are {"code", "message"}
// (https://launchdarkly.com/docs/api#errors); a rate-limited answer is 429 with Retry-After or
// X-Ratelimit-Reset in Unix milliseconds (https://launchdarkly.com/docs/api#rate-limiting).
type fake struct {
	mu       sync.Mutex
	token    string
	flags    map[string]map[string]any // by "project/flag"
	requests []request
	fail     []failure
}

type request struct {
	Method, Path, Query, Auth, ContentType string
	Body                                   any
}

type failure struct {
	status        int
	code, message string
	header        http.Header
}

func newFake(token string) *fake { return &fake{token: token, flags: map[string]map[string]any{}} }

func (f *fake) put(project, key, doc string) {
	var v map[string]any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flags[project+"/"+key] = v
}

func (f *fake) get(project, key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(f.flags[project+"/"+key])
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

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	req := request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type")}
	if len(data) > 0 {
		json.Unmarshal(data, &req.Body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if req.Auth != f.token {
		writeError(w, http.StatusUnauthorized, "unauthorized", "Invalid access token")
		return
	}
	if len(f.fail) > 0 {
		fl := f.fail[0]
		f.fail = f.fail[1:]
		for k, v := range fl.header {
			w.Header()[k] = v
		}
		writeError(w, fl.status, fl.code, fl.message)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v2/flags/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 2 {
		writeError(w, http.StatusNotFound, "not_found", "Unknown resource")
		return
	}
	flag := f.flags[parts[0]+"/"+parts[1]]
	if flag == nil {
		writeError(w, http.StatusNotFound, "not_found", "Unknown resource")
		return
	}
	switch r.Method {
	case http.MethodGet:
		out := map[string]any{}
		for k, v := range flag {
			out[k] = v
		}
		if env := r.URL.Query().Get("env"); env != "" {
			envs := flag["environments"].(map[string]any)
			out["environments"] = map[string]any{}
			if e, ok := envs[env]; ok {
				out["environments"] = map[string]any{env: e}
			}
		}
		writeJSON(w, out)
	case http.MethodPatch:
		if req.ContentType != "application/json; domain-model=launchdarkly.semanticpatch" {
			writeError(w, http.StatusBadRequest, "invalid_request", "This fake answers semantic patches only")
			return
		}
		if msg := f.semanticPatch(flag, req.Body); msg != "" {
			writeError(w, http.StatusBadRequest, "invalid_request", msg)
			return
		}
		writeJSON(w, flag)
	default:
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed")
	}
}

// semanticPatch applies updateFallthroughVariationOrRollout instructions, or says why not.
func (f *fake) semanticPatch(flag map[string]any, body any) string {
	b, _ := body.(map[string]any)
	envKey, _ := b["environmentKey"].(string)
	envs := flag["environments"].(map[string]any)
	env, ok := envs[envKey].(map[string]any)
	if !ok {
		return "environmentKey is required and must name an environment"
	}
	ids := map[string]int{}
	for i, v := range flag["variations"].([]any) {
		ids[v.(map[string]any)["_id"].(string)] = i
	}
	instructions, _ := b["instructions"].([]any)
	if len(instructions) == 0 {
		return "instructions: at least one is required"
	}
	for _, x := range instructions {
		in := x.(map[string]any)
		if in["kind"] != "updateFallthroughVariationOrRollout" {
			return fmt.Sprintf("unsupported instruction kind %v", in["kind"])
		}
		if id, ok := in["variationId"].(string); ok {
			i, known := ids[id]
			if !known {
				return "unknown variation ID " + id
			}
			env["fallthrough"] = map[string]any{"variation": float64(i)}
			continue
		}
		weights, ok := in["rolloutWeights"].(map[string]any)
		if !ok {
			return "updateFallthroughVariationOrRollout needs variationId or rolloutWeights"
		}
		var vars []any
		total := 0.0
		for i := range len(ids) {
			for id, w := range weights {
				if ids[id] == i {
					vars = append(vars, map[string]any{"variation": float64(i), "weight": w})
					total += w.(float64)
				}
			}
		}
		if len(vars) != len(weights) {
			return "rolloutWeights names an unknown variation"
		}
		if total != 100000 {
			return fmt.Sprintf("rollout weights must sum to 100000, got %v", total)
		}
		ro := map[string]any{"variations": vars}
		if by, ok := in["rolloutBucketBy"].(string); ok {
			ro["bucketBy"] = by
		}
		if kind, ok := in["rolloutContextKind"].(string); ok {
			ro["contextKind"] = kind
		}
		env["fallthrough"] = map[string]any{"rollout": ro}
	}
	env["_version"] = env["_version"].(float64) + 1
	flag["_version"] = flag["_version"].(float64) + 1
	return ""
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
