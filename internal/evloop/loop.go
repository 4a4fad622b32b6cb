//go:build linux

package evloop

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Event tags: an epoll event's data holds a slot index (Fd) and a tag
// (Pad). A connection's tag is its generation, its dial count and the side;
// negative tags are the loop's own descriptors.
const (
	tagWake     = -1 // the eventfd
	tagListener = -2 // Fd is the index in loop.listeners
)

const chunkSize = 256 // connections per slab chunk

// loop is one event loop: an epoll instance, the connections whose two
// sockets it watches, their timers, and a queue of work posted by other
// goroutines.
type loop struct {
	e      *Engine
	index  uint16
	epfd   int
	wakefd int
	events []unix.EpollEvent
	buf    []byte // the read buffer every connection of the loop shares
	rsa    unix.RawSockaddrAny
	base   time.Time
	now    int64 // nanoseconds since base, read once per wake-up

	chunks    []*[chunkSize]conn
	free      []int32 // free slots, most recently freed last
	listeners []*Listener
	timers    []int32  // slots by deadline: a binary heap
	ready     []ID     // connections with more to move after their fair share
	bufs      [][]byte // free pending buffers
	pipes     []*pipe  // free pipes
	paused    bool     // listeners out of epoll: the descriptor gate is shut
	stopped   bool

	sleeping atomic.Bool   // in epoll_wait, or about to be: posters write wakefd
	accepted atomic.Uint64 // client connections this loop accepted
	mu       sync.Mutex
	cmds     []func(*loop)
	spare    []func(*loop)
}

func newLoop(e *Engine, index uint16) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil { // so that the runtime's poller takes it
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: 0, Pad: tagWake}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &loop{
		e: e, index: index, epfd: epfd, wakefd: wakefd,
		events: make([]unix.EpollEvent, 256),
		buf:    make([]byte, e.cfg.BufSize),
		base:   time.Now(),
	}, nil
}

// post queues f to run on the loop, and wakes the loop if it sleeps.
func (l *loop) post(f func(*loop)) {
	l.mu.Lock()
	l.cmds = append(l.cmds, f)
	l.mu.Unlock()
	if l.sleeping.Load() {
		var one = [8]byte{1}
		unix.Write(l.wakefd, one[:])
	}
}

// run is the loop. It waits in Go's own poller, not in epoll_wait: the
// loop's epoll descriptor is registered with the runtime like a socket,
// and the loop goroutine parks until it is readable or the next timer is
// due. A goroutine blocked in a system call instead would keep its P in a
// system call, and the runtime's monitor would take the P back every
// 20 µs while the loop sleeps (measured: 6 nanosleep and 1.6 futex calls
// per proxied connection on one core).
func (l *loop) run() {
	f := os.NewFile(uintptr(l.epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		panic("evloop: " + err.Error())
	}
	deadline := int64(-1) // the parked wait's deadline, as set on f
	for !l.stopped {
		err := rc.Read(func(uintptr) bool {
			for {
				n := l.poll()
				if l.stopped {
					return true
				}
				if n == len(l.events) || len(l.ready) > 0 {
					continue
				}
				// About to park. sleeping is set before the queue is looked
				// at: a poster that sees it false has queued work that this
				// look finds.
				l.sleeping.Store(true)
				l.mu.Lock()
				more := len(l.cmds) > 0
				l.mu.Unlock()
				if more {
					l.sleeping.Store(false)
					continue
				}
				at, ok := l.nextDue()
				if !ok {
					at = -1
				}
				if at != deadline {
					deadline = at
					if at < 0 {
						f.SetReadDeadline(time.Time{})
					} else {
						f.SetReadDeadline(l.base.Add(time.Duration(at)))
					}
				}
				return false
			}
		})
		l.sleeping.Store(false)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			panic("evloop: " + err.Error())
		}
		if err != nil {
			deadline = -1 // spent; runTimers in the next poll sets the next
			f.SetReadDeadline(time.Time{})
		}
	}
	l.shutdown()
	f.Close()
}

