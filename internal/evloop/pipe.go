//go:build linux

package evloop

import "golang.org/x/sys/unix"

// pipeSize is the capacity asked for each splice pipe. Pages are used only
// while bytes sit in the pipe, and a direction holds a pipe only while it
// moves a bulk stream, so an idle connection costs none. An unprivileged
// user's pipes shrink to one page past /proc/sys/fs/pipe-user-pages-soft;
// splice then moves smaller chunks.
const pipeSize = 1 << 20

// maxIdlePipes bounds the empty pipes a loop keeps for reuse, as HAProxy's
// maxpipes does: past it a returned pipe is closed.
const maxIdlePipes = 64

// pipe is a kernel pipe used as the splice buffer of one direction.
type pipe struct {
	r, w int32
	size int32 // capacity reported by the kernel
	data int32 // bytes in the pipe now
}

// getPipe returns an empty pipe from the loop's pool or a new one, or nil
// when none can be made (out of descriptors).
func (l *loop) getPipe() *pipe {
	if n := len(l.pipes); n > 0 {
		p := l.pipes[n-1]
		l.pipes = l.pipes[:n-1]
		return p
	}
	var ends [2]int
	if err := unix.Pipe2(ends[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil
	}
	l.e.cfg.addFDs(2)
	p := &pipe{r: int32(ends[0]), w: int32(ends[1]), size: 1 << 16}
	if n, err := unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, pipeSize); err == nil {
		p.size = int32(n)
	}
	return p
}

// putPipe keeps an empty pipe for reuse, and closes a pipe that still
// holds bytes (they belong to a connection that ended) or that the pool has
// no room for.
func (l *loop) putPipe(p *pipe) {
	if p.data == 0 && len(l.pipes) < maxIdlePipes {
		l.pipes = append(l.pipes, p)
		return
	}
	unix.Close(int(p.r))
	unix.Close(int(p.w))
	l.e.cfg.addFDs(-2)
}
