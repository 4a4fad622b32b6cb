//go:build linux

package evloop

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The socket calls of the data path, made directly so that none of them
// allocates: x/sys/unix's Accept4 and Connect build a Sockaddr interface
// value on every call.

// accept4 takes one connection from the listening socket lfd, non-blocking
// and close-on-exec, and returns it with the client's address.
func accept4(lfd int, rsa *unix.RawSockaddrAny) (int, netip.AddrPort, error) {
	l := uint32(unix.SizeofSockaddrAny)
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(rsa)),
			uintptr(unsafe.Pointer(&l)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, netip.AddrPort{}, e
		}
		return int(r), rawToAddrPort(rsa), nil
	}
}

// rawToAddrPort converts an IPv4 or IPv6 socket address; other families
// give the zero AddrPort.
func rawToAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(itoa(int(sa.Scope_id)))
		}
		return netip.AddrPortFrom(a, ntohs(sa.Port))
	}
	return netip.AddrPort{}
}

func ntohs(p uint16) uint16 { return p>>8 | p<<8 }

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// dialSocket makes a non-blocking socket for ap and starts connecting it
// (TCP_NODELAY comes later: see beforeSend). It returns the socket, or -1 and the error of the
// call that failed; the socket is closed on failure.
func dialSocket(ap netip.AddrPort) (int, error) {
	var rsa unix.RawSockaddrAny
	var size uintptr
	family := unix.AF_INET6
	a := ap.Addr()
	if a.Is4() || a.Is4In6() {
		family = unix.AF_INET
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		sa.Family = unix.AF_INET
		sa.Port = ntohs(ap.Port())
		sa.Addr = a.Unmap().As4()
		size = unix.SizeofSockaddrInet4
	} else {
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		sa.Family = unix.AF_INET6
		sa.Port = ntohs(ap.Port())
		sa.Addr = a.As16()
		if z := a.Zone(); z != "" {
			sa.Scope_id = zoneIndex(z)
		}
		size = unix.SizeofSockaddrInet6
	}
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return -1, opError("socket", e)
	}
	fd := int(r)
	for {
		_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), size)
		switch e {
		case 0, unix.EINPROGRESS:
			return fd, nil
		case unix.EINTR:
			continue
		}
		sysClose(fd)
		return -1, opError("connect", e)
	}
}

// zoneIndex returns the interface index of an IPv6 zone ("eth0" or "2").
func zoneIndex(z string) uint32 {
	n := uint32(0)
	for i := 0; i < len(z); i++ {
		if z[i] < '0' || z[i] > '9' {
			if ifi, err := interfaceIndex(z); err == nil {
				return ifi
			}
			return 0
		}
		n = n*10 + uint32(z[i]-'0')
	}
	return n
}

// setLinger0 makes close send a reset.
func setLinger0(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}

// OpError is an error of one system call on the data path: the call's
// name, as strace shows it, and its errno.
type OpError struct {
	Op  string
	Err unix.Errno
}

func (e *OpError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }

func opError(op string, err error) error {
	if e, ok := err.(unix.Errno); ok {
		return &OpError{Op: op, Err: e}
	}
	return err
}

func interfaceIndex(name string) (uint32, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return uint32(ifi.Index), nil
}

// The calls a loop makes on a non-blocking socket or pipe, as raw system
// calls: none can block, so the runtime need not be told that the thread
// is in a system call (a Syscall costs an entersyscall and exitsyscall,
// about 2% of the proxy's CPU per short connection in the profile of the
// connrate benchmark). epoll_wait, which blocks, stays a Syscall.

// result is a call's count and error: 0 and the errno on failure.
func result(r, _ uintptr, e unix.Errno) (int, error) {
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// sysRecv and sysSend read and write a socket with recvfrom and sendto
// rather than read and write: the socket calls skip the file layer that
// read and write pass through (vfs_read/vfs_write, fdget_pos, the iter
// wrappers: about 1.5% of the proxy's CPU per 64-byte request in a perf
// profile of lbbench's rr scenario). MSG_NOSIGNAL: a send to a reset peer
// returns EPIPE without raising SIGPIPE.
func sysRecv(fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	return result(unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(b)), 0, 0, 0))
}

func sysSend(fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	return result(unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(b)), unix.MSG_NOSIGNAL, 0, 0))
}

// sysSplice moves up to n bytes from in to out, without blocking (both
// ends are non-blocking, and SPLICE_F_NONBLOCK covers the pipe).
func sysSplice(in, out int, n int) (int, error) {
	return result(unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK))
}

// sysClose closes a socket or pipe. A socket's close does not block: none
// has SO_LINGER with a time (setLinger0 makes close send a reset at once).
func sysClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

func sysShutdownWrite(fd int) {
	unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0)
}

func setNodelay(fd int) {
	one := int32(1)
	unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4, 0)
}

func epollAdd(epfd, fd int, ev *unix.EpollEvent) error {
	_, err := result(unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), unix.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0))
	return err
}
