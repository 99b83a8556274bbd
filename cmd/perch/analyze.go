package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/perchhq/perch/engine/spec"
	"github.com/perchhq/perch/metrics"
)

func (a *app) analyzeCmd() *cobra.Command {
	var input string
	c := &cobra.Command{
		Use:   "analyze --input FILE|-",
		Short: "Judge canary and baseline series given as JSON; print the verdicts as JSON",
		Long: `Judge each check of a JSON document and print the verdicts as JSON, the way a rollout
judges them at the end of a step (every check judged together, as one family).

Input:  {"checks": [CHECK, …]}, CHECK = {
          "name": "errors", "judge": "sequential" (default) | "mannwhitney" | "threshold",
          "direction": "lower_is_better" | "higher_is_better",
          "maxDeviationPercent": 10, "maxIncrease": 0.005,    (one or both; mannwhitney: optional)
          "judgeOptions": {…},                                 (Kayenta's names for mannwhitney;
                                                               or Kayenta's "analysisConfigurations")
          "canary":   [1.2, 1.3, null, …]   (one value per interval, null for none)
                   or {"events": [3, 0, …], "total": [300, 310, …]}
                   or {"buckets": [[2, 9, 10], null, …], "bounds": [0.1, 0.5, "+Inf"]}
                      (a histogram per interval: requests at most each bound, cumulative,
                      as Prometheus' le buckets; null for none; sequential judge only),
          "baseline": the same shape,
          "dryRun": true                   (optional: judged and shown, left out of the verdict) }
Output: {"verdict": "pass|fail|inconclusive", "checks": [{"name", "judge", "verdict", "reason",
          "canary", "baseline", "deviation", "pValue", "decidedAt", "classification", "stats",
          "dryRun"}]}
The verdict is that of the checks that are not dry runs: fail if any fails, pass if all pass.

Exit codes: 0 whatever the verdict, 2 bad input (every problem is listed).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if input == "" {
				return badInput(errors.New("analyze needs --input FILE (or - for standard input)"))
			}
			data, err := a.readInput(input)
			if err != nil {
				return badInput(err)
			}
			out, err := analyze(data)
			if err != nil {
				return badInput(inputProblems(inputName(input), err))
			}
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(out); err != nil {
				return runtimeError(err)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&input, "input", "i", "", "JSON input file, or - for standard input")
	return c
}

func (a *app) readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(a.stdin)
	}
	return os.ReadFile(name)
}

// inputProblems prefixes every line of err with the input's name, and counts them.
func inputProblems(name string, err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = name + ": " + l
	}
	if len(lines) > 1 {
		lines = append(lines, fmt.Sprintf("%d problems in %s", len(lines), name))
	}
	return errors.New(strings.Join(lines, "\n"))
}

func inputName(name string) string {
	if name == "-" {
		return "standard input"
	}
	return name
}

// analysis is analyze's output.
type analysis struct {
	Verdict metrics.Verdict `json:"verdict"`
	Checks  []checkVerdict  `json:"checks"`
}

// checkVerdict is one check's verdict with the statistics behind it.
type checkVerdict struct {
	Name  string `json:"name"`
	Judge string `json:"judge"`
	metrics.Result
	// DryRun checks are judged and shown but left out of the overall verdict.
	DryRun bool `json:"dryRun,omitempty"`
}

// analyzeCheck is one check of the input, read and validated.
type analyzeCheck struct {
	name     string
	judge    string
	criteria metrics.Criteria
	options  metrics.Options
	canary   metrics.Series
	baseline metrics.Series
	dryRun   bool
}

// problems collects every problem in the input, one per line.
type problems []string

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

func (p problems) Error() string { return strings.Join(p, "\n") }

// analyze judges the input document; its error lists every problem in it.
func analyze(data []byte) (analysis, error) {
	var top map[string]json.RawMessage
	if err := strictJSON(data, &top); err != nil {
		return analysis{}, describeJSONError(data, err)
	}
	var p problems
	for k := range top {
		if k != "checks" {
			p.add("input", "unknown field %q (want checks)", k)
		}
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(top["checks"], &raw); err != nil || len(raw) == 0 {
		p.add("checks", `want a list of one or more checks, as {"checks": [{"name": …}, …]}`)
		return analysis{}, p
	}
	checks := make([]analyzeCheck, len(raw))
	names := map[string]int{}
	for i, fields := range raw {
		path := fmt.Sprintf("checks[%d]", i)
		if fields == nil {
			p.add(path, "want an object")
			continue
		}
		checks[i] = readCheck(fields, path, &p)
		if n, ok := names[checks[i].name]; ok && checks[i].name != "" {
			p.add(path+".name", "%q is already the name of checks[%d]", checks[i].name, n)
		}
		names[checks[i].name] = i
	}
	if len(p) > 0 {
		return analysis{}, p
	}
	return judgeAll(checks), nil
}

// judgeAll judges every check as one family and sums up: fail if any fails, pass if all pass,
// dry runs aside.
func judgeAll(checks []analyzeCheck) analysis {
	out := analysis{Verdict: metrics.Pass}
	for _, c := range checks {
		j, _ := metrics.New(c.judge, c.options) // validated by readCheck
		c.criteria.Family = len(checks)
		r := j.Judge(metrics.Input{Criteria: c.criteria, Canary: c.canary, Baseline: c.baseline})
		out.Checks = append(out.Checks, checkVerdict{Name: c.name, Judge: c.judge, Result: r, DryRun: c.dryRun})
		switch {
		case c.dryRun:
		case r.Verdict == metrics.Fail:
			out.Verdict = metrics.Fail
		case r.Verdict == metrics.Inconclusive && out.Verdict == metrics.Pass:
			out.Verdict = metrics.Inconclusive
		}
	}
	return out
}

var checkFields = []string{"name", "judge", "direction", "maxDeviationPercent", "maxIncrease",
	"judgeOptions", "analysisConfigurations", "canary", "baseline", "dryRun"}

// readCheck reads one check's fields, adding what is wrong with them to p.
func readCheck(fields map[string]json.RawMessage, path string, p *problems) analyzeCheck {
	var c analyzeCheck
	unknownFields(fields, path, p)
	field := func(name string, into any, want string) bool {
		raw, ok := fields[name]
		if !ok || string(raw) == "null" {
			return false
		}
		if err := strictJSON(raw, into); err != nil {
			p.add(path+"."+name, "want %s, got %s", want, abbreviate(raw))
			return false
		}
		return true
	}
	if !field("name", &c.name, "text") || c.name == "" {
		p.add(path+".name", "missing: every check needs a name")
	}
	c.judge = spec.DefaultJudge
	field("judge", &c.judge, "text")
	field("dryRun", &c.dryRun, "true or false")
	field("direction", &c.criteria.Direction, "text")
	switch c.criteria.Direction {
	case metrics.LowerIsBetter, metrics.HigherIsBetter:
	case "":
		p.add(path+".direction", "missing: lower_is_better or higher_is_better")
	default:
		p.add(path+".direction", "unknown direction %q (want lower_is_better or higher_is_better)", c.criteria.Direction)
	}
	for name, into := range map[string]**float64{"maxDeviationPercent": &c.criteria.MaxDeviationPercent, "maxIncrease": &c.criteria.MaxIncrease} {
		var v float64
		if field(name, &v, "a number") {
			if v < 0 {
				p.add(path+"."+name, "want zero or more, got %v", v)
			}
			*into = &v
		}
	}
	if c.criteria.MaxDeviationPercent == nil && c.criteria.MaxIncrease == nil && c.judge != "mannwhitney" {
		p.add(path, "no tolerance: set maxDeviationPercent, maxIncrease or both")
	}
	if _, err := metrics.New(c.judge, nil); err != nil {
		p.add(path+".judge", "%v", err)
	} else {
		readOptions(fields, path, &c, field, p)
	}
	before := len(*p)
	c.canary = readSide(fields["canary"], path+".canary", p)
	c.baseline = readSide(fields["baseline"], path+".baseline", p)
	switch {
	case len(*p) != before:
	case c.canary.IsCounts() != c.baseline.IsCounts() || c.canary.IsHistogram() != c.baseline.IsHistogram():
		p.add(path, "canary and baseline must have the same shape (both arrays, both {events, total}, or both {buckets, bounds})")
	case c.canary.IsHistogram() && !slices.Equal(c.canary.Bounds, c.baseline.Bounds):
		p.add(path, "canary and baseline histograms need the same bounds (canary %v, baseline %v)", boundsText(c.canary.Bounds), boundsText(c.baseline.Bounds))
	case c.canary.IsHistogram() && c.judge != spec.DefaultJudge:
		p.add(path+".judge", "a histogram is judged by %s only (%s judges values and counts)", spec.DefaultJudge, c.judge)
	}
	return c
}

// unknownFields adds a problem for each field of a check that is not one of checkFields, in
// name order.
func unknownFields(fields map[string]json.RawMessage, path string, p *problems) {
	var unknown []string
	for k := range fields {
		if !slices.Contains(checkFields, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		p.add(path, "unknown field %q (want %s)", k, strings.Join(checkFields, ", "))
	}
}

// readOptions reads judgeOptions, or Kayenta's analysisConfigurations.canary block, and builds
// the (known) judge with them to check them.
func readOptions(fields map[string]json.RawMessage, path string, c *analyzeCheck, field func(string, any, string) bool, p *problems) {
	var kayenta struct {
		Canary metrics.Options `json:"canary"`
	}
	hasOptions := field("judgeOptions", &c.options, "an object of options")
	if field("analysisConfigurations", &kayenta, `{"canary": {…}} (Kayenta's analysis configuration)`) {
		if hasOptions {
			p.add(path, "give judgeOptions or analysisConfigurations, not both")
			return
		}
		c.options = kayenta.Canary
		path += ".analysisConfigurations.canary"
	} else {
		path += ".judgeOptions"
	}
	if _, err := metrics.New(c.judge, c.options); err != nil {
		p.add(path, "%s: %v", c.judge, err)
	}
}

// readSide reads a side's series: an array of values (null for none) or counts per interval.
func readSide(raw json.RawMessage, path string, p *problems) metrics.Series {
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0 || string(trimmed) == "null":
		p.add(path, `missing: an array of values, {"events": […], "total": […]}, or {"buckets": [[…], …], "bounds": […]}`)
	case trimmed[0] == '[':
		var v []metrics.Number
		if err := strictJSON(trimmed, &v); err != nil {
			p.add(path, "want an array of numbers (null for an interval without a value), got %s", abbreviate(raw))
			return metrics.Series{}
		}
		return metrics.Series{Values: floats(v)}
	case trimmed[0] == '{' && (bytes.Contains(trimmed, []byte(`"buckets"`)) || bytes.Contains(trimmed, []byte(`"bounds"`))):
		return readHistogram(trimmed, path, p)
	case trimmed[0] == '{':
		var counts struct {
			Events []metrics.Number `json:"events"`
			Total  []metrics.Number `json:"total"`
		}
		if err := strictJSON(trimmed, &counts); err != nil {
			p.add(path, `want {"events": [counts…], "total": [counts…]}, got %s`, abbreviate(raw))
			return metrics.Series{}
		}
		s := metrics.Series{Events: floats(counts.Events), Total: floats(counts.Total)}
		if s.Events == nil || s.Total == nil {
			p.add(path, "counts need both events and total")
		}
		if len(s.Events) != len(s.Total) {
			p.add(path, "events has %d intervals and total %d: want one of each per interval", len(s.Events), len(s.Total))
		}
		for i := range min(len(s.Events), len(s.Total)) {
			e, t := s.Events[i], s.Total[i]
			if e < 0 || t < 0 || e > t {
				p.add(fmt.Sprintf("%s[%d]", path, i), "want 0 ≤ events ≤ total, got %v events of %v", e, t)
			}
		}
		if s.Events == nil {
			s.Events = []float64{}
		}
		return s
	default:
		p.add(path, `want an array of values, {"events": […], "total": […]}, or {"buckets": [[…], …], "bounds": […]}, got %s`, abbreviate(raw))
	}
	return metrics.Series{}
}

