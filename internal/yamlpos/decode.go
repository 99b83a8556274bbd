package yamlpos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Pos is where a value was written in a file.
type Pos struct{ Line, Col int }

// Decoder fills Go values from YAML nodes by their fields' yaml tags. It remembers where each
// field was written, so checks after decoding can point at it, and collects every problem at
// its FILE:LINE:COL instead of stopping at the first: a file's problems are all reported at
// once. A field the struct does not have is an error naming the closest one it does.
//
// It knows structs, pointers, slices, map[string]string, strings, ints, float64s, bools and
// time.Duration; Special handles the types a caller gives a meaning of its own.
type Decoder struct {
	File string
	Pos  map[string]Pos  // where each field was written, by path ("checks[1].name")
	Bad  map[string]bool // paths already reported, so later checks do not pile on
	Errs Errors
	// Special, if set, decodes n into v when v's type is one the caller knows (a duration
	// type of its own, a query), reporting whether it did.
	Special func(n *yaml.Node, v reflect.Value, path string) bool
	// Text, if set, turns a scalar's text into the string stored (${NAME} expansion, say).
	Text func(s string) (string, error)
	// Origins names, by path, the parts of the document that were written in another file
	// (a check a template gave): problems at or under such a path are reported in that file.
	Origins map[string]Origin
}

// Origin is the file a part of a document was written in, when not the Decoder's own, and a
// note on how it came in ("from use golden-signals at checkout.yaml:14:5"), added to messages.
type Origin struct{ File, Note string }

// Origin is where the field at path was written: its file and the note on how it came in
// (empty for the Decoder's own file).
func (d *Decoder) Origin(path string) Origin {
	for p := path; ; p = ParentPath(p) {
		if o, ok := d.Origins[p]; ok {
			return o
		}
		if p == "" {
			return Origin{File: d.File}
		}
	}
}

// errorAt is a problem with the field at path, at line and column of the file the field at
// where was written in.
func (d *Decoder) errorAt(where, path string, at Pos, format string, args ...any) *Error {
	o := d.Origin(where)
	msg := message(path, format, args...)
	if o.Note != "" {
		msg += " (" + o.Note + ")"
	}
	return &Error{File: o.File, Line: at.Line, Col: at.Col, Msg: msg}
}

// NewDecoder decodes a file named file.
func NewDecoder(file string) *Decoder {
	return &Decoder{File: file, Pos: map[string]Pos{}, Bad: map[string]bool{}}
}

