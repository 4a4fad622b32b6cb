//go:build unix

package tcplb

import (
	"net"
	"syscall"
)

// untrustedHeader reports whether an untrusted peer's first bytes, if it
// has sent any yet, start a PROXY header. It does not wait and consumes
// nothing (MSG_PEEK); bytes sent later are looked at by the copy (sniff).
func untrustedHeader(pc *proxyConn) bool {
	tc, ok := pc.client.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	header := false
	rc.Control(func(fd uintptr) { header, _ = sniffFd(fd) })
	return header
}

// sniffFd looks at the first bytes readable on fd without consuming them:
// it reports whether they start a PROXY header, and false, wait when there
// are none yet.
func sniffFd(fd uintptr) (header, wait bool) {
	var buf [16]byte
	n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if err == syscall.EAGAIN {
		return false, true
	}
	return n > 0 && looksLikeProxy(buf[:n]), false
}

// readNow reads what the client has already sent into buf, without
// waiting: 0 if nothing has arrived yet (or at EOF, which the copy will
// see again).
func readNow(c net.Conn, buf []byte) int {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
	})
	return max(n, 0)
}
