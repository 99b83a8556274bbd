// Package themes holds perch's colour themes: the built-in ones, embedded as YAML files, and a
// loader for user theme files in the same format, validated with FILE:LINE:COL errors.
//
// A theme names colours for what they mean on screen (canary, pass, muted text…), never for
// where they are used; the TUI turns a theme into styles for one renderer.
package themes

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Color is a terminal colour: "#RGB" or "#RRGGBB", an ANSI colour number "0".."255", or ""
// for the terminal's own default. The terminal's colour profile downsamples it.
type Color string

// Theme is a set of meaning-named colours.
type Theme struct {
	Name         string
	Text         Color // ordinary text
	Muted        Color // secondary text: units, times, pending steps
	Border       Color // rules and box edges
	Accent       Color // focus, the current step, operator actions
	Canary       Color // the canary's values and sparklines
	Baseline     Color // the baseline's values and sparklines
	Pass         Color // pass verdicts, passed steps, promoted
	Fail         Color // fail verdicts, rollbacks
	Inconclusive Color // inconclusive verdicts and holds
	Warning      Color // pauses and a failing traffic provider
}

// colorFields lists the colours of a theme file in the order they are documented, with a
// pointer into t for each.
func (t *Theme) colorFields() []struct {
	key string
	c   *Color
} {
	return []struct {
		key string
		c   *Color
	}{
		{"text", &t.Text}, {"muted", &t.Muted}, {"border", &t.Border}, {"accent", &t.Accent},
		{"canary", &t.Canary}, {"baseline", &t.Baseline}, {"pass", &t.Pass}, {"fail", &t.Fail},
		{"inconclusive", &t.Inconclusive}, {"warning", &t.Warning},
	}
}

//go:embed builtin/*.yaml
var builtinFS embed.FS

// builtinNames is the order `t` cycles through; dark is the default.
var builtinNames = []string{"dark", "light", "high-contrast", "colorblind", "mono"}

// Default is the name of the theme used when none is chosen.
const Default = "dark"

// Names lists the built-in themes, the default first.
func Names() []string { return append([]string(nil), builtinNames...) }

// Builtin returns every built-in theme, in the order of Names.
func Builtin() []Theme {
	out := make([]Theme, 0, len(builtinNames))
	for _, name := range builtinNames {
		t, err := builtin(name)
		if err != nil {
			panic(err) // the embedded files are tested; a broken one is a build mistake
		}
		out = append(out, t)
	}
	return out
}

// Named returns the built-in theme called name.
func Named(name string) (Theme, bool) {
	for _, n := range builtinNames {
		if n == name {
			t, err := builtin(n)
			return t, err == nil
		}
	}
	return Theme{}, false
}

func builtin(name string) (Theme, error) {
	path := "builtin/" + name + ".yaml"
	data, err := builtinFS.ReadFile(path)
	if err != nil {
		return Theme{}, err
	}
	return parse(path, data)
}

// Load returns the built-in theme called nameOrFile, or reads a theme file: a value ending in
// .yaml or .yml, or containing a path separator, is a file.
func Load(nameOrFile string) (Theme, error) {
	if t, ok := Named(nameOrFile); ok {
		return t, nil
	}
	ext := strings.ToLower(filepath.Ext(nameOrFile))
	if ext != ".yaml" && ext != ".yml" && !strings.ContainsRune(nameOrFile, os.PathSeparator) {
		return Theme{}, fmt.Errorf("unknown theme %q (want one of %s, or a theme file NAME.yaml)", nameOrFile, strings.Join(builtinNames, ", "))
	}
	data, err := os.ReadFile(nameOrFile)
	if err != nil {
		return Theme{}, fmt.Errorf("read theme: %w", err)
	}
	return parse(nameOrFile, data)
}