// readHistogram reads a side's histogram per interval: cumulative counts at ascending bounds
// ending in +Inf, a row per interval (null or [] for an interval without data).
func readHistogram(raw []byte, path string, p *problems) metrics.Series {
	var h struct {
		Buckets [][]metrics.Number `json:"buckets"`
		Bounds  metrics.Bounds     `json:"bounds"`
	}
	if err := strictJSON(raw, &h); err != nil {
		p.add(path, `want {"buckets": [[counts…], …], "bounds": [numbers…, "+Inf"]}, got %s (%v)`, abbreviate(raw), strings.TrimPrefix(err.Error(), "json: "))
		return metrics.Series{}
	}
	b := h.Bounds
	switch {
	case h.Buckets == nil:
		p.add(path+".buckets", "missing: a row of counts per interval")
	case len(b) < 2 || !math.IsInf(b[len(b)-1], 1) || !slices.IsSorted(b) || len(slices.Compact(slices.Clone(b))) != len(b):
		p.add(path+".bounds", `want ascending bounds ending in "+Inf", one finite at least, got %s`, boundsText(b))
		return metrics.Series{}
	}
	s := metrics.Series{Bounds: b, Buckets: make([][]float64, len(h.Buckets))}
	for i, row := range h.Buckets {
		if len(row) == 0 {
			continue // no data for the interval
		}
		at := fmt.Sprintf("%s.buckets[%d]", path, i)
		if len(row) != len(b) {
			p.add(at, "%d counts for %d bounds: want one count per bound (null for an interval without data)", len(row), len(b))
			continue
		}
		counts := floats(row)
		for k, n := range counts {
			if !(n >= 0) || math.IsInf(n, 0) || k > 0 && n < counts[k-1] {
				p.add(at, "want counts that are 0 or more and grow with the bound (each counts the requests at most its bound), got %v", counts)
				break
			}
		}
		s.Buckets[i] = counts
	}
	return s
}

