package proxyd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/perchhq/perch/internal/peercred"
	"github.com/perchhq/perch/providers/proxy/admin"
)

// listenAdmin opens the admin API's listener: a Unix socket only the proxy's user may use, or
// TCP on a loopback address.
func listenAdmin(addr admin.Address) (net.Listener, error) {
	if addr.IsUnix() {
		return listenUnix(addr.Path)
	}
	if !addr.IsLoopback() {
		return nil, fmt.Errorf("admin: an HTTP admin API listens on loopback only, got %s", addr.HostPort)
	}
	ln, err := net.Listen("tcp", addr.HostPort)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("admin: %s resolved to %s, which is not a loopback address", addr.HostPort, ln.Addr())
	}
	return ln, nil
}

// listenUnix creates the socket at path, mode 0600, in a directory no one else may write: one
// perch creates is 0700; an existing one writable by group or others, or owned by another user
// than the proxy's or root, is refused, since whoever may write there could put their own socket
// in its place. A socket left by a proxy that died is replaced; one that answers is refused.
func listenUnix(path string) (net.Listener, error) {
	if err := secureDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("admin: %s exists and is not a socket; remove it or choose another admin path", path)
		}
		d := net.Dialer{Timeout: time.Second}
		if c, err := d.DialContext(context.Background(), "unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin: another process answers on %s; stop it or choose another admin path", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	// Until the chmod the socket has the umask's mode; the peer check refuses anyone else who
	// connects in between.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin: %w", err)
	}
	return ln, nil
}

// secureDir makes dir (0700) if it is missing, and refuses it if others may write to it.
func secureDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("admin socket directory: %w", err)
		}
		return os.Chmod(dir, 0o700) // whatever the umask
	}
	if err != nil {
		return fmt.Errorf("admin socket directory: %w", err)
	}
	switch owner, known := fileOwner(fi); {
	case !fi.IsDir():
		return fmt.Errorf("admin socket directory %s is not a directory", dir)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("admin socket directory %s is writable by group or others (mode %04o): anyone who may write there could replace the socket; use a directory only the proxy's user may write (chmod go-w %s), or a new one perch creates 0700", dir, fi.Mode().Perm(), dir)
	case known && owner != os.Getuid() && owner != 0:
		return fmt.Errorf("admin socket directory %s belongs to user %d, not to the proxy's user (%d) or root", dir, owner, os.Getuid())
	}
	return nil
}

// peer is who is on the other end of an admin socket connection.
type peer struct {
	uid   int
	known bool
}

type peerKey struct{}

// withPeer notes, for each admin connection over a Unix socket, who connected
// (http.Server.ConnContext).
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	uid, _, known := peercred.Of(uc)
	return context.WithValue(ctx, peerKey{}, peer{uid: uid, known: known})
}

// peerAllowed says whether a request may use the admin API as far as the socket's peer goes:
// over a Unix socket only the proxy's own user and root may (where the system says who
// connected); over TCP the token decides.
func peerAllowed(ctx context.Context, self int) (peer, bool) {
	p, ok := ctx.Value(peerKey{}).(peer)
	switch {
	case !ok:
		return p, true // TCP
	case !peercred.Supported:
		return p, true
	case !p.known:
		return p, false
	}
	return p, p.uid == self || p.uid == 0
}
