package themes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/perchhq/perch/internal/yamlpos"
)

// Error is one problem in a theme file, at the line and column where it was written.
type Error = yamlpos.Error

// Errors is every problem found in a theme file, in file order; Parse returns them.
type Errors = yamlpos.Errors

// parse reads a theme file's bytes; file names it in messages. The format:
//
//	name: solarized          # optional: the file name without its extension
//	extends: dark            # optional: a built-in theme whose colours are the defaults
//	colors:
//	  text: "#839496"        # #RGB, #RRGGBB, 0..255, or default (the terminal's own)
//	  …                      # every colour of Theme, unless extends is given
func parse(file string, data []byte) (Theme, error) {
	p := &parser{file: file}
	doc, err := p.document(data)
	if err != nil {
		return Theme{}, err
	}
	var t Theme
	set := map[string]bool{}
	var name, extends, colors *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		key, val := doc.Content[i], doc.Content[i+1]
		switch key.Value {
		case "name":
			name = val
		case "extends":
			extends = val
		case "colors":
			colors = val
		default:
			p.fail(key, "unknown field %q%s", key.Value, yamlpos.Hint(key.Value, []string{"name", "extends", "colors"}))
		}
	}
	if extends != nil {
		if base := p.scalar(extends, "extends"); base != "" {
			if b, ok := Named(base); ok {
				t = b
				for _, f := range b.colorFields() {
					set[f.key] = true
				}
			} else {
				p.fail(extends, "extends: unknown built-in theme %q (want one of %s)", base, strings.Join(builtinNames, ", "))
			}
		}
	}
	t.Name = ""
	if name != nil {
		t.Name = p.scalar(name, "name")
	}
	if colors != nil {
		p.colors(colors, &t, set)
	}
	var missing []string
	for _, f := range t.colorFields() {
		if !set[f.key] {
			missing = append(missing, f.key)
		}
	}
	if len(missing) > 0 && len(p.errs) == 0 {
		p.fail(doc, "colors: missing %s (set every colour, or start from a built-in with extends: dark)", strings.Join(missing, ", "))
	}
	if t.Name == "" {
		t.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	if len(p.errs) > 0 {
		return Theme{}, p.errs
	}
	return t, nil
}

type parser struct {
	file string
	errs Errors
}

func (p *parser) fail(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
}

// document parses data and returns its top-level mapping.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	var root yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root)
	switch {
	case errors.Is(err, io.EOF):
		return nil, Errors{{File: p.file, Line: 1, Col: 1, Msg: "empty theme file"}}
	case err != nil:
		return nil, Errors{yamlpos.Syntax(p.file, err)}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, Errors{{File: p.file, Line: doc.Line, Col: doc.Column, Msg: "want a mapping with name, extends and colors"}}
	}
	return doc, nil
}

func (p *parser) scalar(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, "%s: want a single value", field)
		return ""
	}
	return n.Value
}

func (p *parser) colors(n *yaml.Node, t *Theme, set map[string]bool) {
	if n.Kind != yaml.MappingNode {
		p.fail(n, "colors: want a mapping of colour names to colours")
		return
	}
	fields := t.colorFields()
	known := make([]string, len(fields))
	for i, f := range fields {
		known[i] = f.key
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		idx := -1
		for j, f := range fields {
			if f.key == key.Value {
				idx = j
			}
		}
		if idx < 0 {
			p.fail(key, "colors: unknown colour %q%s", key.Value, yamlpos.Hint(key.Value, known))
			continue
		}
		c, err := ParseColor(p.scalar(val, "colors."+key.Value))
		if err != nil {
			p.fail(val, "colors.%s: %v", key.Value, err)
			continue
		}
		*fields[idx].c = c
		set[key.Value] = true
	}
}

var hexColor = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// ParseColor reads a colour as theme files write it: #RGB, #RRGGBB, an ANSI colour number
// 0..255, or "default" (or "") for the terminal's own colour.
func ParseColor(s string) (Color, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || strings.EqualFold(s, "default"):
		return "", nil
	case hexColor.MatchString(s):
		return Color(strings.ToLower(s)), nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 255 {
			return "", fmt.Errorf("ANSI colour %d is outside 0..255", n)
		}
		return Color(s), nil
	}
	return "", fmt.Errorf("%q: want #RGB, #RRGGBB, an ANSI colour number 0..255, or default", s)
}
