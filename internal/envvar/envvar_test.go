package envvar_test

import (
	"strings"
	"testing"

	"github.com/perchhq/perch/internal/envvar"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cret", "HOST": "example.com"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct{ in, want, err string }{
		{"plain $ stays", "plain $ stays", ""},
		{"${TOKEN}", "s3cret", ""},
		{"https://${HOST}/x?t=${TOKEN}", "https://example.com/x?t=s3cret", ""},
		{"${UNSET}", "", "UNSET is not set"},
		{"${TOKEN", "", "without a closing }"},
		{"${1X}", "", "not a variable name"},
	} {
		got, err := envvar.Expand(tc.in, getenv)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Expand(%q) = %q, %v; want an error about %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
