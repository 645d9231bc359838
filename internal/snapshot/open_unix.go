//go:build unix

package snapshot

import "syscall"

// openNonblock keeps Pack from blocking on a named pipe that replaced a
// regular file after the directory was listed; the Stat after opening
// refuses it.
const openNonblock = syscall.O_NONBLOCK
