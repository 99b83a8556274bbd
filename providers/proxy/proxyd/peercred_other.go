//go:build !linux

package proxyd

import (
	"io/fs"
	"net"
)

// havePeerCred says whether the admin socket learns who connected; off Linux it does not, and
// the socket's mode (0600) alone limits it to the proxy's user.
const havePeerCred = false

// peerUID is unknown off Linux.
func peerUID(*net.UnixConn) (int, bool) { return 0, false }

// fileOwner is unknown off Linux.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }
