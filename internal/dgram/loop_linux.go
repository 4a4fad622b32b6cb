//go:build linux

package dgram

import (
	"container/heap"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop. One goroutine owns an epoll instance watching the
// listening socket and every session's socket to its backend, all
// level-triggered, and does exactly the system calls a datagram needs:
//
//   - the listening socket readable: one recvmmsg takes up to batch client
//     datagrams (fewer means the queue is empty; more wait for the next
//     wake-up, which level triggering brings at once);
//   - each one goes to its session's socket with one write; a new client
//     costs socket, connect and epoll_ctl ADD (the kernel binds the port
//     on connect), and its session's end one close;
//   - a session's socket readable: one recvmmsg (MSG_DONTWAIT) takes the
//     replies waiting, into the loop's reply batch;
//   - once the wake-up's events are served, one sendmmsg sends every
//     reply of the batch to its client from the listening socket.
//
// A session holds no buffer and no goroutine: its state is one small
// struct, a map entry and the kernel's socket. Idle timeouts are a heap of
// sessions by deadline, checked against the last datagram's time when
// they come up, so nothing is reset per datagram. Other goroutines reach
// the loop through a queue of commands and an eventfd.

const (
	batch    = 16                         // datagrams per recvmmsg and sendmmsg
	headroom = 64                         // room before a client datagram for a prefix (a PROXY v2 header is at most 52 bytes)
	slotSize = headroom + MaxDatagram + 1 // one more than the largest datagram tells one over the limit
)

// A batch of datagrams for recvmmsg or sendmmsg: one buffer, address and
// header per datagram. Its buffers are the loop's; no session owns one.
type mmsgs struct {
	buf   []byte
	iov   [batch]unix.Iovec
	names [batch]unix.RawSockaddrInet6 // the larger of the two families
	hdr   [batch]unix.Mmsghdr
}

func newMmsgs(off int) *mmsgs {
	m := &mmsgs{buf: make([]byte, batch*slotSize)}
	for i := range batch {
		m.iov[i].Base = &m.buf[i*slotSize+off]
		m.iov[i].SetLen(slotSize - off)
		m.hdr[i].Hdr.Iov = &m.iov[i]
		m.hdr[i].Hdr.SetIovlen(1)
		m.hdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&m.names[i]))
	}
	return m
}

// slot returns datagram i's buffer, headroom included.
func (m *mmsgs) slot(i int) []byte { return m.buf[i*slotSize : (i+1)*slotSize] }

// loopProxy is the Proxy on an event loop.
type loopProxy struct {
	cfg               Config
	lfd, epfd, wakefd int
	limits

	mu       sync.Mutex
	cmds     []func()
	sessions map[netip.AddrPort]*lsession // written by the loop under mu; read by it without
	stopped  bool                         // Stop called
	closing  bool                         // Close called
	served   chan struct{}                // closed when Serve returns: Stop or Close
	serveErr error
	empty    chan struct{} // closed once stopped with no session left
	done     chan struct{} // closed when the loop has ended

	// The rest is the loop's own.
	base      time.Time
	now       int64 // ns since base, taken after each epoll_wait
	quit      bool
	listening bool // lfd is in the epoll set
	more      bool // a read filled its batch: more may wait (see run)
	lstopped  bool // the loop has seen Stop
	events    [64]unix.EpollEvent
	in, out   *mmsgs
	outSess   [batch]*lsession // whose reply each of out's datagrams is
	outN      int
	ending    []*lsession // have sent their last reply: finish after the flush
	byFD      []*lsession
	gen       uint32
	timers    timerHeap
	scratch   []byte // a prefix longer than headroom, and the datagram
}

// lsession is one client's session on the loop.
type lsession struct {
	fd       int
	gen      uint32 // tags its epoll events, against a reused descriptor
	client   netip.AddrPort
	name     unix.RawSockaddrInet6 // the client's address as the listening socket gave it
	namelen  uint32
	ev       Session
	prefix   []byte
	last     int64 // loop time of the last datagram either way
	due      int64
	heap     int32 // index in timers; -1 if not there
	queued   int32 // replies in the out batch
	replies  int64
	pending  [][]byte     // while resolving (fd -1): client datagrams to send once connected
	asked    atomic.Int32 // -1; or the Reason CloseIf asked for
	sentLast bool         // its last reply (Responses) is in the out batch
	done     bool
}

