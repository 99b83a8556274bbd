package spec_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine/spec"
)

// rolloutHead is a rollout file up to its checks; tests append the checks and steps.
const rolloutHead = `name: web
templates: [./checks]
traffic:
  proxy: {listen: "127.0.0.1:8080", stable: "http://127.0.0.1:9001", canary: "http://127.0.0.1:9002"}
metrics:
  prometheus: {address: "http://127.0.0.1:9090"}
checks:
`

const rolloutTail = `steps:
  - setWeight: 5
    analyze: 5m
`

// goldenSignals is a template with two checks and two arguments; service is first used on
// line 2, column 11.
const goldenSignals = `checks:
  - name: ${service}-latency
    canary: lat{service="${service}",version="canary"}
    baseline: lat{service="${service}",version="stable"}
    direction: lower_is_better
    maxDeviationPercent: ${tolerance}
  - name: ${service}-errors
    direction: lower_is_better
    maxIncrease: 0.01
    critical: true
    events: {canary: 'errs{service="${service}",version="canary"}', baseline: 'errs{service="${service}",version="stable"}'}
    total: {canary: 'reqs{service="${service}",version="canary"}', baseline: 'reqs{service="${service}",version="stable"}'}
`

// templated writes a rollout file with the checks given and the template files given (by path
// under the rollout's directory), and loads it.
func templated(t *testing.T, checks string, files map[string]string) (*spec.Rollout, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "checks"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(file, []byte(rolloutHead+checks+rolloutTail), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir) // messages name files as the rollout's path does: relative here
	return spec.Load("web.yaml")
}

