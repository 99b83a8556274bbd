package spec_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/perchhq/perch/engine/spec"
)

func TestDependsOn(t *testing.T) {
	text := strings.Replace(goodSpec, "name: web\n", "name: web\ndependsOn: [web-eu, web-us]\n", 1)
	r, err := spec.Parse("web.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.DependsOn, []string{"web-eu", "web-us"}) {
		t.Errorf("DependsOn = %q", r.DependsOn)
	}
	if got := r.Where("dependsOn[1]"); got != "web.yaml:2:21" {
		t.Errorf("Where(dependsOn[1]) = %s", got)
	}
}

func TestDependsOnErrors(t *testing.T) {
	tests := []struct {
		name, deps string
		line, col  int
		msg        string
	}{
		{"itself", "[web-eu, web]", 2, 21, `dependsOn[1]: "web" is this rollout`},
		{"twice", "[web-eu, web-eu]", 2, 21, `dependsOn[1]: "web-eu" is named twice`},
		{"not a name", "[\"web eu\"]", 2, 13, `dependsOn[0]: "web eu" is not a rollout name`},
		{"empty", "[\"\"]", 2, 13, "dependsOn[0]: missing"},
		{"not a list", "web-eu", 2, 12, "dependsOn: want a list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(goodSpec, "name: web\n", "name: web\ndependsOn: "+tc.deps+"\n", 1)
			_, err := spec.Parse("web.yaml", []byte(text))
			var errs spec.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want spec.Errors", err)
			}
			for _, e := range errs {
				if e.Line == tc.line && e.Col == tc.col && strings.Contains(e.Msg, tc.msg) {
					return
				}
			}
			t.Errorf("want web.yaml:%d:%d: %s\ngot:\n%v", tc.line, tc.col, tc.msg, err)
		})
	}
}
