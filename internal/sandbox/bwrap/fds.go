package bwrap

import (
	"os"
	"strconv"
	"sync"
	"syscall"
)

var cloexecOnce sync.Once

// closeInheritedOnExec marks every descriptor this process inherited
// without close-on-exec (a shell's stray fds, say) close-on-exec, so no
// sandbox inherits one: Go opens its own files close-on-exec and passes a
// child only what exec.Cmd names, so nothing else is lost.
func closeInheritedOnExec() {
	cloexecOnce.Do(func() {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return
		}
		for _, e := range ents {
			fd, err := strconv.Atoi(e.Name())
			if err != nil || fd <= 2 {
				continue
			}
			syscall.CloseOnExec(fd)
		}
	})
}
