package tcplb

import (
	"sync"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity asked for each splice pipe, as Go's own splice
// does. Pages are only used while data sits in the pipe, and a pipe is only
// held while a connection is moving bytes, so idle connections cost none.
// An unprivileged user's pipes shrink to one page past
// /proc/sys/fs/pipe-user-pages-soft; splice then moves smaller chunks.
const pipeSize = 1 << 20

// pipe is a kernel pipe used as the splice buffer between two sockets.
type pipe struct {
	r, w int
	size int // capacity reported by the kernel
	data int // bytes in the pipe now
}

// maxIdlePipes bounds the pipes kept for reuse, as HAProxy's maxpipes does:
// beyond it a returned pipe is closed, so a burst of busy connections does
// not leave descriptors behind once it is over.
const maxIdlePipes = 128

// pipes is the pool of empty pipes ready for reuse, most recent last.
var pipes struct {
	sync.Mutex
	free []*pipe
}

func newPipe() (*pipe, error) {
	var ends [2]int
	if err := unix.Pipe2(ends[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, err
	}
	p := &pipe{r: ends[0], w: ends[1], size: 1 << 16}
	fds.add(2)
	if n, err := unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, pipeSize); err == nil {
		p.size = n
	}
	return p, nil
}

// getPipe returns an empty pipe, or nil if none can be made (out of
// descriptors).
func getPipe() *pipe {
	pipes.Lock()
	if n := len(pipes.free); n > 0 {
		p := pipes.free[n-1]
		pipes.free = pipes.free[:n-1]
		pipes.Unlock()
		return p
	}
	pipes.Unlock()
	p, err := newPipe()
	if err != nil {
		return nil
	}
	return p
}

// putPipe keeps p for reuse if it is empty and the pool has room, and
// closes it otherwise.
func putPipe(p *pipe) {
	if p.data == 0 {
		pipes.Lock()
		if len(pipes.free) < maxIdlePipes {
			pipes.free = append(pipes.free, p)
			pipes.Unlock()
			return
		}
		pipes.Unlock()
	}
	p.close()
}

func (p *pipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
	fds.add(-2)
}
