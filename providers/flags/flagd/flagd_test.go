package flagd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/perchhq/perch/providers/flags/flagd"
)

// flagsFile is a flag definition file as flagd reads it
// (https://flagd.dev/reference/flag-definitions/, schema https://flagd.dev/schema/v0/flags.json):
// a boolean flag with no targeting, one split by the fractional operation with a bucketing
// expression (https://flagd.dev/reference/custom-operations/fractional-operation/), one with
// an if rule, a string flag, and a shared evaluator.
const flagsFile = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "new-dashboard": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "metadata": {"owner": "web-team"}
    },
    "fast-search": {
      "state": "ENABLED",
      "variants": {"yes": true, "no": false},
      "defaultVariant": "no",
      "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, ["yes", 25], ["no", 75]]}
    },
    "beta-banner": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"$ref": "isStaff"}, "on", "off"]}
    },
    "theme": {
      "state": "ENABLED",
      "variants": {"dark": "dark", "light": "light"},
      "defaultVariant": "light"
    },
    "old-checkout": {
      "state": "DISABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "on"
    }
  },
  "$evaluators": {
    "isStaff": {"ends_with": [{"var": "email"}, "@acme.example"]}
  }
}
`

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// indented is JSON text as the client writes it: members in their order, two-space indents.
func indented(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(strings.TrimSpace(s)), "", "  "); err != nil {
		t.Fatal(err)
	}
	return b.String() + "\n"
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSetAndRestoreASplit(t *testing.T) {
	path := writeFile(t, flagsFile, 0o640)
	c, _ := flagd.New(path)
	ctx := context.Background()
	p, saved, err := c.ReadFlag(ctx, "new-dashboard")
	if err != nil || p != 0 {
		t.Fatalf("ReadFlag = %d, %v; want 0%% (default variant off)", p, err)
	}
	if err := c.SetFlagPercent(ctx, "new-dashboard", 20); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(flagsFile, `"metadata": {"owner": "web-team"}
    },`, `"metadata": {"owner": "web-team"},
      "targeting": {"fractional": [["on", 20], ["off", 80]]}
    },`, 1)
	if got := read(t, path); got != indented(t, want) {
		t.Errorf("after SetFlagPercent(20):\n%s\nwant only the flag's targeting added:\n%s", got, indented(t, want))
	}
	if p, _, err := c.ReadFlag(ctx, "new-dashboard"); err != nil || p != 20 {
		t.Errorf("read back %d, %v", p, err)
	}
	if err := c.SetFlagPercent(ctx, "new-dashboard", 50); err != nil {
		t.Fatal(err)
	}
	if err := c.RestoreFlag(ctx, "new-dashboard", saved); err != nil {
		t.Fatal(err)
	}
	if got := read(t, path); got != indented(t, flagsFile) {
		t.Errorf("restored:\n%s\nwant\n%s", got, indented(t, flagsFile))
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o640 {
		t.Errorf("mode after rewrites %v, %v; want 0640 kept", info.Mode(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("%d files beside the flags file, want no temporary file left", len(entries)-1)
	}
}

func TestASplitKeepsItsBucketing(t *testing.T) {
	path := writeFile(t, flagsFile, 0o644)
	c, _ := flagd.New(path)
	ctx := context.Background()
	p, saved, err := c.ReadFlag(ctx, "fast-search")
	if err != nil || p != 25 {
		t.Fatalf("ReadFlag = %d, %v; want 25", p, err)
	}
	if err := c.SetFlagPercent(ctx, "fast-search", 60); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(flagsFile, `["yes", 25], ["no", 75]`, `["yes", 60], ["no", 40]`, 1)
	if got := read(t, path); got != indented(t, want) {
		t.Errorf("after SetFlagPercent(60):\n%s\nwant\n%s", got, indented(t, want))
	}
	if err := c.RestoreFlag(ctx, "fast-search", saved); err != nil {
		t.Fatal(err)
	}
	if got := read(t, path); got != indented(t, flagsFile) {
		t.Errorf("restored:\n%s\nwant\n%s", got, indented(t, flagsFile))
	}
}

func TestRefusals(t *testing.T) {
	path := writeFile(t, flagsFile, 0o644)
	c, _ := flagd.New(path)
	ctx := context.Background()
	for flag, want := range map[string]string{
		"beta-banner":  "has targeting rules that are not a fractional split",
		"theme":        "flag theme is not a boolean flag",
		"old-checkout": "flag old-checkout is DISABLED",
		"missing":      `has no flag "missing"`,
	} {
		if err := c.SetFlagPercent(ctx, flag, 10); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SetFlagPercent(%s): %v, want %q", flag, err, want)
		}
	}
	if got := read(t, path); got != flagsFile {
		t.Errorf("refusals rewrote the file")
	}
	if p, _, err := c.ReadFlag(ctx, "beta-banner"); err != nil || p != -1 {
		t.Errorf("an if rule reads %d, %v; want -1", p, err)
	}
	yaml := writeFile(t, "flags:\n  new-dashboard: {state: ENABLED}\n", 0o644)
	c, _ = flagd.New(yaml)
	if _, _, err := c.ReadFlag(ctx, "new-dashboard"); err == nil || !strings.Contains(err.Error(), "is not a JSON flag definition file") {
		t.Errorf("a YAML file: %v", err)
	}
}

// TestRewritesAreAtomic: a reader never sees half a file, and a file reached through a
// symlink (as a mounted ConfigMap is) is replaced where it lives, the link kept.
func TestRewritesAreAtomic(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "data", "flags.json")
	os.MkdirAll(filepath.Dir(real), 0o755)
	os.WriteFile(real, []byte(flagsFile), 0o644)
	link := filepath.Join(dir, "flags.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	c, _ := flagd.New(link)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var torn []string
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(link)
			if err != nil || !json.Valid(b) {
				torn = append(torn, string(b))
			}
		}
	})
	for i := range 200 {
		if err := c.SetFlagPercent(context.Background(), "new-dashboard", i%101); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if len(torn) > 0 {
		t.Errorf("a reader saw %d unreadable files, as %q", len(torn), torn[0])
	}
	if target, err := os.Readlink(link); err != nil || target != real {
		t.Errorf("the symlink became %q, %v", target, err)
	}
	if p, _, _ := c.ReadFlag(context.Background(), "new-dashboard"); p != 199%101 {
		t.Errorf("last write reads %d%%", p)
	}
}
