package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perchhq/perch/metrics"
)

func runPerch(t testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, registry: defaultRegistry(),
		getenv: func(string) string { return "" }}
	code = a.main(context.Background(), args)
	return code, out.String(), errb.String()
}

func TestAnalyzeFiles(t *testing.T) {
	tests := []struct {
		file     string
		verdict  metrics.Verdict
		checks   map[string]metrics.Verdict
		contains []string
	}{
		{"three-judges.json", metrics.Fail,
			map[string]metrics.Verdict{"errors": metrics.Fail, "p95": metrics.Pass, "p99": metrics.Pass},
			[]string{`"decidedAt": 4`, `"classification": "Pass"`, `"alpha": 0.0033333333333333335`, `"pValue": `}},
		{"kayenta.json", metrics.Fail, map[string]metrics.Verdict{"latency": metrics.Fail},
			[]string{`"classification": "High"`, `High (critical): shift`}},
		{"pass.json", metrics.Pass, map[string]metrics.Verdict{"errors": metrics.Pass}, []string{"within tolerance"}},
		{"histogram.json", metrics.Fail, map[string]metrics.Verdict{"latency": metrics.Fail, "latency-same": metrics.Pass},
			[]string{"the share slower than 0.2", `"bounds": 4`, `"bound": 0.2`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			code, stdout, stderr := runPerch(t, "", "analyze", "--input", filepath.Join("testdata", "analyze", tt.file))
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			var got analysis
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, stdout)
			}
			if got.Verdict != tt.verdict || len(got.Checks) != len(tt.checks) {
				t.Fatalf("verdict %s with %d checks, want %s with %d:\n%s", got.Verdict, len(got.Checks), tt.verdict, len(tt.checks), stdout)
			}
			for _, c := range got.Checks {
				if c.Verdict != tt.checks[c.Name] || c.Reason == "" || c.Judge == "" {
					t.Errorf("check %s (%s): %s %q, want %s", c.Name, c.Judge, c.Verdict, c.Reason, tt.checks[c.Name])
				}
			}
			for _, s := range tt.contains {
				if !strings.Contains(stdout, s) {
					t.Errorf("output lacks %s:\n%s", s, stdout)
				}
			}
		})
	}
}

