package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/perchhq/perch/internal/yamlpos"
	"github.com/perchhq/perch/metrics"
)

// Hints for the mistakes people make writing a rollout file, said where the mistake is.

// tabIndent finds the first line indented with a tab, which YAML does not allow: the parser's
// own message ("found a tab character that violates indentation") names neither the fix nor,
// always, the line.
func tabIndent(file string, data []byte) *Error {
	for i, line := range strings.Split(string(data), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if col := strings.IndexByte(indent, '\t'); col >= 0 && strings.TrimSpace(line) != "" {
			return &Error{File: file, Line: i + 1, Col: col + 1, Msg: "indented with a tab: YAML indents with spaces only"}
		}
	}
	return nil
}

// indentation is err, a file's parse error, pointed at the misindented line where there is
// one (see misindented) rather than at the parent the parser names.
func indentation(file string, data []byte, err error) error {
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || !strings.HasPrefix(es[0].Msg, "not valid YAML") {
		return err
	}
	if bad := misindented(file, data, es[0].Line); bad != nil {
		return Errors{bad}
	}
	return err
}

// misindented finds, in the block the parser's error at line names (it names the parent), the
// line whose indentation is wrong: one that steps back to a depth no line above it in the
// block has, or that stands at a list's depth without starting an item. It says where that
// line's siblings are.
func misindented(file string, data []byte, line int) *Error {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return nil
	}
	indentOf := func(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
	blank := func(s string) bool { t := strings.TrimSpace(s); return t == "" || strings.HasPrefix(t, "#") }
	parent := indentOf(lines[line-1])
	depths := map[int]bool{} // depths of keys seen in the block
	items := map[int]bool{}  // depths of "- " items seen in the block
	prev := -1
	for i := line; i < len(lines); i++ {
		l := lines[i]
		if blank(l) {
			continue
		}
		in := indentOf(l)
		if in <= parent {
			break
		}
		text := strings.TrimSpace(l)
		switch {
		case prev >= 0 && in < prev && !depths[in] && !items[in]:
			return &Error{File: file, Line: i + 1, Col: in + 1, Msg: fmt.Sprintf(
				"indented %d spaces, as nothing above it is: the lines it follows are indented %s (the parser noticed at line %d)",
				in, depthWords(depths, items, in), line)}
		case items[in] && !strings.HasPrefix(text, "- ") && text != "-":
			return &Error{File: file, Line: i + 1, Col: in + 1, Msg: fmt.Sprintf(
				"indented %d spaces, as the list's items are, but it is not one: indent it under the item above, or start it with \"- \" (the parser noticed at line %d)",
				in, line)}
		}
		if strings.HasPrefix(text, "- ") {
			items[in] = true
			depths[in+2+len(text[2:])-len(strings.TrimLeft(text[2:], " "))] = true // the item's first key
		} else {
			depths[in] = true
		}
		prev = in
	}
	return nil
}

// depthWords names the depths a block's lines have, nearest to in first: "4 or 2 spaces".
func depthWords(depths, items map[int]bool, in int) string {
	var all []int
	for d := range depths {
		all = append(all, d)
	}
	for d := range items {
		if !depths[d] {
			all = append(all, d)
		}
	}
	best := -1
	for _, d := range all {
		if best < 0 || abs(d-in) < abs(best-in) {
			best = d
		}
	}
	return fmt.Sprintf("%d spaces", best)
}

func abs(v int) int { return max(v, -v) }

// scalarHint is a hint for a scalar written where a mapping belongs: a pause given its
// duration directly.
func scalarHint(n *yaml.Node, path string) string {
	if strings.HasSuffix(path, ".pause") && n.Kind == yaml.ScalarNode && !yamlpos.IsNull(n) {
		return fmt.Sprintf("; write pause: {duration: %s}, or pause: {} to wait for an operator", n.Value)
	}
	return ""
}

// numberHint is a hint for a number written with a percent sign: maxIncrease is a fraction
// (0.5% is 0.005), maxDeviationPercent a percentage already (15% is 15).
func numberHint(n *yaml.Node, path string) string {
	v, ok := strings.CutSuffix(strings.TrimSpace(n.Value), "%")
	if !ok || n.Kind != yaml.ScalarNode {
		return ""
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return ""
	}
	switch {
	case strings.HasSuffix(path, ".maxIncrease"):
		return fmt.Sprintf("; maxIncrease is in the metric's unit, and a rate's is a fraction: write %s for %s", metrics.FormatValue(f/100), n.Value)
	case strings.HasSuffix(path, ".maxDeviationPercent"):
		return fmt.Sprintf("; it is a percentage already: write %s", metrics.FormatValue(f))
	}
	return ""
}

// Warnings are things in a valid rollout file that are likely not what was meant, each at
// FILE:LINE:COL: a step that sends traffic to the canary (a weight, a segment, a flag)
// without analyze, and no pause after it to watch it, passes as soon as it is set, unwatched;
// a Prometheus histogram query without increase(), whose values the judge would take for
// request counts (rate() answers requests per second).
func (s *Rollout) Warnings() []string {
	if len(s.Checks) == 0 {
		return nil
	}
	var out []string
	for i, c := range s.Checks {
		if c.Histogram == nil || s.Metrics.Prometheus == nil {
			continue
		}
		for _, side := range []struct {
			name string
			q    metrics.Query
		}{{"canary", c.Histogram.Canary}, {"baseline", c.Histogram.Baseline}} {
			if p := fmt.Sprintf("checks[%d].histogram.%s", i, side.name); !strings.Contains(side.q.Expr, "increase(") {
				out = append(out, fmt.Sprintf("%s: warning: %s has no increase(…): a histogram check judges requests counted per interval, "+
					"e.g. sum by (le) (increase(http_request_duration_seconds_bucket{version=\"canary\"}[%s]))", s.Where(p), p, s.Analysis.Interval))
			}
		}
	}
	for i, st := range s.Steps {
		if st.Pause != nil || st.Analyze > 0 || i+1 < len(s.Steps) && s.Steps[i+1].Pause != nil {
			continue
		}
		p := fmt.Sprintf("steps[%d]", i)
		what := "sets " + st.String()
		if st.SetWeight != nil {
			what = fmt.Sprintf("sets %d%%", *st.SetWeight)
		}
		out = append(out, fmt.Sprintf("%s: warning: %s %s without analyze: the checks do not watch it, and the rollout moves on as soon as it is set (add analyze: 5m, say)",
			s.Where(p), p, what))
	}
	return out
}
