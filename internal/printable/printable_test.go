package printable_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/perchhq/perch/internal/printable"
	"github.com/perchhq/perch/internal/printable/printabletest"
)

func TestLine(t *testing.T) {
	got := printable.Line(printabletest.Hostile(""))
	if r, ok := printabletest.Find(got, false); ok {
		t.Fatalf("Line left %U in %q", r, got)
	}
	for _, want := range []string{`\x1b]0;pwned\x07`, `\x1b]52;c;cm0gLXJmIH4=\x07`, `\x1b[2J`, `\u009b2J`, `\r✔ promoted\n`, `\u202eevil\u202c`, `\x00`, `\x7f`, "\uFFFD"} {
		if !strings.Contains(got, want) {
			t.Errorf("Line does not show %s visibly: %q", want, got)
		}
	}
	if got := printable.Line("a\tb"); got != "a b" {
		t.Errorf("Line(a TAB b) = %q, want a space", got)
	}
	if again := printable.Line(got); again != got {
		t.Errorf("Line is not idempotent: %q then %q", got, again)
	}
	for _, s := range []string{"", "plain ascii", "errors failed: canary 3.1% vs baseline 0.2% (critical) ✘ — 日本"} {
		if got := printable.Line(s); got != s {
			t.Errorf("Line changed printable text %q to %q", s, got)
		}
	}
}

func TestText(t *testing.T) {
	got := printable.Text("line one\n\tline two\r\x1b[2J" + printabletest.Hostile(""))
	if r, ok := printabletest.Find(got, true); ok {
		t.Fatalf("Text left %U in %q", r, got)
	}
	if !strings.HasPrefix(got, "line one\n\tline two\\r\\x1b[2J") {
		t.Errorf("Text does not keep line feeds and tabs and show the rest: %q", got)
	}
}

func TestJSON(t *testing.T) {
	in := map[string]string{"reason": printabletest.Hostile(""), "name": "alice"}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	raw = append(raw, '\n')
	got := printable.JSON(raw)
	if r, ok := printabletest.Find(string(got[:len(got)-1]), false); ok {
		t.Fatalf("JSON left %U raw in %s", r, got)
	}
	var back, want map[string]string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("not JSON any more: %v\n%s", err, got)
	}
	json.Unmarshal(raw, &want)
	if back["reason"] != want["reason"] || back["name"] != "alice" {
		t.Errorf("the JSON value changed:\n%q\n%q", back["reason"], want["reason"])
	}
	clean := []byte(`{"a":"b ✔"}` + "\n")
	if got := printable.JSON(clean); string(got) != string(clean) {
		t.Errorf("JSON changed %q to %q", clean, got)
	}
}

// BenchmarkLineClean is the common case: text with nothing to change.
func BenchmarkLineClean(b *testing.B) {
	s := "error_rate failed: canary 3.1% vs baseline 0.2%, beyond the tolerance of +0.5pp (critical) ✘"
	for b.Loop() {
		printable.Line(s)
	}
}
