//go:build unix

package spec_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/perchhq/perch/engine/spec"
)

// TestTemplateNotARegularFile: a template that is a FIFO (or a device) is refused without
// being opened, which would wait for a writer for ever.
func TestTemplateNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("checks", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join("checks", "fifo.yaml"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join("checks", "zero.yaml")); err != nil {
		t.Fatal(err)
	}
	text := rolloutHead + "  - use: fifo\n  - use: zero\n" + rolloutTail
	if err := os.WriteFile("web.yaml", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := spec.Load("web.yaml")
	for _, want := range []string{"checks/fifo.yaml is not a regular file", "checks/zero.yaml is not a regular file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}
