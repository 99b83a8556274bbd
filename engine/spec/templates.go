package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/perchhq/perch/internal/yamlpos"
)

// Check templates: a check written `use: NAME` with `with:` arguments is replaced, when the
// rollout file is read, by the checks in the template file NAME.yaml (or NAME.yml), its
// ${arg} placeholders filled in. Everything after loading sees ordinary checks.
//
// Lookup: the directories under templates:, in the order written (relative ones from the
// rollout file's directory), then the rollout file's own directory; the first file found wins.
//
// Placeholders: in a template every ${name} is an argument, and `with:` must give each one and
// nothing else. Arguments are filled into the parsed template's values, never into its text, so
// an argument cannot change the template's structure; and filling is one pass, so a value that
// itself holds ${NAME} (say `with: {token: "${API_TOKEN}"}`) is kept as written, for the
// environment expansion of the fields that have one. A template writes $${NAME} for a
// literal ${NAME} of its own.

// MaxTemplateSize is the largest check template file read.
const MaxTemplateSize = 256 << 10

// maxTemplateNodes bounds the YAML nodes one use of a template expands to: YAML aliases can
// make a small file stand for a huge tree.
const maxTemplateNodes = 20000

// templateKeys are the fields of a check that uses a template.
var templateKeys = []string{"use", "with", "dryRun"}

var argPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkTemplate is one check template file, read and parsed.
type checkTemplate struct {
	file   string
	checks []*yaml.Node   // one mapping per check
	args   map[string]Pos // each ${arg} where first used
	order  []string       // the args in the order first used
	err    bool           // the file had problems, reported already
}

// Pos is where a template used an argument.
type Pos = yamlpos.Pos

// expander reads the templates a rollout file uses.
type expander struct {
	d     *decoder
	dirs  []string
	own   string // the rollout file, never a template of itself
	cache map[string]*checkTemplate
}

// expandTemplates replaces each `use:` check under doc's checks with the template's checks.
func (d *decoder) expandTemplates(doc *yaml.Node) {
	if doc.Kind != yaml.MappingNode {
		return
	}
	var dirsNode, checks *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		switch doc.Content[i].Value {
		case "templates":
			dirsNode = doc.Content[i+1]
		case "checks":
			checks = doc.Content[i+1]
		}
	}
	if checks == nil || checks.Kind != yaml.SequenceNode || !usesTemplate(checks) {
		return
	}
	base := filepath.Dir(d.File)
	x := &expander{d: d, own: filepath.Clean(d.File), cache: map[string]*checkTemplate{}}
	if dirsNode != nil && dirsNode.Kind == yaml.SequenceNode {
		for i, n := range dirsNode.Content {
			if n.Kind != yaml.ScalarNode || yamlpos.IsNull(n) {
				continue // reported when the field is decoded
			}
			dir := n.Value
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(base, dir)
			}
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				d.ErrAt(n, fmt.Sprintf("templates[%d]", i), "%s is not a directory of check templates", dir)
				continue
			}
			x.dirs = append(x.dirs, dir)
		}
	}
	x.dirs = append(x.dirs, base)
	var out []*yaml.Node
	failed := false
	for i, item := range checks.Content {
		if !isUse(item) {
			out = append(out, item)
			continue
		}
		expanded, ok := x.use(item, fmt.Sprintf("checks[%d]", i), len(out))
		failed = failed || !ok
		out = append(out, expanded...)
	}
	checks.Content = out
	if failed && len(out) == 0 {
		d.Bad["checks"] = true // no "no checks" on top of what was reported
	}
}

func usesTemplate(checks *yaml.Node) bool {
	return slices.ContainsFunc(checks.Content, isUse)
}

func isUse(n *yaml.Node) bool {
	return n.Kind == yaml.MappingNode && mapValue(n, "use") != nil
}

