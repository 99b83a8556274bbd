// Package yamlpos reports problems in a YAML file at the line and column where they were
// written, as FILE:LINE:COL: message, with a "did you mean" hint for a misspelt name. Rollout
// files and theme files are checked with it.
package yamlpos

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Error is one problem in a YAML file, at the line and column where it was written.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

// Errors is every problem found in a YAML file, one per line when printed.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// yamlLine finds the line yaml.v3 names in its parse errors ("yaml: line 3: …").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Syntax turns a yaml.v3 parse error into an Error "not valid YAML: …" at the line it names,
// or at the top of the file when it names none.
func Syntax(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Col: 1, Msg: "not valid YAML: " + m[2]}
	}
	return &Error{File: file, Line: 1, Col: 1, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}