// Document reads the one YAML document in data. A file that is empty, holds only null or more
// than one document, or is not YAML, is an error worded for what, the kind of file ("rollout
// file").
func Document(file, what string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	err := dec.Decode(&root)
	switch {
	case errors.Is(err, io.EOF):
		return nil, Errors{{File: file, Line: 1, Col: 1, Msg: "empty " + what}}
	case err != nil:
		return nil, Errors{Syntax(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: file, Line: extra.Line, Col: extra.Column, Msg: "more than one YAML document; a " + what + " holds one"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, Errors{Syntax(file, err)}
	}
	doc := root.Content[0]
	if IsNull(doc) {
		return nil, Errors{{File: file, Line: doc.Line, Col: doc.Column, Msg: "empty " + what}}
	}
	return doc, nil
}

// Err is every problem found, in file order, or nil: the Decoder's own file first, then each
// other file's (Origins) by name.
func (d *Decoder) Err() error {
	if len(d.Errs) == 0 {
		return nil
	}
	slices.SortStableFunc(d.Errs, func(a, b *Error) int {
		if a.File != b.File {
			switch {
			case a.File == d.File:
				return -1
			case b.File == d.File:
				return 1
			}
			return strings.Compare(a.File, b.File)
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	return d.Errs
}

// ErrAt reports a problem with the field at path, at node n.
func (d *Decoder) ErrAt(n *yaml.Node, path, format string, args ...any) {
	d.Bad[path] = true
	d.Errs = append(d.Errs, d.errorAt(path, path, Pos{n.Line, n.Column}, format, args...))
}

// Fail reports a problem with the field at path, where it was written, else where its nearest
// written parent was, else at the top of the file. Problems under a field already reported
// are dropped: they would only repeat it.
func (d *Decoder) Fail(path, format string, args ...any) {
	for p := path; ; p = ParentPath(p) {
		if d.Bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	d.FailAt(path, path, format, args...)
}

// FailAt reports a problem with the field at path where the field at where was written, else
// where its nearest written parent was, else at the top of the file: a missing field is
// pointed at the one that needs it.
func (d *Decoder) FailAt(where, path, format string, args ...any) {
	at, found := Pos{1, 1}, ""
	for p := where; ; p = ParentPath(p) {
		if w, ok := d.Pos[p]; ok {
			at, found = w, p
			break
		}
		if p == "" {
			break
		}
	}
	d.Bad[path] = true
	d.Errs = append(d.Errs, d.errorAt(found, path, at, format, args...))
}

func message(path, format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return msg
}

// Written reports whether the file set the field at path.
func (d *Decoder) Written(path string) bool {
	_, ok := d.Pos[path]
	return ok
}

var durationType = reflect.TypeFor[time.Duration]()

// Decode fills v from n; path names v in messages.
func (d *Decoder) Decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.Pos[path] = Pos{n.Line, n.Column}
	if d.Special != nil && d.Special(n, v, path) {
		return
	}
	if v.Type() == durationType {
		if dur, ok := d.Duration(n, path); ok {
			v.SetInt(int64(dur))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if IsNull(n) && v.Type().Elem().Kind() != reflect.Struct {
			return // an empty scalar is as if unset
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.Decode(n, v.Elem(), path)
	case reflect.Struct:
		d.Mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.ErrAt(n, path, "want a list, got %s", Describe(n))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
		for i, item := range n.Content {
			d.Decode(item, v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map: // map[string]string: names to values (dimensions, headers)
		d.stringMap(n, v, path)
	case reflect.String:
		if s, ok := d.text(n, path); ok {
			v.SetString(s)
		}
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			d.ErrAt(n, path, "want a whole number, got %s", Describe(n))
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
			d.ErrAt(n, path, "want a number, got %s", Describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.ErrAt(n, path, "want true or false, got %s", Describe(n))
			return
		}
		v.SetBool(b)
	default:
		panic("yamlpos: unhandled field type " + v.Type().String())
	}
}

func (d *Decoder) text(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || IsNull(n) {
		d.ErrAt(n, path, "want text, got %s", Describe(n))
		return "", false
	}
	if d.Text == nil {
		return n.Value, true
	}
	s, err := d.Text(n.Value)
	if err != nil {
		d.ErrAt(n, path, "%v", err)
		return "", false
	}
	return s, true
}

func (d *Decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.ErrAt(n, path, "want a mapping, got %s", Describe(n))
		return
	}
	v.Set(reflect.MakeMap(v.Type()))
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		p := JoinPath(path, key.Value)
		d.Pos[p] = Pos{val.Line, val.Column} // so each value can be pointed at
		if s, ok := d.text(val, p); ok {
			v.SetMapIndex(reflect.ValueOf(key.Value), reflect.ValueOf(s).Convert(v.Type().Elem())) // map[string]Secret too
		}
	}
}

// Mapping fills a struct from a YAML mapping, by the fields' yaml tags.
func (d *Decoder) Mapping(n *yaml.Node, v reflect.Value, path string) {
	if IsNull(n) {
		return // "pause:" or "builtin: {}" alike: present, with nothing set
	}
	if n.Kind != yaml.MappingNode {
		d.ErrAt(n, path, "want a mapping, got %s", Describe(n))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := range v.NumField() {
		if tag := v.Type().Field(i).Tag.Get("yaml"); tag != "" {
			fields[tag] = i
			names = append(names, tag)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		fieldPath := JoinPath(path, key.Value)
		idx, ok := fields[key.Value]
		switch {
		case !ok:
			d.ErrAt(key, path, "unknown field %q%s", key.Value, Hint(key.Value, names))
			d.Bad[path] = false // the rest of the mapping is still worth checking
			continue
		case seen[key.Value]:
			d.ErrAt(key, fieldPath, "set twice")
			continue
		}
		seen[key.Value] = true
		d.Decode(val, v.Field(idx), fieldPath)
	}
}

// Duration reads a duration written as Go writes them (30s, 5m, 1h30m).
func (d *Decoder) Duration(n *yaml.Node, path string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || IsNull(n) {
		d.ErrAt(n, path, "want a duration like 30s or 5m, got %s", Describe(n))
		return 0, false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		hint := ""
		if n.Tag == "!!int" || n.Tag == "!!float" {
			hint = " (add a unit: s, m or h)"
		}
		d.ErrAt(n, path, "want a duration like 30s or 5m, got %q%s", n.Value, hint)
		return 0, false
	}
	return v, true
}

// IsNull reports whether n is an empty or null scalar.
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// Describe names what n is, for "want …, got …" messages.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if IsNull(n) {
		return "nothing"
	}
	return strconv.Quote(n.Value)
}

// JoinPath is the path of field inside path.
func JoinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// ParentPath is the path of the mapping or list holding path ("a.b[2]" → "a.b" → "a").
func ParentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}
