//go:build unix

package dgram

import (
	"os"
	"sync"
	"syscall"
)

// replyBufs holds the buffers replies are read into. A session takes one
// only while a reply is ready to read, so that a waiting session holds no
// 64 KiB buffer: 10,000 idle sessions would otherwise hold 640 MiB.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, MaxDatagram+1); return &b }}

// readReply reads the backend's next reply, waiting for it in Go's poller
// (so the read deadline applies) without holding a buffer meanwhile. The
// caller gives the buffer back with doneReply.
func (s *session) readReply() (*[]byte, int, error) {
	var buf *[]byte
	var n int
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		buf = replyBufs.Get().(*[]byte)
		n, rerr = syscall.Read(int(fd), *buf)
		if rerr == syscall.EAGAIN {
			replyBufs.Put(buf)
			buf = nil
			return false // wait for readability
		}
		return true
	})
	if err == nil && rerr != nil {
		err = os.NewSyscallError("read", rerr)
	}
	if err != nil {
		if buf != nil {
			replyBufs.Put(buf)
		}
		return nil, 0, err
	}
	return buf, n, nil
}

func doneReply(buf *[]byte) { replyBufs.Put(buf) }
