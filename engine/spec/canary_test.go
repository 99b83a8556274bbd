package spec_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine/spec"
)

// TestCanaryIdentity: the rollout file's canary block is read, said in a line, and kept when
// the rollout is written to a journal's header and read back.
func TestCanaryIdentity(t *testing.T) {
	r, err := spec.Parse("c.yaml", []byte(`name: checkout
canary: {version: v2.4.0, image: ghcr.io/acme/checkout:v2.4.0, commit: 1a2b3c4}
traffic: {istio: {virtualService: c, stable: {host: c, subset: stable}, canary: {host: c, subset: canary}}}
metrics: {prometheus: {address: http://prometheus:9090}}
checks:
  - {name: p99, canary: a, baseline: b, direction: lower_is_better, maxDeviationPercent: 15, unit: s}
steps: [{setWeight: 5, analyze: 1m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Canary.String(), "v2.4.0 (image ghcr.io/acme/checkout:v2.4.0, commit 1a2b3c4)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if (&spec.Canary{Commit: "1a2b3c4"}).Short() != "1a2b3c4" || (*spec.Canary)(nil).String() != "" {
		t.Error("Short or String without a version")
	}
	data, _ := json.Marshal(r)
	if !strings.Contains(string(data), `"canary":{"version":"v2.4.0","image":"ghcr.io/acme/checkout:v2.4.0","commit":"1a2b3c4"}`) {
		t.Errorf("the rollout's JSON (a journal's header) lacks the canary: %s", data)
	}
	_, err = spec.Parse("c.yaml", []byte("name: x\ncanary: {verison: v1}\n"))
	if err == nil || !strings.Contains(err.Error(), `canary: unknown field "verison" (did you mean "version"?)`) {
		t.Errorf("a misspelt canary field: %v", err)
	}
}
