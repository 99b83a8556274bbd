package proxyd

import (
	"fmt"
	"reflect"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/perchhq/perch/internal/envexpand"
	"github.com/perchhq/perch/internal/yamlpos"
)

// decoder fills a Config from YAML nodes by the fields' yaml tags, reading ${NAME} in text
// from the environment, remembering where each field was written so validation can point at
// it, and collecting every problem at its FILE:LINE:COL.
type decoder struct {
	file   string
	getenv func(string) string
	pos    map[string]*yaml.Node // the value written at each path ("timeouts.idle")
	bad    map[string]bool       // paths already reported, so validation does not pile on
	errs   yamlpos.Errors
}

var durationType = reflect.TypeFor[time.Duration]()

func (d *decoder) errAt(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.errs = append(d.errs, &yamlpos.Error{File: d.file, Line: n.Line, Col: n.Column, Msg: msg})
}

// fail reports a problem with the field at path: where it was written, else where its
// nearest written parent was, else the top of the file.
func (d *decoder) fail(path, format string, args ...any) {
	if d.bad[path] {
		return
	}
	for p := path; ; p = parentPath(p) {
		if n, ok := d.pos[p]; ok {
			d.errAt(n, path, format, args...)
			return
		}
		if p == "" {
			break
		}
	}
	d.errAt(&yaml.Node{Line: 1, Column: 1}, path, format, args...)
}

// written reports whether the file set the field at path.
func (d *decoder) written(path string) bool {
	_, ok := d.pos[path]
	return ok
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = n
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.errAt(n, path, "want text, got %s", describe(n))
			return
		}
		s, err := envexpand.Expand(n.Value, d.getenv)
		if err != nil {
			d.errAt(n, path, "%v", err)
			return
		}
		v.SetString(s)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			d.errAt(n, path, "want a whole number, got %s", describe(n))
			return
		}
		v.SetInt(int64(i))
	default:
		panic("proxyd decoder: unhandled field type " + v.Type().String())
	}
}

// mapping fills a struct from a YAML mapping; a field the struct does not have is an error
// naming the closest one it does.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return // "sticky:" alike: present, with nothing set
	}
	if n.Kind != yaml.MappingNode {
		d.errAt(n, path, "want a mapping, got %s", describe(n))
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
		fieldPath := joinPath(path, key.Value)
		idx, ok := fields[key.Value]
		switch {
		case !ok:
			d.errAt(key, path, "unknown field %q%s", key.Value, yamlpos.Hint(key.Value, names))
			d.bad[path] = false // the rest of the mapping is still worth checking
			continue
		case seen[key.Value]:
			d.errAt(key, fieldPath, "set twice")
			continue
		}
		seen[key.Value] = true
		d.decode(val, v.Field(idx), fieldPath)
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errAt(n, path, "want a duration like 30s or 5m, got %s", describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		hint := ""
		if n.Tag == "!!int" || n.Tag == "!!float" {
			hint = " (add a unit: ms, s, m or h)"
		}
		d.errAt(n, path, "want a duration like 30s or 5m, got %q%s", n.Value, hint)
		return
	}
	v.SetInt(int64(dur))
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if isNull(n) {
		return "nothing"
	}
	return strconv.Quote(n.Value)
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func parentPath(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' {
			return path[:i]
		}
	}
	return ""
}
