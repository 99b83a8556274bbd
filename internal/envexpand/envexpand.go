// Package envexpand reads ${NAME} references in configuration values from the environment, so
// secrets (tokens, webhook paths) stay out of the files that name them.
package envexpand

import (
	"fmt"
	"regexp"
	"strings"
)

var name = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Expand replaces each ${NAME} in s with the variable's value from getenv. A variable that is
// unset (or empty) is an error: a value missing its secret would fail later, less clearly.
// Nothing else is special: a lone $ stays as it is.
func Expand(s string, getenv func(string) string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q: ${ without a closing }", s[i:])
		}
		n := s[i+2 : i+end]
		if !name.MatchString(n) {
			return "", fmt.Errorf("${%s}: not a variable name (letters, digits and _, not starting with a digit)", n)
		}
		v := getenv(n)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", n)
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

// OnlyRefs reports whether s is made of nothing but well-formed ${NAME} references (at least
// one): such a value names where a secret is, and holds none itself.
func OnlyRefs(s string) bool {
	if s == "" {
		return false
	}
	for s != "" {
		rest, ok := strings.CutPrefix(s, "${")
		if !ok {
			return false
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 || !name.MatchString(rest[:end]) {
			return false
		}
		s = rest[end+1:]
	}
	return true
}
