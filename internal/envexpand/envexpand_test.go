package envexpand_test

import (
	"strings"
	"testing"

	"github.com/perchhq/perch/internal/envexpand"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cret", "HOST": "example.com"}
	getenv := func(k string) string { return env[k] }
	tests := []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${TOKEN}", want: "s3cret"},
		{in: "https://${HOST}/x/${TOKEN}", want: "https://example.com/x/s3cret"},
		{in: "cost $5", want: "cost $5"},
		{in: "${MISSING}", err: "environment variable MISSING is not set"},
		{in: "${TOKEN", err: "without a closing }"},
		{in: "${1X}", err: "not a variable name"},
	}
	for _, tt := range tests {
		got, err := envexpand.Expand(tt.in, getenv)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Expand(%q): error %v, want one saying %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
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
		if got := envexpand.OnlyRefs(in); got != want {
			t.Errorf("OnlyRefs(%q) = %v, want %v", in, got, want)
		}
	}
}
