package yamlpos_test

import (
	"testing"

	"github.com/perchhq/perch/internal/yamlpos"
)

func TestHint(t *testing.T) {
	known := []string{"interval", "stabilization", "judge"}
	tests := map[string]string{
		"intreval": ` (did you mean "interval"?)`,
		"Judg":     ` (did you mean "judge"?)`,
		"colour":   " (want one of interval, stabilization, judge)",
	}
	for got, want := range tests {
		if h := yamlpos.Hint(got, known); h != want {
			t.Errorf("Hint(%q) = %q, want %q", got, h, want)
		}
	}
}