// wantErrs asserts err is exactly the problems want, each "FILE:LINE:COL: message" in full.
func wantErrs(t *testing.T, err error, want ...string) {
	t.Helper()
	var es spec.Errors
	if !errors.As(err, &es) {
		t.Fatalf("got %v, want problems %q", err, want)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTemplateExpands(t *testing.T) {
	r, err := templated(t, `  - use: golden-signals
    with: {service: checkout, tolerance: 12.5}
  - name: own
    canary: own{version="canary"}
    baseline: own{version="stable"}
    direction: lower_is_better
    maxDeviationPercent: 10
  - use: golden-signals
    with: {service: "cart", tolerance: "20"}
    dryRun: true
`, map[string]string{"checks/golden-signals.yaml": goldenSignals})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "checkout-latency checkout-errors own cart-latency cart-errors" {
		t.Fatalf("checks %s", got)
	}
	c := r.Checks[0]
	if c.Canary.Expr != `lat{service="checkout",version="canary"}` || *c.MaxDeviationPercent != 12.5 || c.DryRun {
		t.Errorf("first check %+v: want the arguments filled in, a number where the argument was one", c)
	}
	if r.Checks[1].Events.Baseline.Expr != `errs{service="checkout",version="stable"}` || !r.Checks[1].Critical {
		t.Errorf("second check %+v", r.Checks[1])
	}
	if r.Checks[2].DryRun || !r.Checks[3].DryRun || !r.Checks[4].DryRun || *r.Checks[3].MaxDeviationPercent != 20 {
		t.Errorf("dryRun on a use marks each of its checks, and only those: %+v", r.Checks)
	}
	if r.CheckTemplate(0) != "golden-signals" || r.CheckTemplate(2) != "" || r.CheckTemplate(4) != "golden-signals" {
		t.Errorf("CheckTemplate: %q %q %q", r.CheckTemplate(0), r.CheckTemplate(2), r.CheckTemplate(4))
	}
	if w := r.Where("checks[3].maxDeviationPercent"); w != filepath.Join("checks", "golden-signals.yaml")+":6:26" {
		t.Errorf("Where of a template's field = %s, want the template's line", w)
	}
}

// TestTemplateLookup: the templates directories in order, then the rollout's own directory.
func TestTemplateLookup(t *testing.T) {
	one := `name: ${n}
canary: a
baseline: b
direction: lower_is_better
maxIncrease: 1
`
	r, err := templated(t, "  - use: one\n    with: {n: x}\n  - use: beside\n    with: {n: y}\n", map[string]string{
		"checks/one.yml": one,
		"one.yaml":       strings.Replace(one, "${n}", "wrong-${n}", 1), // shadowed by checks/
		"beside.yaml":    one,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Checks[0].Name != "x" || r.Checks[1].Name != "y" {
		t.Errorf("checks %q %q: want checks/one.yml first, then beside.yaml", r.Checks[0].Name, r.Checks[1].Name)
	}
}

func TestTemplateMissingArgument(t *testing.T) {
	_, err := templated(t, "  - use: golden-signals\n    with: {tolerance: 5}\n", map[string]string{"checks/golden-signals.yaml": goldenSignals})
	wantErrs(t, err, "web.yaml:8:10: checks[0].use: golden-signals: missing argument service (used at checks/golden-signals.yaml:2:11)")
}

func TestTemplateExtraArgument(t *testing.T) {
	_, err := templated(t, "  - use: golden-signals\n    with: {service: a, tolerance: 5, servce: b}\n", map[string]string{"checks/golden-signals.yaml": goldenSignals})
	wantErrs(t, err, `web.yaml:9:38: checks[0].with.servce: golden-signals never uses argument servce (did you mean "service"?)`)
}

func TestTemplateUnknown(t *testing.T) {
	_, err := templated(t, "  - use: golden-signal\n    with: {service: a}\n", map[string]string{"checks/golden-signals.yaml": goldenSignals})
	wantErrs(t, err, `web.yaml:8:10: checks[0].use: no check template "golden-signal" in checks, . (did you mean "golden-signals"?)`)
}

func TestTemplateNotACheck(t *testing.T) {
	bad := "name: ${n}\ncanary: a\nbaseline: b\ndirection: sideways\nmaxIncrease: 1\nwat: 3\n"
	_, err := templated(t, "  - use: bad\n    with: {n: x}\n", map[string]string{"checks/bad.yaml": bad})
	wantErrs(t, err,
		`checks/bad.yaml:4:12: checks[0].direction: unknown direction "sideways" (want lower_is_better or higher_is_better) (from use bad at web.yaml:8:10)`,
		`checks/bad.yaml:6:1: checks[0]: unknown field "wat" (want one of name, canary, baseline, events, total, histogram, builtin, direction, maxDeviationPercent, maxIncrease, critical, judge, judgeOptions, unit, dryRun) (from use bad at web.yaml:8:10)`)
}

func TestTemplateNotYAML(t *testing.T) {
	_, err := templated(t, "  - use: bad\n", map[string]string{"checks/bad.yaml": "name: [x\n"})
	var es spec.Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].File != filepath.Join("checks", "bad.yaml") {
		t.Fatalf("got %v, want one problem in checks/bad.yaml", err)
	}
}

func TestTemplateCannotUse(t *testing.T) {
	_, err := templated(t, "  - use: outer\n", map[string]string{
		"checks/outer.yaml": "checks:\n  - use: inner\n",
		"checks/inner.yaml": "name: x\n",
	})
	wantErrs(t, err, "checks/outer.yaml:2:10: a template cannot use another template: write the check out here")
}

func TestTemplateNameClash(t *testing.T) {
	_, err := templated(t, "  - use: golden-signals\n    with: {service: a, tolerance: 5}\n  - use: golden-signals\n    with: {service: a, tolerance: 6}\n",
		map[string]string{"checks/golden-signals.yaml": goldenSignals})
	wantErrs(t, err,
		`checks/golden-signals.yaml:2:11: checks[2].name: "a-latency" is already the name of checks[0] (from use golden-signals at web.yaml:10:10)`,
		`checks/golden-signals.yaml:7:11: checks[3].name: "a-errors" is already the name of checks[1] (from use golden-signals at web.yaml:10:10)`)
}

func TestTemplateOtherFields(t *testing.T) {
	_, err := templated(t, "  - use: golden-signals\n    with: {service: a, tolerance: 5}\n    critcal: true\n",
		map[string]string{"checks/golden-signals.yaml": goldenSignals})
	wantErrs(t, err, `web.yaml:10:5: checks[0]: unknown field "critcal" in a check that uses a template (want one of use, with, dryRun); a template's checks are changed in the template, or through its arguments`)
}

func TestTemplateMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("web.yaml", []byte(rolloutHead+"  - use: x\n"+rolloutTail), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := spec.Load("web.yaml")
	if err == nil || !strings.Contains(err.Error(), "web.yaml:2:13: templates[0]: checks is not a directory of check templates") {
		t.Errorf("got %v", err)
	}
}

// TestTemplateArgsAndEnv: every ${name} in a template is an argument; an argument's value is
// kept as written, so a ${NAME} passed in stays for the environment expansion of fields that
// have one, and $${NAME} in a template is a literal ${NAME}.
func TestTemplateArgsAndEnv(t *testing.T) {
	tpl := "name: ${n}\ncanary: 'q{token=\"$${TOKEN}\"}'\nbaseline: '${b}'\ndirection: lower_is_better\nmaxIncrease: 1\n"
	r, err := templated(t, "  - use: env\n    with: {n: x, b: '${SECRET}'}\n", map[string]string{"checks/env.yaml": tpl})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Checks[0]; c.Canary.Expr != `q{token="${TOKEN}"}` || c.Baseline.Expr != "${SECRET}" {
		t.Errorf("canary %q baseline %q: want ${TOKEN} and ${SECRET} kept as written", c.Canary.Expr, c.Baseline.Expr)
	}
	// Without the $$ escape, ${TOKEN} is an argument the rollout must give.
	_, err = templated(t, "  - use: env\n", map[string]string{"checks/env.yaml": strings.Replace(tpl, "$${", "${", 1)})
	if err == nil || !strings.Contains(err.Error(), "env: missing argument TOKEN (used at checks/env.yaml:2:19)") {
		t.Errorf("got %v", err)
	}
}

// TestTemplateInjection: an argument is filled into the parsed template, so YAML in it stays
// text and cannot add fields.
func TestTemplateInjection(t *testing.T) {
	tpl := "name: ${n}\ncanary: a\nbaseline: b\ndirection: lower_is_better\nmaxIncrease: 1\n"
	r, err := templated(t, "  - use: inj\n    with: {n: \"x\\ncritical: true\"}\n", map[string]string{"checks/inj.yaml": tpl})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Checks[0]; c.Critical || c.Name != "x\ncritical: true" {
		t.Errorf("check %+v: the argument changed the template's structure", c)
	}
}

// TestTemplateBounds: a template file larger than MaxTemplateSize is refused unread, and one
// whose aliases stand for a huge tree is refused.
func TestTemplateBounds(t *testing.T) {
	big := "name: x\n# " + strings.Repeat("x", spec.MaxTemplateSize) + "\n"
	_, err := templated(t, "  - use: big\n", map[string]string{"checks/big.yaml": big})
	if err == nil || !strings.Contains(err.Error(), "is larger than 256 KiB") {
		t.Errorf("big template: %v", err)
	}
	bomb := "name: x\ncanary: a\nbaseline: b\ndirection: lower_is_better\nmaxIncrease: 1\njudgeOptions:\n  a: &a ['${v}', '${v}', '${v}', '${v}', '${v}', '${v}', '${v}', '${v}', '${v}']\n"
	prev := "a"
	for _, l := range []string{"b", "c", "d", "e", "f", "g"} {
		bomb += "  " + l + ": &" + l + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+", ", 9), ", ") + "]\n"
		prev = l
	}
	_, err = templated(t, "  - use: bomb\n    with: {v: 1}\n", map[string]string{"checks/bomb.yaml": bomb})
	if err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Errorf("alias bomb: %v", err)
	}
}

// TestTemplateExample: the example under testdata/templates loads, its template expanded.
func TestTemplateExample(t *testing.T) {
	r, err := spec.Load("testdata/templates/checkout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Checks) != 3 || r.Checks[0].Name != "checkout-p99-latency" || r.Checks[1].Name != "checkout-errors" || !r.Checks[2].DryRun {
		t.Errorf("checks %+v", r.Checks)
	}
}
