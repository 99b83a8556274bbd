// Package peercred tells who is on the other end of a Unix socket, so a socket perch serves
// (the control socket, perch proxy's admin socket) can answer only the users it should.
package peercred

import (
	"net"
	"syscall"
)

// Supported says whether Of can tell; on Linux it can (SO_PEERCRED).
const Supported = true

// Of is the user and group id of the process on the other end of conn.
func Of(conn *net.UnixConn) (uid, gid int, ok bool) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return 0, 0, false
	}
	return int(cred.Uid), int(cred.Gid), true
}
