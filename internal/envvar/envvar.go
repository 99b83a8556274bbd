// Package envvar expands ${NAME} references in rollout-file values (notification URLs and
// headers, the proxy's override token), so secrets stay out of the file.
package envvar

import (
	"fmt"
	"regexp"
	"strings"
)

var name = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Expand replaces each ${NAME} in s with the variable's value from getenv. A variable that is
// unset (or empty) is an error: a value missing its secret would fail every use. Nothing else
// is special: a lone $ stays as it is.
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