func newLoop(pc *net.UDPConn, cfg Config) (Proxy, error) {
	rc, err := pc.SyscallConn()
	if err != nil {
		return nil, err
	}
	lfd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { lfd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	p := &loopProxy{
		cfg: cfg, lfd: lfd, epfd: -1, wakefd: -1,
		sessions: make(map[netip.AddrPort]*lsession),
		served:   make(chan struct{}), empty: make(chan struct{}), done: make(chan struct{}),
		base: time.Now(), in: newMmsgs(headroom), out: newMmsgs(0),
	}
	p.SetLimits(cfg.Idle, cfg.Responses, cfg.MaxDatagram)
	if err := p.setup(); err != nil {
		p.closeFDs()
		return nil, err
	}
	pc.Close() // the duplicate is the socket now
	go p.run()
	return p, nil
}

func (p *loopProxy) setup() error {
	var err error
	if err = unix.SetNonblock(p.lfd, true); err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	if p.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if err = unix.SetNonblock(p.epfd, true); err != nil { // so that Go's poller takes it (park)
		return os.NewSyscallError("fcntl", err)
	}
	if p.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return os.NewSyscallError("eventfd", err)
	}
	// Edge-triggered: each write is an edge, and nothing need read it.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(p.wakefd)}
	if err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, p.wakefd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

func (p *loopProxy) closeFDs() {
	for _, fd := range []int{p.lfd, p.wakefd, p.epfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// post queues f to run on the loop and wakes it. It reports false if the
// loop has ended (f will not run).
func (p *loopProxy) post(f func()) bool {
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		return false
	default:
	}
	p.cmds = append(p.cmds, f)
	p.mu.Unlock()
	one := [8]byte{1}
	unix.Write(p.wakefd, one[:])
	return true
}

func (p *loopProxy) Serve() error {
	p.post(func() {
		if p.listening || p.lstopped || p.quit {
			return
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p.lfd)}
		if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, p.lfd, &ev); err != nil {
			p.endServe(os.NewSyscallError("epoll_ctl", err))
			return
		}
		p.listening = true
	})
	<-p.served
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.serveErr
}

// endServe makes Serve return err, if it has not returned yet.
func (p *loopProxy) endServe(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.served:
	default:
		p.serveErr = err
		close(p.served)
	}
}

func (p *loopProxy) Stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.mu.Unlock()
	p.endServe(ErrStopped)
	// Stop returns once the loop no longer reads the socket, so that a
	// caller handing it to another process (an upgrade) knows that every
	// datagram from then on is the other's.
	stopped := make(chan struct{})
	if p.post(func() {
		defer close(stopped)
		p.lstopped = true
		if p.listening {
			unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, p.lfd, nil)
			p.listening = false
		}
		p.checkEmpty()
	}) {
		<-stopped
	}
}

func (p *loopProxy) Empty() <-chan struct{} { return p.empty }

// checkEmpty closes empty once the loop has seen Stop and has no session.
func (p *loopProxy) checkEmpty() {
	if p.lstopped && len(p.sessions) == 0 {
		select {
		case <-p.empty:
		default:
			close(p.empty)
		}
	}
}

func (p *loopProxy) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

func (p *loopProxy) Sessions() []Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Session, 0, len(p.sessions))
	for _, s := range p.sessions {
		out = append(out, s.ev)
	}
	return out
}

func (p *loopProxy) CloseIf(match func(Session) bool) int {
	p.mu.Lock()
	var ending []*lsession
	for _, s := range p.sessions {
		if match(s.ev) && s.asked.CompareAndSwap(-1, int32(Closed)) {
			ending = append(ending, s)
		}
	}
	p.mu.Unlock()
	if len(ending) > 0 {
		p.post(func() {
			for _, s := range ending {
				p.finish(s, Closed, nil)
			}
		})
	}
	return len(ending)
}

func (p *loopProxy) Close() error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closing = true
	p.mu.Unlock()
	p.endServe(net.ErrClosed)
	p.post(func() { p.quit = true })
	<-p.done
	return nil
}