func TestAnalyzeReadsStandardInput(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "analyze", "pass.json"))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runPerch(t, string(in), "analyze", "-i", "-")
	if code != exitOK || !strings.Contains(stdout, `"verdict": "pass"`) {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	check := func(fields string) string {
		return `{"checks": [{"name": "a", "direction": "lower_is_better", "maxIncrease": 1, "canary": [1, 2], "baseline": [1, 2]` + fields + `}]}`
	}
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"empty", "", []string{`empty input`}},
		{"unclosed", "{\n  \"checks\": [", []string{"line 2, column 14: the document ends before"}},
		{"not JSON", `{"checks": [}`, []string{"line 1, column 13: invalid character '}'"}},
		{"trailing", `{"checks": []} {}`, []string{"more after the end of the document"}},
		{"an array", `[1]`, []string{`want an object {"checks": [...]}, got array`}},
		{"no checks", `{"checks": []}`, []string{"checks: want a list of one or more checks"}},
		{"unknown top field", `{"checks": [], "check": 1}`, []string{`unknown field "check" (want checks)`}},
		{"everything missing", `{"checks": [{}]}`, []string{"checks[0].name: missing", "checks[0].direction: missing", "checks[0]: no tolerance",
			"checks[0].canary: missing", "checks[0].baseline: missing", "5 problems in standard input"}},
		{"typo in a field", check(`, "maxDeviation": 5`), []string{`checks[0]: unknown field "maxDeviation"`}},
		{"bad direction", strings.Replace(check(""), "lower_is_better", "down", 1), []string{`unknown direction "down"`}},
		{"negative tolerance", strings.Replace(check(""), `"maxIncrease": 1`, `"maxIncrease": -1`, 1), []string{"checks[0].maxIncrease: want zero or more, got -1"}},
		{"tolerance as text", strings.Replace(check(""), `"maxIncrease": 1`, `"maxIncrease": "1"`, 1), []string{`checks[0].maxIncrease: want a number, got "1"`}},
		{"unknown judge", check(`, "judge": "bayes"`), []string{`checks[0].judge: unknown judge "bayes"`}},
		{"bad option", check(`, "judgeOptions": {"alpha": 2}`), []string{"checks[0].judgeOptions: sequential: option alpha: want a number in (0, 0.5), got 2"}},
		{"both option blocks", check(`, "judge": "mannwhitney", "judgeOptions": {}, "analysisConfigurations": {"canary": {}}`), []string{"give judgeOptions or analysisConfigurations, not both"}},
		{"bad Kayenta option", check(`, "judge": "mannwhitney", "analysisConfigurations": {"canary": {"nanStrategy": "drop"}}`),
			[]string{`checks[0].analysisConfigurations.canary: mannwhitney: option nanStrategy: want one of remove, replace, got "drop"`}},
		{"text in values", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": [1, "2"]`, 1), []string{"checks[0].canary: want an array of numbers"}},
		{"shapes differ", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"events": [1], "total": [2]}`, 1), []string{"must have the same shape"}},
		{"counts uneven", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"events": [1], "total": [2, 3]}`, 1), []string{"events has 1 intervals and total 2"}},
		{"counts missing total", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"events": [1]}`, 1), []string{"counts need both events and total"}},
		{"more events than requests", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"events": [5], "total": [2]}`, 1), []string{"checks[0].canary[0]: want 0 ≤ events ≤ total, got 5 events of 2"}},
		{"side is a number", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": 3`, 1), []string{"checks[0].canary: want an array of values"}},
		{"histogram without +Inf", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"buckets": [[1, 2]], "bounds": [0.1, 0.5]}`, 1),
			[]string{`checks[0].canary.bounds: want ascending bounds ending in "+Inf", one finite at least, got [0.1,0.5]`}},
		{"histogram bounds twice", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"buckets": [[1, 2, 3]], "bounds": [0.1, 0.1, "+Inf"]}`, 1),
			[]string{`checks[0].canary.bounds: want ascending bounds`}},
		{"histogram bound as text", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"buckets": [[1, 2]], "bounds": ["fast", "+Inf"]}`, 1),
			[]string{`checks[0].canary: want {"buckets": [[counts…], …], "bounds": [numbers…, "+Inf"]}`, `bucket bound "fast" is not a number`}},
		{"histogram row too short", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"buckets": [[1, 2, 3], [1, 2]], "bounds": [0.1, 0.5, "+Inf"]}`, 1),
			[]string{`checks[0].canary.buckets[1]: 2 counts for 3 bounds`}},
		{"histogram counts shrink", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"buckets": [[1, 5, 3]], "bounds": [0.1, 0.5, "+Inf"]}`, 1),
			[]string{`checks[0].canary.buckets[0]: want counts that are 0 or more and grow with the bound`}},
		{"histogram with counts", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"buckets": [[1, 2]], "bounds": [0.1, "+Inf"], "events": [1]}`, 1),
			[]string{`checks[0].canary: want {"buckets"`, `unknown field "events"`}},
		{"histogram against values", strings.Replace(check(""), `"canary": [1, 2]`, `"canary": {"buckets": [[1, 2]], "bounds": [0.1, "+Inf"]}`, 1),
			[]string{"must have the same shape (both arrays, both {events, total}, or both {buckets, bounds})"}},
		{"histograms at other bounds", strings.NewReplacer(`"canary": [1, 2]`, `"canary": {"buckets": [[1, 2]], "bounds": [0.1, "+Inf"]}`,
			`"baseline": [1, 2]`, `"baseline": {"buckets": [[1, 2]], "bounds": [0.2, "+Inf"]}`).Replace(check("")),
			[]string{`checks[0]: canary and baseline histograms need the same bounds (canary [0.1,"+Inf"], baseline [0.2,"+Inf"])`}},
		{"histograms under threshold", strings.NewReplacer(`"canary": [1, 2]`, `"canary": {"buckets": [[1, 2]], "bounds": [0.1, "+Inf"]}`,
			`"baseline": [1, 2]`, `"baseline": {"buckets": [[1, 2]], "bounds": [0.1, "+Inf"]}`).Replace(check(`, "judge": "threshold"`)),
			[]string{`checks[0].judge: a histogram is judged by sequential only (threshold judges values and counts)`}},
		{"same name twice", `{"checks": [{"name": "a", "direction": "lower_is_better", "maxIncrease": 1, "canary": [1], "baseline": [1]},
			{"name": "a", "direction": "lower_is_better", "maxIncrease": 1, "canary": [1], "baseline": [1]}]}`, []string{`checks[1].name: "a" is already the name of checks[0]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPerch(t, tt.input, "analyze", "--input", "-")
			if code != exitBadInput || stdout != "" {
				t.Fatalf("exit %d, stdout %q; want exit 2 and no output", code, stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestAnalyzeUsage(t *testing.T) {
	for _, args := range [][]string{{"analyze"}, {"analyze", "--input", "testdata/analyze/missing.json"}, {"analyze", "extra", "--input", "-"}} {
		if code, _, stderr := runPerch(t, "", args...); code != exitBadInput || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 with a message", args, code, stderr)
		}
	}
}

// FuzzAnalyze feeds arbitrary documents to analyze: it must never panic, must answer exit 0
// with JSON holding one verdict per check, or exit 2 with a message, and must be
// deterministic. Seeds: testdata/analyze and testdata/fuzz/FuzzAnalyze.
func FuzzAnalyze(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "analyze", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := analyze(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		b, jerr := json.Marshal(out)
		if jerr != nil {
			t.Fatalf("output does not encode: %v", jerr)
		}
		var back analysis
		if err := json.Unmarshal(b, &back); err != nil || len(back.Checks) == 0 {
			t.Fatalf("output does not read back: %v\n%s", err, b)
		}
		switch out.Verdict {
		case metrics.Pass, metrics.Fail, metrics.Inconclusive:
		default:
			t.Fatalf("verdict %q", out.Verdict)
		}
		again, _ := analyze(data)
		if b2, _ := json.Marshal(again); !bytes.Equal(b, b2) {
			t.Fatal("not deterministic")
		}
	})
}
