package metrics_test

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/perchhq/perch/metrics"
)

// Bounds survive JSON, which has no infinity: +Inf is written as Prometheus' le label writes it.
func TestBoundsJSON(t *testing.T) {
	b := metrics.Bounds{0.005, 0.1, 2.5, math.Inf(1)}
	data, err := json.Marshal(b)
	if err != nil || string(data) != `[0.005,0.1,2.5,"+Inf"]` {
		t.Fatalf("marshal: %s, %v", data, err)
	}
	var back metrics.Bounds
	if err := json.Unmarshal(data, &back); err != nil || !slices.Equal(back, b) {
		t.Fatalf("unmarshal: %v, %v", back, err)
	}
	for _, in := range []string{`[1, "Inf"]`, `[1, "inf"]`, `[1, "+Inf"]`} {
		if err := json.Unmarshal([]byte(in), &back); err != nil || !math.IsInf(back[1], 1) {
			t.Errorf("%s: %v, %v", in, back, err)
		}
	}
	for _, in := range []string{`[1, "soon"]`, `[1, "NaN"]`, `[1, true]`, `{"a": 1}`} {
		if err := json.Unmarshal([]byte(in), &back); err == nil {
			t.Errorf("%s: read as %v, want an error", in, back)
		}
	}
	if _, err := json.Marshal(metrics.Bounds{math.NaN()}); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("a NaN bound marshalled: %v", err)
	}
}