// run is the loop. It parks in Go's poller on the epoll descriptor
// rather than waiting in epoll_wait itself: a goroutine asleep in a system
// call holds its P, and the daemon keeps one P spare beside its TCP loops
// (which do wait in epoll_wait), so a UDP loop waiting the same way would
// take the spare and have the runtime's monitor take Ps back every 20 µs.
// Measured on lbbench's UDP scenarios, pinned to one core, in three
// alternated runs: parked, new sessions/s x1.00, x0.89, x1.37 of nginx at
// CPU x0.92, x1.01, x0.62; waiting in epoll_wait, x0.95, x0.94, x0.88 at
// x0.97, x0.96, x1.00. Parking costs one epoll_wait more per wake-up.
//
// Go's poller watches the epoll descriptor edge-triggered, and a
// level-triggered socket left readable (a batch filled) need not make a
// new edge, so the loop parks only once a wait has taken every event and
// no read filled its batch.
func (p *loopProxy) run() {
	f := os.NewFile(uintptr(p.epfd), "epoll")
	defer func() {
		f.Close()
		p.epfd = -1
		p.shutdown()
	}()
	rc, err := f.SyscallConn()
	if err != nil {
		panic("dgram: " + err.Error())
	}
	deadline := int64(-1)
	for !p.quit {
		err := rc.Read(func(uintptr) bool {
			for {
				n := p.poll()
				if p.quit {
					return true
				}
				if n == len(p.events) || p.more {
					p.more = false
					continue
				}
				at, ok := p.nextDue()
				if !ok {
					at = -1
				}
				if at != deadline {
					deadline = at
					if at < 0 {
						f.SetReadDeadline(time.Time{})
					} else {
						f.SetReadDeadline(p.base.Add(time.Duration(at)))
					}
				}
				return false
			}
		})
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			panic("dgram: " + err.Error())
		}
		if err != nil {
			deadline = -1
			f.SetReadDeadline(time.Time{})
		}
	}
}

func (p *loopProxy) clock() int64 { return int64(time.Since(p.base)) }

// poll takes the events ready now, without waiting, and serves them, the
// commands posted and the timers due; it returns the number of events.
func (p *loopProxy) poll() int {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&p.events[0])), uintptr(len(p.events)), 0, 0, 0)
	p.now = p.clock()
	if e != 0 && e != unix.EINTR {
		panic("dgram: epoll_pwait: " + e.Error()) // EBADF, EFAULT, EINVAL: a bug here
	}
	n := int(r)
	if e != 0 {
		n = 0
	}
	for i := range max(n, 0) {
		ev := &p.events[i]
		switch {
		case ev.Pad == 0 && int(ev.Fd) == p.lfd:
			if p.listening {
				p.readClients()
			}
		case ev.Pad == 0 && int(ev.Fd) == p.wakefd:
		default:
			if fd := int(ev.Fd); fd < len(p.byFD) {
				if s := p.byFD[fd]; s != nil && s.gen == uint32(ev.Pad) {
					p.readReplies(s)
				}
			}
		}
	}
	p.flush()
	p.runCommands()
	p.runTimers()
	return max(n, 0)
}

func (p *loopProxy) runCommands() {
	p.mu.Lock()
	cmds := p.cmds
	p.cmds = nil
	p.mu.Unlock()
	for _, f := range cmds {
		f()
	}
}

// shutdown ends every session and closes the descriptors; the loop is
// over.
func (p *loopProxy) shutdown() {
	p.flush()
	for _, s := range p.sessions {
		p.finish(s, Closed, nil)
	}
	p.mu.Lock()
	close(p.done)
	p.mu.Unlock()
	p.endServe(net.ErrClosed)
	p.closeFDs()
	p.runCommands() // posted before done: none may wait forever
}

