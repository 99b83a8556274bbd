package themes_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perchhq/perch/themes"
)

func TestBuiltinThemesAreComplete(t *testing.T) {
	all := themes.Builtin()
	if len(all) != len(themes.Names()) {
		t.Fatalf("Builtin() gave %d themes for %d names", len(all), len(themes.Names()))
	}
	if all[0].Name != themes.Default {
		t.Errorf("first theme is %q, want the default %q", all[0].Name, themes.Default)
	}
	for i, th := range all {
		if th.Name != themes.Names()[i] {
			t.Errorf("theme %d is named %q, want %q", i, th.Name, themes.Names()[i])
		}
		if th.Name == "mono" {
			if th.Pass != "" || th.Fail != "" || th.Canary != "" {
				t.Errorf("mono has colours: %+v", th)
			}
			continue
		}
		// Every coloured theme must tell pass from fail and canary from baseline by colour.
		if th.Pass == th.Fail || th.Canary == th.Baseline || th.Pass == "" || th.Fail == "" {
			t.Errorf("%s: pass/fail or canary/baseline not distinct: %+v", th.Name, th)
		}
	}
}

func TestColorblindUsesOkabeIto(t *testing.T) {
	okabeIto := map[themes.Color]bool{"#e69f00": true, "#56b4e9": true, "#009e73": true, "#f0e442": true,
		"#0072b2": true, "#d55e00": true, "#cc79a7": true, "#000000": true}
	th, ok := themes.Named("colorblind")
	if !ok {
		t.Fatal("no colorblind theme")
	}
	for name, c := range map[string]themes.Color{"canary": th.Canary, "baseline": th.Baseline, "pass": th.Pass,
		"fail": th.Fail, "inconclusive": th.Inconclusive, "accent": th.Accent} {
		if !okabeIto[c] {
			t.Errorf("colorblind %s is %s, not an Okabe-Ito colour", name, c)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := "colors:\n  text: '#fff'\n  muted: 8\n  border: 240\n  accent: '#00afff'\n  canary: '#ff8700'\n" +
		"  baseline: '#0087ff'\n  pass: 2\n  fail: 1\n  inconclusive: 3\n  warning: default\n"
	tests := []struct {
		name    string
		arg     string // a built-in name, or a file body when file is set
		file    string
		want    func(themes.Theme) bool
		wantErr []string
	}{
		{name: "built-in by name", arg: "light", want: func(th themes.Theme) bool { return th.Name == "light" }},
		{name: "full file, name from file name", file: "solar.yaml", arg: full,
			want: func(th themes.Theme) bool {
				return th.Name == "solar" && th.Text == "#fff" && th.Muted == "8" && th.Warning == ""
			}},
		{name: "extends overrides a few", file: "mine.yml", arg: "name: mine\nextends: colorblind\ncolors:\n  fail: '#FF0000'\n",
			want: func(th themes.Theme) bool {
				cb, _ := themes.Named("colorblind")
				return th.Name == "mine" && th.Fail == "#ff0000" && th.Pass == cb.Pass
			}},
		{name: "colours before extends still override", file: "order.yaml", arg: "colors:\n  pass: 4\nextends: dark\n",
			want: func(th themes.Theme) bool { return th.Pass == "4" }},
		{name: "unknown built-in", arg: "solarized", wantErr: []string{`unknown theme "solarized"`, "dark, light"}},
		{name: "missing file", arg: filepath.Join(dir, "nope.yaml"), wantErr: []string{"read theme:", "nope.yaml"}},
		{name: "missing colours listed", file: "part.yaml", arg: "colors:\n  text: '#fff'\n",
			wantErr: []string{"part.yaml:1:1: colors: missing muted, border, accent, canary, baseline, pass, fail, inconclusive, warning", "extends: dark"}},
		{name: "bad hex at its line", file: "hex.yaml", arg: "extends: dark\ncolors:\n  pass: '#12345'\n",
			wantErr: []string{`hex.yaml:3:9: colors.pass: "#12345": want #RGB, #RRGGBB`}},
		{name: "ANSI out of range", file: "ansi.yaml", arg: "extends: dark\ncolors:\n  fail: 300\n",
			wantErr: []string{"ansi.yaml:3:9: colors.fail: ANSI colour 300 is outside 0..255"}},
		{name: "typo suggests", file: "typo.yaml", arg: "extends: dark\ncolors:\n  canray: 1\n",
			wantErr: []string{`typo.yaml:3:3: colors: unknown colour "canray" (did you mean "canary"?)`}},
		{name: "unknown top-level field", file: "top.yaml", arg: "extend: dark\n",
			wantErr: []string{`top.yaml:1:1: unknown field "extend" (did you mean "extends"?)`}},
		{name: "unknown base", file: "base.yaml", arg: "extends: neon\n",
			wantErr: []string{`base.yaml:1:10: extends: unknown built-in theme "neon"`}},
		{name: "every problem reported", file: "many.yaml", arg: "extends: dark\ncolors:\n  pass: red\n  fail: -1\n",
			wantErr: []string{"many.yaml:3:9: colors.pass", "many.yaml:4:9: colors.fail"}},
		{name: "not YAML", file: "bad.yaml", arg: "colors: [\n", wantErr: []string{"bad.yaml:", "not valid YAML"}},
		{name: "empty", file: "empty.yaml", arg: "", wantErr: []string{"empty.yaml:1:1: empty theme file"}},
		{name: "not a mapping", file: "list.yaml", arg: "- dark\n", wantErr: []string{"list.yaml:1:1: want a mapping"}},
		{name: "colors not a mapping", file: "flat.yaml", arg: "extends: dark\ncolors: red\n",
			wantErr: []string{"flat.yaml:2:9: colors: want a mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arg := tt.arg
			if tt.file != "" {
				arg = write(tt.file, tt.arg)
			}
			th, err := themes.Load(arg)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Load(%q) = %+v, want an error", arg, th)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !tt.want(th) {
				t.Errorf("Load(%q) = %+v", arg, th)
			}
		})
	}
}

func TestParseColor(t *testing.T) {
	tests := []struct {
		in   string
		want themes.Color
		bad  bool
	}{
		{in: "#ABC", want: "#abc"}, {in: "#a0b1c2", want: "#a0b1c2"}, {in: "0", want: "0"}, {in: "255", want: "255"},
		{in: "default", want: ""}, {in: "", want: ""}, {in: "256", bad: true}, {in: "#ab", bad: true}, {in: "blue", bad: true},
	}
	for _, tt := range tests {
		got, err := themes.ParseColor(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseColor(%q) = %q, %v; want %q, bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}
