// Package jsonpath is the small part of JSONPath perch reads JSON answers with: a path from
// the root ($) through member names (.name or ['name']), array indexes ([0], [-1] for the
// last) and wildcards ([*] or .*, every element or member).
package jsonpath

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Path is a parsed JSONPath.
type Path struct {
	text  string
	steps []step
}

// step is one selector: a member name, an array index, or every child.
type step struct {
	name  string
	index int
	kind  stepKind
}

type stepKind int

const (
	member stepKind = iota
	index
	wildcard
)

// maxSteps bounds a path's length: paths come from rollout files, and a path is walked for
// every answer.
const maxSteps = 64

// Parse reads a path such as "$.data.result[0].values", "$['series'][*]" or "$.value".
func Parse(text string) (*Path, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(text), "$")
	if !ok {
		return nil, fmt.Errorf("JSONPath %q: want it to start at the root, $", text)
	}
	p := &Path{text: text}
	for rest != "" {
		if len(p.steps) == maxSteps {
			return nil, fmt.Errorf("JSONPath %q: more than %d steps", text, maxSteps)
		}
		var st step
		var err error
		switch {
		case strings.HasPrefix(rest, ".."):
			return nil, fmt.Errorf("JSONPath %q: recursive descent (..) is not supported", text)
		case strings.HasPrefix(rest, ".*"):
			st, rest = step{kind: wildcard}, rest[2:]
		case rest[0] == '.':
			st, rest, err = dotted(rest[1:])
		case rest[0] == '[':
			st, rest, err = bracket(rest[1:])
		default:
			err = fmt.Errorf("unexpected %q", rest)
		}
		if err != nil {
			return nil, fmt.Errorf("JSONPath %q: %w", text, err)
		}
		p.steps = append(p.steps, st)
	}
	return p, nil
}

// dotted reads a member name after a dot.
func dotted(s string) (step, string, error) {
	end := strings.IndexAny(s, ".[")
	if end < 0 {
		end = len(s)
	}
	name := s[:end]
	if name == "" {
		return step{}, "", fmt.Errorf("a member name is missing after '.'")
	}
	return step{kind: member, name: name}, s[end:], nil
}

// bracket reads what is between [ and ]: *, an index, or a quoted member name.
func bracket(s string) (step, string, error) {
	if len(s) > 0 && (s[0] == '\'' || s[0] == '"') {
		q := s[0]
		end := strings.IndexByte(s[1:], q)
		if end < 0 || !strings.HasPrefix(s[end+2:], "]") {
			return step{}, "", fmt.Errorf("unterminated name in [%c…%c]", q, q)
		}
		return step{kind: member, name: s[1 : end+1]}, s[end+3:], nil
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return step{}, "", fmt.Errorf("missing ]")
	}
	inner := strings.TrimSpace(s[:end])
	if inner == "*" {
		return step{kind: wildcard}, s[end+1:], nil
	}
	i, err := strconv.Atoi(inner)
	if err != nil {
		return step{}, "", fmt.Errorf("[%s]: want an index, '*' or a quoted name", inner)
	}
	return step{kind: index, index: i}, s[end+1:], nil
}

// String is the path as written.
func (p *Path) String() string { return p.text }

// Wild reports whether the path has a wildcard, so it selects a list of values rather than
// one.
func (p *Path) Wild() bool {
	for _, st := range p.steps {
		if st.kind == wildcard {
			return true
		}
	}
	return false
}

// Select walks doc (as encoding/json decodes into an any) and returns every value the path
// reaches, in document order (a wildcard over an object goes by member name). A step that
// finds nothing (a missing member, an index out of range, a number where an array should be)
// selects nothing there.
func (p *Path) Select(doc any) []any {
	cur := []any{doc}
	for _, st := range p.steps {
		var next []any
		for _, v := range cur {
			next = st.apply(v, next)
		}
		cur = next
		if len(cur) == 0 {
			return nil
		}
	}
	return cur
}

func (st step) apply(v any, out []any) []any {
	switch st.kind {
	case member:
		if m, ok := v.(map[string]any); ok {
			if c, ok := m[st.name]; ok {
				out = append(out, c)
			}
		}
	case index:
		if a, ok := v.([]any); ok {
			i := st.index
			if i < 0 {
				i += len(a)
			}
			if i >= 0 && i < len(a) {
				out = append(out, a[i])
			}
		}
	case wildcard:
		switch c := v.(type) {
		case []any:
			out = append(out, c...)
		case map[string]any:
			keys := make([]string, 0, len(c))
			for k := range c {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out = append(out, c[k])
			}
		}
	}
	return out
}