// readClients reads a batch of client datagrams and sends each on.
func (p *loopProxy) readClients() {
	m := p.in
	for i := range batch {
		m.hdr[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		m.hdr[i].Hdr.Flags = 0
	}
	n, err := mmsg(unix.SYS_RECVMMSG, p.lfd, &m.hdr[0], batch, unix.MSG_DONTWAIT)
	if err != nil {
		// EAGAIN: another reader (a new process, in an upgrade) took them.
		// Other errors are transient, as for the portable path.
		return
	}
	if n == batch {
		p.more = true
	}
	limit := p.maxDatagram.Load()
	for i := range n {
		h := &m.hdr[i]
		from, ok := nameToAddrPort(&m.names[i])
		if !ok {
			continue
		}
		size := int(h.Len)
		if int64(size) > limit || h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			p.cfg.Handler.Dropped(from, TooLarge, size)
			continue
		}
		p.relay(from, &m.names[i], h.Hdr.Namelen, m.slot(i), size)
	}
}

// relay sends a client's datagram (slot[headroom:][:n]) on through its
// session, opening one if it has none.
func (p *loopProxy) relay(from netip.AddrPort, name *unix.RawSockaddrInet6, namelen uint32, slot []byte, n int) {
	b := slot[headroom : headroom+n]
	s := p.sessions[from]
	if s != nil {
		if why := s.asked.Load(); why >= 0 {
			p.finish(s, Reason(why), nil) // ending: the datagram opens the client's next session
			s = nil
		}
	}
	if s == nil {
		if s = p.open(from, name, namelen, b); s == nil {
			return
		}
	}
	switch s.ev.FromClient(n) {
	case Discard:
		return
	case Reopen:
		p.finish(s, Closed, nil)
		if s = p.open(from, name, namelen, b); s == nil || s.ev.FromClient(n) != Forward {
			return
		}
	}
	s.last = p.now
	if s.fd < 0 { // resolving: keep it for the connect
		if len(s.pending) < MaxPending {
			s.pending = append(s.pending, append([]byte(nil), slot[headroom:headroom+n]...))
		} else {
			p.cfg.Handler.Dropped(from, Failed, n)
		}
		return
	}
	if err := p.send(s, slot, n); err != nil {
		p.cfg.Handler.Dropped(from, Failed, n)
		if isUnreachable(err) {
			// An ICMP error from an earlier datagram, reported on this write.
			p.finish(s, Unreachable, err)
		}
	}
}

// send writes the datagram in slot to s's backend, behind s's prefix.
func (p *loopProxy) send(s *lsession, slot []byte, n int) error {
	var b []byte
	switch k := len(s.prefix); {
	case k == 0:
		b = slot[headroom : headroom+n]
	case k <= headroom:
		b = slot[headroom-k : headroom+n]
		copy(b, s.prefix)
	default:
		return p.sendBytes(s, slot[headroom:headroom+n])
	}
	return write(s.fd, b)
}

// open starts a session for client, or returns nil if the Handler drops
// its datagram or the backend's socket cannot be made.
func (p *loopProxy) open(client netip.AddrPort, name *unix.RawSockaddrInet6, namelen uint32, first []byte) *lsession {
	if p.lstopped || p.quit {
		return nil
	}
	v := p.cfg.Handler.Open(client, first)
	if v.Session == nil {
		return nil
	}
	s := &lsession{fd: -1, client: client, name: *name, namelen: namelen,
		ev: v.Session, prefix: v.Prefix, last: p.now, heap: -1}
	s.asked.Store(-1)
	if !v.Backend.IsValid() && v.Resolve != nil {
		// A lookup may block: it runs on a goroutine, and the session
		// waits in the table, keeping its datagrams, until it is done.
		resolve := v.Resolve
		go func() {
			ap, err := resolve()
			p.post(func() { p.resolved(s, ap, err) })
		}()
	} else if err := p.connect(s, v.Backend); err != nil {
		v.Session.Ended(DialFailed, err)
		return nil
	}
	p.mu.Lock()
	p.sessions[client] = s
	p.mu.Unlock()
	p.setDue(s, p.now+p.idle.Load())
	return s
}

