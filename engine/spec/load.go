package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/perchhq/perch/internal/yamlpos"
	"github.com/perchhq/perch/metrics"
)

// Error is one problem in a rollout file, at the line and column where it was written.
type Error = yamlpos.Error

// Errors is every problem found in a rollout file, in file order.
type Errors = yamlpos.Errors

// MinInterval is the shortest analysis.interval Load accepts. Every interval journals, and
// fsyncs, a look at the checks: a file asking for 1ns would make perch write thousands of
// events a second and crowd out everything else it does.
const MinInterval = time.Second

// Load reads, defaults and validates the rollout file at path, as perch's commands read the
// files they are given, and holds it to the floors on how hard a file may drive perch
// (MinInterval). Problems in the file come back as Errors; a file that cannot be read as a
// plain error.
func Load(path string) (*Rollout, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, true)
}

// Parse reads, defaults and validates a rollout file's bytes; file names it in messages. It
// applies no floors: it is for programs that vouch for the rollout they hand over (tests,
// tools embedding one), as Validate is for rollouts built in code, such as the demo's, whose
// intervals shrink with --speed.
func Parse(file string, data []byte) (*Rollout, error) {
	return parse(file, data, false)
}

func parse(file string, data []byte, floors bool) (*Rollout, error) {
	d := &decoder{file: file, floors: floors, pos: map[string]srcPos{}, bad: map[string]bool{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	err := dec.Decode(&root)
	switch {
	case errors.Is(err, io.EOF):
		return nil, Errors{{File: file, Line: 1, Col: 1, Msg: "empty rollout file"}}
	case err != nil:
		return nil, Errors{yamlpos.Syntax(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: file, Line: extra.Line, Col: extra.Column, Msg: "more than one YAML document; a rollout file holds one"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, Errors{yamlpos.Syntax(file, err)}
	}
	doc := root.Content[0]
	if isNull(doc) {
		return nil, Errors{{File: file, Line: doc.Line, Col: doc.Column, Msg: "empty rollout file"}}
	}
	spec := &Rollout{file: file, pos: d.pos}
	d.decode(doc, reflect.ValueOf(spec).Elem(), "")
	d.validate(spec)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i], d.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		})
		return nil, d.errs
	}
	return spec, nil
}

type srcPos struct{ line, col int }

// decoder fills a Rollout from YAML nodes, remembering where each field was written and which
// fields were malformed, so later checks can point at the right line and not pile on.
type decoder struct {
	// checked is set when re-checking a spec perch wrote itself (a journal header): its
	// defaults were applied when it was first loaded, and a zero there is deliberate.
	checked bool
	// floors is set when reading a user's file (Load): it may not drive perch harder than
	// MinInterval allows.
	floors bool
	file   string
	pos    map[string]srcPos
	bad    map[string]bool
	errs   Errors
}

func (d *decoder) errAt(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Msg: msg})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = srcPos{n.Line, n.Column}
	switch p := v.Addr().Interface().(type) {
	case *Duration:
		d.duration(n, p, path)
		return
	case *metrics.Query:
		d.query(n, p, path)
		return
	case *metrics.Options:
		if n.Kind != yaml.MappingNode {
			d.errAt(n, path, "want a mapping of options")
			return
		}
		if err := n.Decode(p); err != nil {
			d.errAt(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) && v.Type().Elem().Kind() != reflect.Struct {
			return // an empty scalar is as if unset
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errAt(n, path, "want a list, got %s", describe(n))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
		for i, item := range n.Content {
			d.decode(item, v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map: // map[string]string, as CloudWatch dimensions
		if n.Kind != yaml.MappingNode {
			d.errAt(n, path, "want a mapping, got %s", describe(n))
			return
		}
		v.Set(reflect.MakeMap(v.Type()))
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			d.pos[joinPath(path, key.Value)] = srcPos{val.Line, val.Column} // Where finds each value
			if val.Kind != yaml.ScalarNode || isNull(val) {
				d.errAt(val, joinPath(path, key.Value), "want text, got %s", describe(val))
				continue
			}
			v.SetMapIndex(reflect.ValueOf(key.Value), reflect.ValueOf(val.Value))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.errAt(n, path, "want text, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			d.errAt(n, path, "want a whole number, got %s", describe(n))
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
			d.errAt(n, path, "want a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.errAt(n, path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	default:
		panic("spec decoder: unhandled field type " + v.Type().String())
	}
}

// mapping fills a struct from a YAML mapping, by the fields' yaml tags.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return // "pause:" or "builtin: {}" alike: present, with nothing set
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

func (d *decoder) duration(n *yaml.Node, p *Duration, path string) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errAt(n, path, "want a duration like 30s or 5m, got %s", describe(n))
		return
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		hint := ""
		if n.Tag == "!!int" || n.Tag == "!!float" {
			hint = " (add a unit: s, m or h)"
		}
		d.errAt(n, path, "want a duration like 30s or 5m, got %q%s", n.Value, hint)
		return
	}
	*p = Duration(v)
}

// cloudWatchQuery is how a CloudWatch query is written in a rollout file.
type cloudWatchQuery struct {
	Expression string            `yaml:"expression"`
	Namespace  string            `yaml:"namespace"`
	MetricName string            `yaml:"metricName"`
	Dimensions map[string]string `yaml:"dimensions"`
	Stat       string            `yaml:"stat"`
	Unit       string            `yaml:"unit"`
}

// query reads a query: text (PromQL, a metric-math expression) or a CloudWatch metric mapping.
func (d *decoder) query(n *yaml.Node, q *metrics.Query, path string) {
	switch {
	case n.Kind == yaml.ScalarNode && !isNull(n):
		q.Expr = n.Value
		return
	case n.Kind != yaml.MappingNode:
		d.errAt(n, path, "want a query (text, or a CloudWatch metric mapping), got %s", describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if key, val := n.Content[i], n.Content[i+1]; key.Value == "dimensions" && val.Kind != yaml.MappingNode {
			d.errAt(val, joinPath(path, "dimensions"), "want a mapping of dimension names to values, got %s", describe(val))
			return
		}
	}
	var cw cloudWatchQuery
	before := len(d.errs)
	d.mapping(n, reflect.ValueOf(&cw).Elem(), path)
	if len(d.errs) > before {
		return
	}
	if cw.Expression != "" {
		if cw.Namespace != "" || cw.MetricName != "" || cw.Stat != "" || len(cw.Dimensions) > 0 {
			d.errAt(n, path, "a query is either an expression or a metric (namespace, metricName, stat), not both")
			return
		}
		q.Expr = cw.Expression
		return
	}
	m := &metrics.MetricStat{Namespace: cw.Namespace, MetricName: cw.MetricName, Stat: cw.Stat, Unit: cw.Unit}
	for name, value := range cw.Dimensions {
		m.Dimensions = append(m.Dimensions, metrics.Dimension{Name: name, Value: value})
	}
	sort.Slice(m.Dimensions, func(i, j int) bool { return m.Dimensions[i].Name < m.Dimensions[j].Name })
	q.Metric = m
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

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
