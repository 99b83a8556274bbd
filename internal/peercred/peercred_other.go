//go:build !linux

// Package peercred tells who is on the other end of a Unix socket, so a socket perch serves
// (the control socket, perch proxy's admin socket) can answer only the users it should.
package peercred

import "net"

// Supported says whether Of can tell; off Linux it cannot, and a socket's mode and directory
// alone limit who connects.
const Supported = false

// Of is unknown off Linux.
func Of(*net.UnixConn) (uid, gid int, ok bool) { return 0, 0, false }