// connect gives s its socket, connected to addr and in the epoll set.
func (p *loopProxy) connect(s *lsession, addr netip.AddrPort) error {
	fd, err := dialUDP(addr)
	if err != nil {
		return err
	}
	p.gen++
	if p.gen == 0 {
		p.gen = 1
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: int32(p.gen)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		closeFD(fd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	s.fd, s.gen = fd, p.gen
	for fd >= len(p.byFD) {
		p.byFD = append(p.byFD, nil)
	}
	p.byFD[fd] = s
	return nil
}

// resolved goes on with a session whose backend's lookup is done: it
// connects and sends the datagrams kept meanwhile, or ends the session.
func (p *loopProxy) resolved(s *lsession, addr netip.AddrPort, err error) {
	if s.done {
		return // ended meanwhile (idle, Close)
	}
	if err == nil {
		err = p.connect(s, addr)
	}
	if err != nil {
		p.finish(s, DialFailed, err)
		return
	}
	pending := s.pending
	s.pending = nil
	for _, b := range pending {
		if err := p.sendBytes(s, b); err != nil {
			p.cfg.Handler.Dropped(s.client, Failed, len(b))
		}
	}
}

// sendBytes writes b to s's backend, behind s's prefix.
func (p *loopProxy) sendBytes(s *lsession, b []byte) error {
	if len(s.prefix) > 0 {
		p.scratch = append(append(p.scratch[:0], s.prefix...), b...)
		b = p.scratch
	}
	return write(s.fd, b)
}

// The loop's calls on its sockets are raw system calls: none can block
// (the sockets are non-blocking, a UDP connect only sets the peer, epoll
// is asked with timeout 0), so the runtime need not be told the thread is
// in a system call. Told, it counts a P in a system call each time, and
// its monitor, finding one there often, keeps waking every 20 µs to take
// it back (measured: 0.4 nanosleep calls per datagram exchanged).

// write writes datagram b to the connected socket fd (send: the socket
// call, which skips the file layer write goes through).
func write(fd int, b []byte) error {
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), 0, 0, 0)
		if e != unix.EINTR {
			return errnoErr("send", e)
		}
	}
}

// errnoErr is nil for 0, or e as an os.SyscallError of call.
func errnoErr(call string, e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return os.NewSyscallError(call, e)
}

func closeFD(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// dialUDP returns a non-blocking UDP socket connected to addr.
func dialUDP(addr netip.AddrPort) (int, error) {
	a := addr.Addr().Unmap()
	var sa4 unix.RawSockaddrInet4
	var sa6 unix.RawSockaddrInet6
	var sa unsafe.Pointer
	var size uintptr
	family := unix.AF_INET
	port := [2]byte{byte(addr.Port() >> 8), byte(addr.Port())}
	if a.Is4() {
		sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		*(*[2]byte)(unsafe.Pointer(&sa4.Port)) = port
		sa, size = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	} else {
		family = unix.AF_INET6
		sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
		*(*[2]byte)(unsafe.Pointer(&sa6.Port)) = port
		sa, size = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	}
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return -1, errnoErr("socket", e)
	}
	fd := int(r)
	if _, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(sa), size); e != 0 {
		closeFD(fd)
		return -1, errnoErr("connect", e)
	}
	return fd, nil
}

// readReplies reads the replies waiting on s's socket into the out batch.
func (p *loopProxy) readReplies(s *lsession) {
	if s.sentLast {
		return // its last reply waits in the batch; the flush ends it
	}
	if p.outN == batch {
		p.flush()
	}
	m := p.out
	room := batch - p.outN
	for i := p.outN; i < batch; i++ {
		m.hdr[i].Hdr.Name = nil
		m.hdr[i].Hdr.Namelen = 0
		m.iov[i].SetLen(slotSize)
	}
	n, err := mmsg(unix.SYS_RECVMMSG, s.fd, &m.hdr[p.outN], room, unix.MSG_DONTWAIT)
	if err != nil {
		switch {
		case err == unix.EAGAIN:
		case isUnreachable(err):
			p.finish(s, Unreachable, os.NewSyscallError("read", err))
		default:
			p.finish(s, Error, os.NewSyscallError("read", err))
		}
		return
	}
	if n == room {
		p.more = true
	}
	s.last = p.now
	limit := p.responses.Load()
	for range n {
		i := p.outN
		m.hdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&m.names[i]))
		m.hdr[i].Hdr.Namelen = s.namelen
		m.names[i] = s.name
		m.iov[i].SetLen(int(m.hdr[i].Len))
		p.outSess[i] = s
		p.outN++
		s.queued++
		s.replies++
		if limit > 0 && s.replies >= limit {
			// Out of the table before the reply goes, so that the
			// client's next datagram opens a new session; replies
			// after the last are not sent.
			p.detach(s)
			s.sentLast = true
			p.ending = append(p.ending, s)
			break
		}
	}
}

