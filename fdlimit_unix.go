//go:build unix

package tcplb

import "syscall"

// readFdLimit sets the descriptor gate from RLIMIT_NOFILE's soft limit
// (which Go raises to the hard limit at start-up on Linux).
func readFdLimit() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil || r.Cur > 1<<40 {
		fds.setLimit(0)
		return
	}
	fds.setLimit(int64(r.Cur))
}