// mapValue is the value of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// use expands one `use:` check, written at path, whose checks will start at index first of the
// expanded list. It reports whether it did without problems.
func (x *expander) use(item *yaml.Node, path string, first int) ([]*yaml.Node, bool) {
	d := x.d
	before := len(d.Errs)
	var useNode, withNode, dryRun *yaml.Node
	for i := 0; i+1 < len(item.Content); i += 2 {
		key, val := item.Content[i], item.Content[i+1]
		switch key.Value {
		case "use":
			useNode = val
		case "with":
			withNode = val
		case "dryRun":
			dryRun = val
		default:
			d.ErrAt(key, path, "unknown field %q in a check that uses a template%s; a template's checks are changed in the template, or through its arguments",
				key.Value, yamlpos.Hint(key.Value, templateKeys))
		}
	}
	usePath := path + ".use"
	if useNode.Kind != yaml.ScalarNode || yamlpos.IsNull(useNode) || !namePattern.MatchString(useNode.Value) {
		d.ErrAt(useNode, usePath, "want a template's name (letters, digits, '.', '_' and '-': the file NAME.yaml in a templates directory), got %s", yamlpos.Describe(useNode))
		return nil, false
	}
	name := useNode.Value
	with := map[string]*yaml.Node{}
	var withKeys []*yaml.Node
	if withNode != nil && !yamlpos.IsNull(withNode) {
		if withNode.Kind != yaml.MappingNode {
			d.ErrAt(withNode, path+".with", "want a mapping of the template's arguments to values, got %s", yamlpos.Describe(withNode))
			return nil, false
		}
		for i := 0; i+1 < len(withNode.Content); i += 2 {
			key, val := withNode.Content[i], withNode.Content[i+1]
			p := yamlpos.JoinPath(path+".with", key.Value)
			switch {
			case with[key.Value] != nil:
				d.ErrAt(key, p, "set twice")
			case val.Kind != yaml.ScalarNode || yamlpos.IsNull(val):
				d.ErrAt(val, p, "want text, got %s", yamlpos.Describe(val))
			default:
				with[key.Value] = val
				withKeys = append(withKeys, key)
			}
		}
	}
	if dryRun != nil && (dryRun.Kind != yaml.ScalarNode || dryRun.ShortTag() != "!!bool") {
		d.ErrAt(dryRun, path+".dryRun", "want true or false, got %s", yamlpos.Describe(dryRun))
	}
	t := x.find(useNode, usePath, name)
	if t == nil || t.err {
		return nil, false
	}
	where := fmt.Sprintf("%s:%d:%d", d.File, useNode.Line, useNode.Column)
	for _, arg := range t.order {
		if with[arg] == nil {
			at := t.args[arg]
			d.ErrAt(useNode, usePath, "%s: missing argument %s (used at %s:%d:%d)", name, arg, t.file, at.Line, at.Col)
		}
	}
	for _, key := range withKeys {
		if _, ok := t.args[key.Value]; !ok {
			hint := ""
			if len(t.order) > 0 {
				hint = yamlpos.Hint(key.Value, t.order)
			} else {
				hint = " (it takes no arguments)"
			}
			d.ErrAt(key, yamlpos.JoinPath(path+".with", key.Value), "%s never uses argument %s%s", name, key.Value, hint)
		}
	}
	if len(d.Errs) > before {
		return nil, false
	}
	values := map[string]string{}
	for k, v := range with {
		values[k] = v.Value
	}
	out := make([]*yaml.Node, 0, len(t.checks))
	for i, c := range t.checks {
		budget := maxTemplateNodes
		n, ok := fill(c, values, &budget)
		if !ok {
			d.ErrAt(useNode, usePath, "%s: the template expands to more than %d YAML nodes (aliases?)", name, maxTemplateNodes)
			return nil, false
		}
		if dryRun != nil {
			setKey(n, "dryRun", dryRun)
		}
		p := fmt.Sprintf("checks[%d]", first+i)
		d.Origins[p] = yamlpos.Origin{File: t.file, Note: "from use " + name + " at " + where}
		d.templateOf[first+i] = name
		out = append(out, n)
	}
	return out, true
}

// setKey sets key to val in mapping n, replacing a value it has.
func setKey(n *yaml.Node, key string, val *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content[i+1] = val
			return
		}
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: val.Line, Column: val.Column}, val)
}

// find reads the template name, from the first templates directory that has it.
func (x *expander) find(at *yaml.Node, path, name string) *checkTemplate {
	for _, dir := range x.dirs {
		for _, ext := range []string{".yaml", ".yml"} {
			file := filepath.Join(dir, name+ext)
			if filepath.Clean(file) == x.own {
				continue
			}
			if t, ok := x.cache[file]; ok {
				return t
			}
			data, err := readBounded(file)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue
			case err != nil:
				x.d.ErrAt(at, path, "%s: %v", name, err)
				return nil
			}
			t := x.parse(file, data)
			x.cache[file] = t
			return t
		}
	}
	x.d.ErrAt(at, path, "no check template %q in %s%s", name, strings.Join(x.dirs, ", "), x.hint(name))
	return nil
}

// hint is a "did you mean" among the templates the directories hold.
func (x *expander) hint(name string) string {
	var known []string
	for _, dir := range x.dirs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			base, ext := e.Name(), filepath.Ext(e.Name())
			if (ext == ".yaml" || ext == ".yml") && !e.IsDir() && filepath.Clean(filepath.Join(dir, base)) != x.own {
				known = append(known, strings.TrimSuffix(base, ext))
			}
		}
	}
	if len(known) == 0 {
		return ""
	}
	slices.Sort(known)
	known = slices.Compact(known)
	if hint := yamlpos.Hint(name, known); strings.HasPrefix(hint, " (did you mean") {
		return hint
	}
	if len(known) <= 8 {
		return " (there are " + strings.Join(known, ", ") + ")"
	}
	return ""
}

// readBounded reads a regular file of at most MaxTemplateSize bytes. Anything else is refused
// before it is opened: opening a FIFO would wait for a writer, and a device may never end.
func readBounded(file string) ([]byte, error) {
	if st, err := os.Stat(file); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxTemplateSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxTemplateSize {
		return nil, fmt.Errorf("%s is larger than %d KiB", file, MaxTemplateSize>>10)
	}
	return data, nil
}

