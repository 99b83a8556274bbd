//go:build unix

package control

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedByMe reports whether perch's user owns the file.
func ownedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
