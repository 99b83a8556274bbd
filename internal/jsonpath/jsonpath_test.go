package jsonpath_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/perchhq/perch/internal/jsonpath"
)

func TestSelect(t *testing.T) {
	const doc = `{"value": 0.5, "data": {"result": [{"values": [[1, "2"], [3, "4"]]}, {"values": []}]},
		"series": [[10, 1.5], [20, 2.5]], "odd name": {"x": true}, "m": {"b": 2, "a": 1}}`
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want string // the selection as JSON
		wild bool
	}{
		{path: "$", want: ""}, // checked separately: the whole document
		{path: "$.value", want: `[0.5]`},
		{path: "$['value']", want: `[0.5]`},
		{path: `$["odd name"].x`, want: `[true]`},
		{path: "$.data.result[0].values", want: `[[[1,"2"],[3,"4"]]]`},
		{path: "$.data.result[-1].values", want: `[[]]`},
		{path: "$.data.result[*].values[0]", want: `[[1,"2"]]`, wild: true},
		{path: "$.series[*]", want: `[[10,1.5],[20,2.5]]`, wild: true},
		{path: "$.m.*", want: `[1,2]`, wild: true},
		{path: "$.missing", want: `null`},
		{path: "$.value.deeper", want: `null`},
		{path: "$.series[5]", want: `null`},
	} {
		p, err := jsonpath.Parse(tt.path)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.path, err)
		}
		if p.Wild() != tt.wild {
			t.Errorf("%s: Wild() = %v, want %v", tt.path, p.Wild(), tt.wild)
		}
		got := p.Select(v)
		if tt.path == "$" {
			if len(got) != 1 || !reflect.DeepEqual(got[0], v) {
				t.Errorf("$ selects %v, want the document", got)
			}
			continue
		}
		b, _ := json.Marshal(got)
		if string(b) != tt.want {
			t.Errorf("%s selects %s, want %s", tt.path, b, tt.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for path, want := range map[string]string{
		"value":                        "start at the root",
		"$..value":                     "recursive descent",
		"$.":                           "member name is missing",
		"$[abc]":                       "want an index",
		"$['abc":                       "unterminated",
		"$[0":                          "missing ]",
		"$x":                           "unexpected",
		"$" + strings.Repeat(".a", 65): "more than 64 steps",
	} {
		if _, err := jsonpath.Parse(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v, want an error saying %q", path, err, want)
		}
	}
}