// parse reads a template file: one check, or checks: [...]. Its problems are reported in the
// file itself.
func (x *expander) parse(file string, data []byte) *checkTemplate {
	t := &checkTemplate{file: file, args: map[string]Pos{}}
	report := func(n *yaml.Node, format string, args ...any) {
		x.d.Errs = append(x.d.Errs, &Error{File: file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
		t.err = true
	}
	if e := tabIndent(file, data); e != nil {
		x.d.Errs = append(x.d.Errs, e)
		t.err = true
		return t
	}
	doc, err := yamlpos.Document(file, "check template", data)
	if err != nil {
		var es Errors
		if errors.As(err, &es) {
			x.d.Errs = append(x.d.Errs, es...)
		} else {
			x.d.Errs = append(x.d.Errs, &Error{File: file, Line: 1, Col: 1, Msg: err.Error()})
		}
		t.err = true
		return t
	}
	if doc.Kind != yaml.MappingNode {
		report(doc, "want a check (a mapping), or checks: [a list of them], got %s", yamlpos.Describe(doc))
		return t
	}
	if list := mapValue(doc, "checks"); list != nil {
		if len(doc.Content) > 2 {
			for i := 0; i < len(doc.Content); i += 2 {
				if doc.Content[i].Value != "checks" {
					report(doc.Content[i], "a template holds one check, or checks: [...] and nothing else, not both")
					return t
				}
			}
		}
		if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
			report(list, "checks: want a list of checks, got %s", yamlpos.Describe(list))
			return t
		}
		t.checks = list.Content
	} else {
		t.checks = []*yaml.Node{doc}
	}
	for i, c := range t.checks {
		if c.Kind != yaml.MappingNode {
			report(c, "checks[%d]: want a check (a mapping), got %s", i, yamlpos.Describe(c))
			continue
		}
		if u := mapValue(c, "use"); u != nil {
			report(u, "a template cannot use another template: write the check out here")
		}
	}
	if t.err {
		return t
	}
	t.collectArgs(doc, report)
	return t
}

// collectArgs finds every ${arg} in the template's values, where each is first used.
func (t *checkTemplate) collectArgs(n *yaml.Node, report func(*yaml.Node, string, ...any)) {
	budget := maxTemplateNodes
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if budget--; budget < 0 {
			return
		}
		if n.Kind == yaml.AliasNode {
			return // the anchor it refers to is walked where it is written
		}
		if n.Kind == yaml.ScalarNode {
			refs, err := argRefs(n.Value)
			if err != nil {
				report(n, "%v", err)
				return
			}
			for _, r := range refs {
				if _, ok := t.args[r.name]; !ok {
					t.args[r.name] = Pos{Line: n.Line, Col: n.Column + r.offset(n)}
					t.order = append(t.order, r.name)
				}
			}
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	if budget < 0 {
		report(n, "the template has more than %d YAML nodes", maxTemplateNodes)
	}
}

// argRef is one ${name} at byte at of a scalar's value.
type argRef struct {
	name string
	at   int
}

// offset is the column offset of the reference within its scalar as written: exact for a
// plain or single-line quoted scalar, which is how arguments are written.
func (r argRef) offset(n *yaml.Node) int {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		return r.at + 1
	}
	return r.at
}

// argRefs finds the ${name} references in s; $${ is a literal ${.
func argRefs(s string) ([]argRef, error) {
	var refs []argRef
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			break
		}
		j += i
		if j > 0 && s[j-1] == '$' {
			i = j + 2 // $${: literal
			continue
		}
		end := strings.IndexByte(s[j:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%q: ${ without a closing } (write $${ for a literal ${)", s[j:])
		}
		name := s[j+2 : j+end]
		if !argPattern.MatchString(name) {
			return nil, fmt.Errorf("${%s}: not an argument name (letters, digits and _, not starting with a digit)", name)
		}
		refs = append(refs, argRef{name: name, at: j})
		i = j + end + 1
	}
	return refs, nil
}

// substitute fills the ${arg} references of s from values, once, and turns $${ into ${.
func substitute(s string, values map[string]string) string {
	var b strings.Builder
	for {
		j := strings.Index(s, "${")
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		if j > 0 && s[j-1] == '$' {
			b.WriteString(s[:j-1] + "${")
			s = s[j+2:]
			continue
		}
		end := strings.IndexByte(s[j:], '}')
		b.WriteString(s[:j])
		b.WriteString(values[s[j+2:j+end]])
		s = s[j+end+1:]
	}
}

// fill copies a template's node with its arguments filled in, inlining aliases; it gives up
// (false) past budget nodes.
func fill(n *yaml.Node, values map[string]string, budget *int) (*yaml.Node, bool) {
	if *budget--; *budget < 0 {
		return nil, false
	}
	if n.Kind == yaml.AliasNode {
		return fill(n.Alias, values, budget)
	}
	c := *n
	c.Anchor = ""
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		c.Value = substitute(n.Value, values)
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			// A plain scalar is typed by its text: maxIncrease: ${max} is a number once filled.
			c.Tag = ""
			c.Tag = c.ShortTag()
		}
	}
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, k := range n.Content {
			var ok bool
			if c.Content[i], ok = fill(k, values, budget); !ok {
				return nil, false
			}
		}
	}
	return &c, true
}