// boundsText writes bounds as the input does, +Inf included.
func boundsText(b metrics.Bounds) string {
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Sprint([]float64(b))
	}
	return string(data)
}

func floats(v []metrics.Number) []float64 {
	if v == nil {
		return nil
	}
	out := make([]float64, len(v))
	for i, n := range v {
		out[i] = float64(n)
	}
	return out
}

// strictJSON decodes one JSON value with no unknown fields and nothing after it.
func strictJSON(data []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return err
	}
	if dec.More() {
		return &json.SyntaxError{Offset: dec.InputOffset()}
	}
	return nil
}

// describeJSONError says where the document stops being JSON, by line and column.
func describeJSONError(data []byte, err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return errors.New(`empty input: want {"checks": [...]}`)
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := position(data, int64(len(data)))
		return fmt.Errorf("line %d, column %d: the document ends before its last { or [ is closed", line, col)
	case errors.As(err, &syntax):
		line, col := position(data, syntax.Offset-1) // Offset counts the offending byte
		msg := syntax.Error()
		if msg == "" {
			msg = "more after the end of the document"
		}
		return fmt.Errorf("line %d, column %d: %s", line, col, strings.TrimPrefix(msg, "json: "))
	case errors.As(err, &typeErr):
		return fmt.Errorf(`want an object {"checks": [...]}, got %s`, typeErr.Value)
	}
	return err
}

func position(data []byte, offset int64) (line, col int) {
	line, col = 1, 1
	for _, b := range data[:max(0, min(int(offset), len(data)))] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// abbreviate quotes raw JSON for a message, shortened.
func abbreviate(raw json.RawMessage) string {
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > 40 {
		s = s[:37] + "…"
	}
	return s
}