// runBlocking is the loop for an engine with a P to spare
// (GOMAXPROCS > loops): it waits in epoll_wait itself, one system call
// per wake-up. While the loop sleeps in the call, the spare P runs the
// process's other goroutines, and the runtime leaves the loop's P alone.
func (l *loop) runBlocking() {
	var yielded int64
	for !l.stopped {
		timeout := -1
		if len(l.ready) > 0 {
			timeout = 0
		} else if at, ok := l.nextDue(); ok {
			wait := at - l.clock()
			timeout = int(max(0, (wait+int64(time.Millisecond)-1)/int64(time.Millisecond)))
		}
		l.sleeping.Store(true)
		l.mu.Lock()
		if len(l.cmds) > 0 {
			timeout = 0
		}
		l.mu.Unlock()
		if now := l.clock(); timeout != 0 && now-yielded > int64(5*time.Millisecond) {
			// A goroutine that never passes through the scheduler is,
			// to the runtime's monitor, one that has run too long: after
			// 10 ms it takes the P away from the system call, and the
			// loop comes back on another thread. A yield every 5 ms
			// prevents it; one per wait would wake a spare thread each
			// time (a futex call on each side).
			yielded = now
			runtime.Gosched()
		}
		l.wait(timeout)
		l.sleeping.Store(false)
	}
	l.shutdown()
	unix.Close(l.epfd)
}

// poll takes the events ready now, without waiting, and serves them, the
// posted work, the connections left over from their fair share and the
// timers that are due. It returns the number of events.
func (l *loop) poll() int { return l.wait(0) }

// wait waits up to timeout milliseconds (-1: no limit) for events, and
// serves them as poll does.
func (l *loop) wait(timeout int) int {
	n, err := unix.EpollWait(l.epfd, l.events, timeout)
	l.now = l.clock()
	if err != nil && err != unix.EINTR {
		panic("evloop: epoll_wait: " + err.Error()) // EBADF, EFAULT, EINVAL: a bug here
	}
	for i := range max(n, 0) {
		ev := &l.events[i]
		switch ev.Pad {
		case tagWake:
			// Nothing to read: the eventfd is edge-triggered, and each
			// write is an edge.
		case tagListener:
			if int(ev.Fd) < len(l.listeners) && l.listeners[ev.Fd] != nil {
				l.accept(l.listeners[ev.Fd])
			}
		default:
			l.event(ev.Fd, ev.Pad, ev.Events)
		}
	}
	l.runCommands()
	l.runReady()
	l.runTimers()
	return max(n, 0)
}

func (l *loop) clock() int64 { return int64(time.Since(l.base)) }

func (l *loop) runCommands() {
	l.mu.Lock()
	cmds := l.cmds
	l.cmds = l.spare[:0]
	l.mu.Unlock()
	for i, f := range cmds {
		f(l)
		cmds[i] = nil
	}
	l.spare = cmds
}

// runReady gives the connections that used up their fair share another.
func (l *loop) runReady() {
	ready := l.ready
	l.ready = nil
	for _, id := range ready {
		if c := l.lookup(id); c != nil {
			c.queued = false
			l.pumpBoth(c)
		}
	}
}

// lookup returns the open connection id names, or nil.
func (l *loop) lookup(id ID) *conn {
	if id.slot < 0 || int(id.slot) >= len(l.chunks)*chunkSize {
		return nil
	}
	c := l.slot(id.slot)
	if c.gen != id.gen || c.state == stateFree {
		return nil
	}
	return c
}

func (l *loop) slot(i int32) *conn { return &l.chunks[i/chunkSize][i%chunkSize] }

// alloc takes a free slot for a new connection.
func (l *loop) alloc() (*conn, ID) {
	if len(l.free) == 0 {
		base := int32(len(l.chunks) * chunkSize)
		l.chunks = append(l.chunks, new([chunkSize]conn))
		for i := int32(chunkSize - 1); i >= 0; i-- {
			l.free = append(l.free, base+i)
		}
	}
	i := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	c := l.slot(i)
	gen := c.gen + 1
	if gen&genMask == 0 {
		gen++ // generation 0 is no connection's
	}
	*c = conn{gen: gen, slot: i, fd: [2]int32{-1, -1}, heap: -1}
	return c, ID{loop: l.index, slot: i, gen: gen}
}

// release frees c's slot; later events and IDs for it are ignored.
func (l *loop) release(c *conn) {
	l.clearDue(c)
	gen, slot := c.gen, c.slot
	*c = conn{gen: gen, slot: slot, heap: -1}
	l.free = append(l.free, slot)
}

func (l *loop) addListener(ln *Listener, ev unix.EpollEvent) {
	i := len(l.listeners)
	for j, x := range l.listeners {
		if x == nil {
			i = j
			break
		}
	}
	if i == len(l.listeners) {
		l.listeners = append(l.listeners, nil)
	}
	l.listeners[i] = ln
	ev.Fd, ev.Pad = int32(i), tagListener
	if !l.paused {
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ln.fd, &ev); err != nil {
			l.listeners[i] = nil
			ln.loopDone()
		}
	}
}

