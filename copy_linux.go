package tcplb

import (
	"errors"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// copy moves bytes from d.src to d.dst until d.src's EOF (nil) or an error.
// Between two TCP sockets it splices through a kernel pipe, so bytes never
// enter user space.
func (d *direction) copy() error {
	src, ok1 := d.src.(*net.TCPConn)
	dst, ok2 := d.dst.(*net.TCPConn)
	if !ok1 || !ok2 {
		return d.copyBuffered()
	}
	return d.splice(dst, src)
}

const spliceFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK

var errNoPipe = errors.New("no pipe")

// splice is the Linux fast path. Unlike io.Copy's splice, which takes a
// pipe before waiting for data and holds it for the whole connection, it
// takes a pipe only when the socket is readable and gives it back as soon
// as the pipe is drained and the socket would block: an idle connection
// holds its two sockets and nothing else.
func (d *direction) splice(dst, src *net.TCPConn) error {
	srcRaw, err := src.SyscallConn()
	if err != nil {
		return err
	}
	dstRaw, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	s := &splicer{d: d}
	defer s.release()
	fill, drain := s.fill, s.drain // one allocation each, not one per chunk
	for {
		if err := srcRaw.Read(fill); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return errParked
			}
			return err
		}
		switch {
		case s.err == errNoPipe:
			// Out of descriptors: move this chunk through user space.
			s.err = nil
			if done, err := d.copyChunk(); done || err != nil {
				return err
			}
			continue
		case s.err == errUntrustedHeader:
			return s.err
		case s.err != nil:
			return os.NewSyscallError("splice", s.err)
		case s.p.data == 0:
			return nil // EOF
		}
		if err := dstRaw.Write(drain); err != nil {
			d.writeFailed = true
			return err
		}
		if s.err != nil {
			d.writeFailed = true
			return os.NewSyscallError("splice", s.err)
		}
	}
}

// splicer is the state of one direction's splice loop. Its fill and drain
// methods run inside syscall.RawConn's Read and Write, which call them again
// each time the socket becomes ready while they return false.
type splicer struct {
	d   *direction
	p   *pipe
	err error
}

// fill moves what the socket has into the pipe, taking a pipe first. When
// the socket has nothing, it gives the empty pipe back and asks to wait.
func (s *splicer) fill(fd uintptr) bool {
	if s.d.sniff {
		header, wait := sniffFd(fd)
		if wait {
			return false
		}
		s.d.sniff = false
		if header {
			s.err = errUntrustedHeader
			return true
		}
	}
	if s.p == nil {
		if s.p = getPipe(); s.p == nil {
			s.err = errNoPipe
			return true
		}
	}
	for {
		n, err := unix.Splice(int(fd), nil, s.p.w, nil, s.p.size, spliceFlags)
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			putPipe(s.p)
			s.p = nil
			return false
		case nil:
			s.p.data += int(n)
		}
		s.err = err
		return true
	}
}

// drain writes the pipe's contents to the socket, waiting while it is full.
func (s *splicer) drain(fd uintptr) bool {
	for s.p.data > 0 {
		n, err := unix.Splice(s.p.r, nil, int(fd), nil, s.p.data, spliceFlags)
		if n > 0 {
			s.p.data -= int(n)
			s.d.moved(int(n))
		}
		switch {
		case err == unix.EAGAIN:
			return false
		case err == unix.EINTR:
		case err != nil:
			s.err = err
			return true
		case n == 0:
			s.err = unix.EPIPE
			return true
		}
	}
	return true
}

func (s *splicer) release() {
	if s.p != nil {
		putPipe(s.p)
		s.p = nil
	}
}
