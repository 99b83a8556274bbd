package spec

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/perchhq/perch/internal/yamlpos"
)

// MaxAnalysisName is the longest name an analysis of a judges file may have: it is part of the
// URLs other controllers call.
const MaxAnalysisName = 128

// Judges is the file perch judge serve reads: one metrics source, the analysis settings that
// apply to judging (interval and judge), and named analyses, each a list of checks written as
// a rollout file writes them. Other controllers (Argo Rollouts, Flagger) ask for an analysis's
// verdict by its name. Load one with LoadJudges or ParseJudges.
type Judges struct {
	Metrics  Metrics                  `yaml:"metrics" json:"metrics"`
	Analysis Analysis                 `yaml:"analysis" json:"analysis"`
	Analyses map[string]JudgeAnalysis `yaml:"analyses" json:"analyses"`

	file string
	pos  map[string]yamlpos.Pos
}

// JudgeAnalysis is one named analysis of a judges file: the checks judged together.
type JudgeAnalysis struct {
	Checks []Check `yaml:"checks" json:"checks"`
}

// Names lists the analyses, sorted.
func (j *Judges) Names() []string {
	names := make([]string, 0, len(j.Analyses))
	for n := range j.Analyses {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// File is the file the judges were read from.
func (j *Judges) File() string { return j.file }

// Source is the file's metrics source and analysis settings as a rollout carries them, for
// the code that connects to a rollout's source; it has no steps and no checks.
func (j *Judges) Source() *Rollout {
	return &Rollout{Name: "judge", Metrics: j.Metrics, Analysis: j.Analysis, file: j.file, pos: j.pos}
}

// LoadJudges reads and validates the judges file at path, with the floors Load holds rollout
// files to (MinInterval). Problems in the file come back as Errors.
func LoadJudges(path string) (*Judges, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseJudges(path, data, true)
}

// ParseJudges reads and validates a judges file's bytes; file names it in messages. Like
// Parse, it applies no floors.
func ParseJudges(file string, data []byte) (*Judges, error) {
	return parseJudges(file, data, false)
}

// judgeUnused are the analysis settings of a rollout file that decide what a rollout does with
// verdicts; under another controller, the controller decides (Argo Rollouts' failureLimit and
// inconclusiveLimit, Flagger's threshold), so a judges file may not set them.
var judgeUnused = []string{"stabilization", "inconclusive", "failureLimit", "maxOutage"}

func parseJudges(file string, data []byte, floors bool) (*Judges, error) {
	if e := tabIndent(file, data); e != nil {
		return nil, Errors{e}
	}
	doc, err := yamlpos.Document(file, "judges file", data)
	if err != nil {
		return nil, indentation(file, data, err)
	}
	d := newDecoder(file)
	d.floors = floors
	rollout := d.Special
	d.Special = func(n *yaml.Node, v reflect.Value, path string) bool {
		if m, ok := v.Addr().Interface().(*map[string]JudgeAnalysis); ok {
			d.analyses(n, m, path)
			return true
		}
		return rollout(n, v, path)
	}
	j := &Judges{file: file, pos: d.Pos}
	d.Decode(doc, reflect.ValueOf(j).Elem(), "")
	d.validateJudges(j)
	if err := d.Err(); err != nil {
		return nil, err
	}
	return j, nil
}

// analyses decodes the analyses mapping: names to analyses.
func (d *decoder) analyses(n *yaml.Node, m *map[string]JudgeAnalysis, path string) {
	if n.Kind != yaml.MappingNode {
		d.ErrAt(n, path, "want a mapping of analysis names to analyses, got %s", yamlpos.Describe(n))
		return
	}
	*m = map[string]JudgeAnalysis{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		p := yamlpos.JoinPath(path, key.Value)
		switch _, dup := (*m)[key.Value]; {
		case dup:
			d.ErrAt(key, p, "set twice")
			continue
		case len(key.Value) > MaxAnalysisName || !namePattern.MatchString(key.Value):
			d.ErrAt(key, p, "%q: name an analysis with up to %d letters, digits, '.', '_' and '-' (it is part of the URL)", key.Value, MaxAnalysisName)
			continue
		}
		var a JudgeAnalysis
		d.Decode(val, reflect.ValueOf(&a).Elem(), p)
		(*m)[key.Value] = a
	}
}

func (d *decoder) validateJudges(j *Judges) {
	for _, f := range judgeUnused {
		if d.Written("analysis." + f) {
			d.Fail("analysis."+f, "perch judge serve only judges: what a verdict leads to is the calling controller's setting")
		}
	}
	if j.Metrics.Builtin != nil {
		d.Fail("metrics.builtin", "the builtin source is the observations of a proxy a rollout runs; perch judge serve needs a source of its own (prometheus, cloudwatch, …)")
	}
	r := j.Source()
	d.validateMetrics(r)
	d.validateAnalysis(r)
	j.Analysis = r.Analysis // with its defaults
	if len(j.Analyses) == 0 && !d.Bad["analyses"] {
		d.Fail("analyses", "missing: name at least one analysis, as analyses: {NAME: {checks: […]}}")
	}
	for _, name := range j.Names() {
		a := j.Analyses[name]
		prefix := "analyses." + name
		if len(a.Checks) == 0 {
			d.Fail(prefix+".checks", "missing: an analysis needs at least one check")
			continue
		}
		// The checks are validated as a rollout's are, by a decoder that sees them at the top
		// (checks[0].name), then each problem is said at its path in this file.
		sub := newDecoder(d.File)
		sub.floors = d.floors
		rebase := func(from map[string]yamlpos.Pos) {
			for p, at := range from {
				if rest, ok := strings.CutPrefix(p, prefix+"."); ok {
					sub.Pos[rest] = at
				}
			}
		}
		rebase(d.Pos)
		for p, bad := range d.Bad {
			if rest, ok := strings.CutPrefix(p, prefix+"."); ok {
				sub.Bad[rest] = bad
			}
		}
		sub.validateChecks(&Rollout{Metrics: j.Metrics, Analysis: j.Analysis, Checks: a.Checks})
		for _, e := range sub.Errs {
			e.Msg = strings.ReplaceAll(e.Msg, "checks[", prefix+".checks[")
			d.Errs = append(d.Errs, e)
		}
		j.Analyses[name] = a // with what validation filled in (a builtin check's queries)
	}
}

// Where is the position in the file of the field at path ("analyses.web.checks[0]"), or the
// file's name.
func (j *Judges) Where(path string) string {
	p, ok := j.pos[path]
	if !ok {
		return j.file
	}
	return fmt.Sprintf("%s:%d:%d", j.file, p.Line, p.Col)
}
