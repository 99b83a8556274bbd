package envref_test

import (
	"strings"
	"testing"

	"github.com/perchhq/perch/internal/envref"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cr3t", "HOST": "example.com"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		in, want, err string
	}{
		{"plain $ and text", "plain $ and text", ""},
		{"${TOKEN}", "s3cr3t", ""},
		{"https://${HOST}/x/${TOKEN}", "https://example.com/x/s3cr3t", ""},
		{"${UNSET}", "", "environment variable UNSET is not set"},
		{"${TOKEN", "", `"${TOKEN": ${ without a closing }`},
		{"${1X}", "", "${1X}: not a variable name"},
	}
	for _, tc := range tests {
		got, err := envref.Expand(tc.in, getenv)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Expand(%q): error %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("Expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestOnlyRefs(t *testing.T) {
	for in, want := range map[string]bool{
		"${TOKEN}":        true,
		"${A}${B_2}":      true,
		"":                false,
		"literal":         false,
		"Bearer ${TOKEN}": false,
		"${TOKEN}x":       false,
		"${TOKEN":         false,
		"${1X}":           false,
	} {
		if got := envref.OnlyRefs(in); got != want {
			t.Errorf("OnlyRefs(%q) = %v, want %v", in, got, want)
		}
	}
}
