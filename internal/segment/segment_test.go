package segment_test

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/perchhq/perch/internal/segment"
)

func header(name, value string) segment.Match {
	return segment.Match{Header: &segment.HeaderMatch{Name: name, Value: value}}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		seg  segment.Segment
		want []string // "field: part of the message"
	}{
		{"exact header", segment.Segment{Name: "employees", Match: header("X-Employee", "true")}, nil},
		{"regex", segment.Segment{Name: "beta", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-User", Regex: "^beta-[0-9]+$"}}}, nil},
		{"cookie", segment.Segment{Name: "eu-west", Match: segment.Match{Cookie: &segment.CookieMatch{Name: "region", Value: "eu-west-1"}}}, nil},
		{"no name", segment.Segment{Match: header("X-A", "1")}, []string{"name: missing"}},
		{"upper case", segment.Segment{Name: "Beta", Match: header("X-A", "1")}, []string{"name: \"Beta\": use 1 to 40"}},
		{"too long", segment.Segment{Name: strings.Repeat("a", 41), Match: header("X-A", "1")}, []string{"name: "}},
		{"no match", segment.Segment{Name: "a"}, []string{"match: missing"}},
		{"both", segment.Segment{Name: "a", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X", Value: "1"}, Cookie: &segment.CookieMatch{Name: "c", Value: "1"}}}, []string{"match: give header or cookie, not both"}},
		{"bad header name", segment.Segment{Name: "a", Match: header("X Employee", "1")}, []string{"match.header.name: \"X Employee\" is not a header name"}},
		{"neither value nor regex", segment.Segment{Name: "a", Match: header("X-A", "")}, []string{"match.header: give value (exact) or regex"}},
		{"value and regex", segment.Segment{Name: "a", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X", Value: "1", Regex: "1"}}}, []string{"match.header: give value or regex, not both"}},
		{"bad regex", segment.Segment{Name: "a", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X", Regex: "(a"}}}, []string{"match.header.regex: error parsing regexp"}},
		{"line break in value", segment.Segment{Name: "a", Match: header("X", "a\nb")}, []string{"match.header.value: "}},
		{"cookie with a space", segment.Segment{Name: "a", Match: segment.Match{Cookie: &segment.CookieMatch{Name: "c", Value: "a b"}}}, []string{"match.cookie.value: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.seg.Check()
			if len(got) != len(tc.want) {
				t.Fatalf("Check() = %v, want %d problems %v", got, len(tc.want), tc.want)
			}
			for i, p := range got {
				if s := p.Field + ": " + p.Msg; !strings.HasPrefix(s, tc.want[i]) {
					t.Errorf("problem %d = %q, want it to start %q", i, s, tc.want[i])
				}
			}
		})
	}
}

func TestRulesMatchWholeValues(t *testing.T) {
	rules, err := segment.Compile([]segment.Segment{
		{Name: "employees", Match: header("x-employee", "true")},
		{Name: "beta", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-User", Regex: "beta-[0-9]+"}}},
		{Name: "eu", Match: segment.Match{Cookie: &segment.CookieMatch{Name: "region", Value: "eu"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rules[0].Header != "X-Employee" || rules[2].Cookie != "region" || rules[2].Header != "" {
		t.Errorf("rules read %q/%q, %q/%q", rules[0].Header, rules[0].Cookie, rules[2].Header, rules[2].Cookie)
	}
	for _, tc := range []struct {
		rule  int
		value string
		want  bool
	}{
		{0, "true", true}, {0, "TRUE", false}, {0, "true ", false}, {0, "", false},
		{1, "beta-12", true}, {1, "xbeta-12", false}, {1, "beta-12x", false}, {1, "", false},
		{2, "eu", true}, {2, "eu-west", false},
	} {
		if got := rules[tc.rule].Matches(tc.value); got != tc.want {
			t.Errorf("rule %s matches %q = %v, want %v", rules[tc.rule].Segment, tc.value, got, tc.want)
		}
	}
}

func TestCompileRefuses(t *testing.T) {
	twice := []segment.Segment{{Name: "a", Match: header("X", "1")}, {Name: "a", Match: header("Y", "1")}}
	if _, err := segment.Compile(twice); err == nil || !strings.Contains(err.Error(), `"a" given twice`) {
		t.Errorf("a name given twice: %v", err)
	}
	if _, err := segment.Compile([]segment.Segment{{Name: "a"}}); err == nil || !strings.Contains(err.Error(), "match: missing") {
		t.Errorf("no match: %v", err)
	}
}

func TestWords(t *testing.T) {
	segs := []segment.Segment{
		{Name: "employees", Match: header("X-Employee", "true")},
		{Name: "beta", Match: segment.Match{Header: &segment.HeaderMatch{Name: "X-User", Regex: "^beta-"}}},
		{Name: "eu", Match: segment.Match{Cookie: &segment.CookieMatch{Name: "region", Value: "eu"}}},
	}
	var got []string
	for _, s := range segs {
		got = append(got, s.String())
	}
	want := []string{"employees (X-Employee: true)", "beta (X-User ~ ^beta-)", "eu (cookie region=eu)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if n := segment.Names(segs); !reflect.DeepEqual(n, []string{"employees", "beta", "eu"}) {
		t.Errorf("Names = %q", n)
	}
}

// TestCookieRegex: the regex providers match a Cookie header with finds the cookie whole,
// wherever it is in the header, as Envoy matches it (the whole value).
func TestCookieRegex(t *testing.T) {
	re := regexp.MustCompile(`^(?:` + segment.CookieMatch{Name: "region", Value: "eu.1"}.Regex() + `)$`)
	for header, want := range map[string]bool{
		"region=eu.1": true, "a=1; region=eu.1": true, "region=eu.1; b=2": true, "a=1;region=eu.1 ;b=2": true,
		"xregion=eu.1": false, "region=eu.12": false, "region=eux1": false, "a=region=eu.1": false, "": false,
	} {
		if got := re.MatchString(header); got != want {
			t.Errorf("Cookie: %q matches %v, want %v", header, got, want)
		}
	}
}
