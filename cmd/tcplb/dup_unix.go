//go:build unix

package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// keepDup makes the listener's raw duplicate (see netListener).
func (l *netListener) keepDup() error {
	l.dup = -1
	sc, ok := l.Listener.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var derr error
	if err := rc.Control(func(fd uintptr) { l.dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return err
	}
	if derr != nil {
		l.dup = -1
		return os.NewSyscallError("fcntl", derr)
	}
	return nil
}

func closeDup(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

func dupFile(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// restoreNonblock undoes what passing files to a child does to them
// (os/exec puts them in blocking mode, and the mode belongs to the socket,
// which this process still accepts on).
func restoreNonblock(files []*os.File) {
	for _, f := range files {
		if rc, err := f.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { unix.SetNonblock(int(fd), true) })
		}
	}
}
