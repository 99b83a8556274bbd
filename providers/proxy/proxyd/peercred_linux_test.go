package proxyd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/perchhq/perch/internal/peercred"
)

// TestAdminSocketRefusesOtherUsers: even on a socket anyone may open, only the proxy's user
// (and root) are answered.
func TestAdminSocketRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 || !peercred.Supported {
		t.Skip("needs root (to connect as another user) and SO_PEERCRED")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("needs curl")
	}
	w := newWorld(t)
	os.Chmod(w.dir, 0o755)
	d := w.start(w.file())
	os.Chmod(filepath.Dir(w.socket()), 0o755)
	os.Chmod(w.socket(), 0o666)
	cmd := exec.Command(curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", w.socket(), "http://x/v1/weight")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil || string(out) != "403" {
		t.Errorf("another user: %s, %v; want 403", out, err)
	}
	if n, err := w.client(d, "").Weight(context.Background()); err != nil || n != 0 {
		t.Errorf("the proxy's own user: %d, %v", n, err)
	}
}
