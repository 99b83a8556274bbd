package spec

import (
	"os"
	"reflect"
	"sort"
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
	if e := tabIndent(file, data); e != nil {
		return nil, Errors{e}
	}
	doc, err := yamlpos.Document(file, "rollout file", data)
	if err != nil {
		return nil, indentation(file, data, err)
	}
	d := newDecoder(file)
	d.floors = floors
	d.expandTemplates(doc)
	spec := &Rollout{file: file, pos: d.Pos, origins: d.Origins, templateOf: d.templateOf}
	d.Decode(doc, reflect.ValueOf(spec).Elem(), "")
	d.validate(spec)
	if err := d.Err(); err != nil {
		return nil, err
	}
	return spec, nil
}

// decoder fills a Rollout from YAML nodes (yamlpos.Decoder, with the rollout file's own types)
// and validates it, pointing each problem at where it was written.
type decoder struct {
	*yamlpos.Decoder
	// checked is set when re-checking a spec perch wrote itself (a journal header): its
	// defaults were applied when it was first loaded, and a zero there is deliberate.
	checked bool
	// floors is set when reading a user's file (Load): it may not drive perch harder than
	// MinInterval allows.
	floors bool
	// templateOf names, by index, the template each check came from (expandTemplates).
	templateOf map[int]string
}

func newDecoder(file string) *decoder {
	d := &decoder{Decoder: yamlpos.NewDecoder(file), templateOf: map[int]string{}}
	d.Origins = map[string]yamlpos.Origin{}
	d.Special = d.special
	return d
}

// special decodes the rollout file's own types: durations, queries and judge options.
func (d *decoder) special(n *yaml.Node, v reflect.Value, path string) bool {
	switch p := v.Addr().Interface().(type) {
	case *Duration:
		if dur, ok := d.Duration(n, path); ok {
			*p = Duration(dur)
		}
	case *metrics.Query:
		d.query(n, p, path)
	case *metrics.Options:
		if n.Kind != yaml.MappingNode {
			d.ErrAt(n, path, "want a mapping of options")
		} else if err := n.Decode(p); err != nil {
			d.ErrAt(n, path, "%v", err)
		}
	case *Pause: // pause: 5m, for pause: {duration: 5m}
		if hint := scalarHint(n, path); hint != "" {
			d.ErrAt(n, path, "want a mapping, got %s%s", yamlpos.Describe(n), hint)
			return true
		}
		return false
	case *float64: // maxIncrease: 0.5%
		if hint := numberHint(n, path); hint != "" {
			d.ErrAt(n, path, "want a number, got %s%s", yamlpos.Describe(n), hint)
			return true
		}
		return false
	default:
		return false
	}
	return true
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
	case n.Kind == yaml.ScalarNode && !yamlpos.IsNull(n):
		q.Expr = n.Value
		return
	case n.Kind != yaml.MappingNode:
		d.ErrAt(n, path, "want a query (text, or a CloudWatch metric mapping), got %s", yamlpos.Describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if key, val := n.Content[i], n.Content[i+1]; key.Value == "dimensions" && val.Kind != yaml.MappingNode {
			d.ErrAt(val, yamlpos.JoinPath(path, "dimensions"), "want a mapping of dimension names to values, got %s", yamlpos.Describe(val))
			return
		}
	}
	var cw cloudWatchQuery
	before := len(d.Errs)
	d.Mapping(n, reflect.ValueOf(&cw).Elem(), path)
	if len(d.Errs) > before {
		return
	}
	if cw.Expression != "" {
		if cw.Namespace != "" || cw.MetricName != "" || cw.Stat != "" || len(cw.Dimensions) > 0 {
			d.ErrAt(n, path, "a query is either an expression or a metric (namespace, metricName, stat), not both")
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