func (l *loop) removeListener(ln *Listener) {
	for i, x := range l.listeners {
		if x == ln {
			l.listeners[i] = nil
			if !l.paused {
				// The socket stays open until every loop has let go of
				// it, so it must be taken out explicitly.
				unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil)
			}
			ln.loopDone()
			return
		}
	}
}

// pause takes every listener out of the loop's epoll until resume: the
// descriptor gate is shut.
func (l *loop) pause(wait <-chan struct{}) {
	if l.paused {
		return
	}
	l.paused = true
	for _, ln := range l.listeners {
		if ln != nil {
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil)
		}
	}
	go func() {
		<-wait
		l.post((*loop).resume)
	}()
}

func (l *loop) resume() {
	if !l.paused {
		return
	}
	l.paused = false
	for i, ln := range l.listeners {
		if ln != nil {
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(i), Pad: tagListener}
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ln.fd, &ev)
		}
	}
}

// shutdown closes what the loop holds when the engine stops.
func (l *loop) shutdown() {
	for _, ch := range l.chunks {
		for i := range ch {
			if c := &ch[i]; c.state != stateFree {
				l.finish(c, Result{Reason: Closed}, false)
			}
		}
	}
	for _, ln := range l.listeners {
		if ln != nil {
			ln.loopDone()
		}
	}
	for _, p := range l.pipes {
		unix.Close(int(p.r))
		unix.Close(int(p.w))
		l.e.cfg.addFDs(-2)
	}
	unix.Close(l.wakefd)
}

// getBuf returns a pending buffer.
func (l *loop) getBuf() []byte {
	if n := len(l.bufs); n > 0 {
		b := l.bufs[n-1]
		l.bufs = l.bufs[:n-1]
		return b
	}
	return make([]byte, 0, l.e.cfg.BufSize)
}

const maxIdleBufs = 256

func (l *loop) putBuf(b []byte) {
	if len(l.bufs) < maxIdleBufs {
		l.bufs = append(l.bufs, b[:0])
	}
}

// Timers: each connection with a deadline (connect, idle) is once in a
// binary heap of slots, ordered by its earliest deadline, and knows its
// place in it; nothing is reset per read: the idle deadline is checked
// against the time of the last byte moved when it comes up, and moved on.

// setDue puts c in the heap at deadline at, or moves it there.
func (l *loop) setDue(c *conn, at int64) {
	c.due = at
	if c.heap < 0 {
		c.heap = int32(len(l.timers))
		l.timers = append(l.timers, c.slot)
		l.siftUp(int(c.heap))
		return
	}
	l.siftUp(int(c.heap))
	l.siftDown(int(c.heap))
}

// clearDue takes c out of the heap.
func (l *loop) clearDue(c *conn) {
	i := int(c.heap)
	if i < 0 {
		return
	}
	last := len(l.timers) - 1
	l.swap(i, last)
	l.timers = l.timers[:last]
	c.heap = -1
	if i < last {
		l.siftUp(i)
		l.siftDown(i)
	}
}

func (l *loop) dueAt(i int) int64 { return l.slot(l.timers[i]).due }

func (l *loop) swap(i, j int) {
	t := l.timers
	t[i], t[j] = t[j], t[i]
	l.slot(t[i]).heap = int32(i)
	l.slot(t[j]).heap = int32(j)
}

func (l *loop) siftUp(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if l.dueAt(p) <= l.dueAt(i) {
			return
		}
		l.swap(i, p)
		i = p
	}
}

func (l *loop) siftDown(i int) {
	n := len(l.timers)
	for {
		m, a, b := i, 2*i+1, 2*i+2
		if a < n && l.dueAt(a) < l.dueAt(m) {
			m = a
		}
		if b < n && l.dueAt(b) < l.dueAt(m) {
			m = b
		}
		if m == i {
			return
		}
		l.swap(i, m)
		i = m
	}
}

// nextDue returns the earliest deadline, if any.
func (l *loop) nextDue() (int64, bool) {
	if len(l.timers) == 0 {
		return 0, false
	}
	return l.dueAt(0), true
}

func (l *loop) runTimers() {
	for len(l.timers) > 0 {
		c := l.slot(l.timers[0])
		if c.due > l.now {
			return
		}
		switch c.state {
		case statePeeking:
			l.clearDue(c)
			l.peek(c, c.sess.(Peeker), ErrPeekTimeout)
		case stateConnecting:
			l.clearDue(c)
			l.dialFailed(c, ErrConnectTimeout)
		case stateOpen:
			if due := c.lastActive + c.idle; c.idle > 0 && due > l.now {
				l.setDue(c, due)
				continue
			}
			l.finish(c, Result{Reason: Idle}, false)
		default:
			l.clearDue(c)
		}
	}
}