// flush sends the out batch's replies to their clients.
func (p *loopProxy) flush() {
	m := p.out
	for sent := 0; sent < p.outN; {
		n, err := mmsg(unix.SYS_SENDMMSG, p.lfd, &m.hdr[sent], p.outN-sent, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			n = 0
		}
		for i := sent; i < sent+n; i++ {
			p.outSess[i].ev.FromBackend(int(m.hdr[i].Len))
		}
		if err != nil {
			n = 1 // this reply is lost (a full send buffer, a firewall): go on with the next
		}
		for i := sent; i < sent+n; i++ {
			p.outSess[i].queued--
			p.outSess[i] = nil
		}
		sent += n
	}
	p.outN = 0
	for len(p.ending) > 0 {
		s := p.ending[len(p.ending)-1]
		p.ending = p.ending[:len(p.ending)-1]
		p.finish(s, Responses, nil)
	}
}

// detach takes s out of the proxy's table.
func (p *loopProxy) detach(s *lsession) {
	p.mu.Lock()
	if p.sessions[s.client] == s {
		delete(p.sessions, s.client)
	}
	p.mu.Unlock()
	p.checkEmpty()
}

// finish ends s: out of the table, its socket closed, the Session told;
// replies of its still in the out batch go first.
func (p *loopProxy) finish(s *lsession, why Reason, err error) {
	if s.done {
		return
	}
	if s.queued > 0 {
		p.flush()
		if s.done { // flush ended it (its last reply)
			return
		}
	}
	s.done = true
	p.detach(s)
	p.clearDue(s)
	if s.fd >= 0 {
		p.byFD[s.fd] = nil
		closeFD(s.fd) // out of the epoll set with it
	}
	s.pending = nil
	s.ev.Ended(why, err)
}

// Timers: a heap of sessions by deadline (container/heap); each session
// knows its index in it, -1 when not there.

type timerHeap []*lsession

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heap, h[j].heap = int32(i), int32(j)
}
func (h *timerHeap) Push(x any) {
	s := x.(*lsession)
	s.heap = int32(len(*h))
	*h = append(*h, s)
}
func (h *timerHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.heap = -1
	return s
}

// setDue puts s in the heap at deadline at, or moves it there.
func (p *loopProxy) setDue(s *lsession, at int64) {
	s.due = at
	if s.heap < 0 {
		heap.Push(&p.timers, s)
	} else {
		heap.Fix(&p.timers, int(s.heap))
	}
}

// clearDue takes s out of the heap.
func (p *loopProxy) clearDue(s *lsession) {
	if s.heap >= 0 {
		heap.Remove(&p.timers, int(s.heap))
	}
}

func (p *loopProxy) nextDue() (int64, bool) {
	if len(p.timers) == 0 {
		return 0, false
	}
	return p.timers[0].due, true
}

// runTimers ends the sessions whose idle timeout has passed, and moves the
// others' deadlines on to their last datagram's.
func (p *loopProxy) runTimers() {
	idle := p.idle.Load()
	for len(p.timers) > 0 {
		s := p.timers[0]
		if s.due > p.now {
			return
		}
		if due := s.last + idle; due > p.now {
			p.setDue(s, due)
			continue
		}
		p.finish(s, Idle, nil)
	}
}

// mmsg calls recvmmsg or sendmmsg (trap) on fd with n headers.
func mmsg(trap uintptr, fd int, h *unix.Mmsghdr, n, flags int) (int, error) {
	r, _, e := unix.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(h)), uintptr(n), uintptr(flags), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// nameToAddrPort returns the address in a socket address that recvmmsg
// filled, unmapped.
func nameToAddrPort(rsa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	switch rsa.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(port[0])<<8|uint16(port[1])), true
	case unix.AF_INET6:
		port := (*[2]byte)(unsafe.Pointer(&rsa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(rsa.Addr).Unmap(), uint16(port[0])<<8|uint16(port[1])), true
	}
	return netip.AddrPort{}, false
}
