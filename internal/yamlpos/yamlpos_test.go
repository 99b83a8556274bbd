package yamlpos_test

import (
	"errors"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/perchhq/perch/internal/yamlpos"
)

func TestSyntax(t *testing.T) {
	var v any
	err := yaml.Unmarshal([]byte("a: 1\nb: [\n"), &v)
	if err == nil {
		t.Fatal("broken YAML parsed")
	}
	e := yamlpos.Syntax("f.yaml", err)
	if e.File != "f.yaml" || e.Line != 2 || e.Col != 1 || e.Msg != "not valid YAML: did not find expected node content" {
		t.Errorf("got %+v, want f.yaml line 2 col 1, not valid YAML: did not find expected node content", e)
	}
	if e := yamlpos.Syntax("f.yaml", errors.New("yaml: something odd")); e.Line != 1 || e.Msg != "not valid YAML: something odd" {
		t.Errorf("an error naming no line: %+v, want line 1", e)
	}
}

func TestErrors(t *testing.T) {
	es := yamlpos.Errors{{File: "a.yaml", Line: 2, Col: 3, Msg: "one"}, {File: "a.yaml", Line: 5, Col: 1, Msg: "two"}}
	if got, want := es.Error(), "a.yaml:2:3: one\na.yaml:5:1: two"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	var as yamlpos.Errors
	if !errors.As(error(es), &as) || len(as) != 2 {
		t.Errorf("errors.As did not find the Errors")
	}
}
