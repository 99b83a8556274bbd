package suggest_test

import (
	"testing"

	"github.com/perchhq/perch/engine/suggest"
)

func TestHint(t *testing.T) {
	known := []string{"interval", "stabilization", "judge"}
	tests := map[string]string{
		"intreval": ` (did you mean "interval"?)`,
		"Judg":     ` (did you mean "judge"?)`,
		"colour":   " (want one of interval, stabilization, judge)",
	}
	for got, want := range tests {
		if h := suggest.Hint(got, known); h != want {
			t.Errorf("Hint(%q) = %q, want %q", got, h, want)
		}
	}
}
