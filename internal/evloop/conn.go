//go:build linux

package evloop

import (
	"cmp"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// One connection's life on a loop, in the order it happens: accept, dial,
// connected, the two directions pumped until both have ended, finish.

// Connection states.
const (
	stateFree       uint8 = iota
	stateWaiting          // client open, no backend socket: waiting for Engine.Dial
	stateConnecting       // backend socket connecting
	stateOpen             // both open: bytes move
	statePeeking          // client open, its first bytes read for the session (Verdict.Peek)
)

// Sides and directions: side 0 is the client's socket, side 1 the
// backend's; direction d reads side d and writes side 1-d, so direction 0
// is up (client to backend) and direction 1 down.
const (
	client  = 0
	backend = 1
)

// Per-side flags, as the events said and the calls since then found.
const (
	readable uint8 = 1 << iota // may have bytes or EOF to read
	writable                   // a write may take bytes
	rdhup                      // the peer has ended its stream: a short read is the end
	broken                     // an error or hang-up: read on until the error or the end
	nagle                      // TCP_NODELAY not set yet: a backend socket before its second send
	sent                       // and it has sent once
)

// genMask is the part of the generation an event tag carries.
const genMask = 1<<23 - 1

// conn is one connection's state, kept by value in the loop's slab: no
// pointers but the session, the pending buffers and pipes (nil while idle),
// so the collector has little to scan.
type conn struct {
	fd         [2]int32
	slot       int32
	gen        uint32
	state      uint8
	dials      uint8 // backend sockets made: stale events of an earlier one are told apart
	flags      [2]uint8
	queued     bool // in the loop's ready list
	answered   bool
	firstEOF   Reason
	dir        [2]direction
	idle       int64 // ns; 0: no idle timeout
	lastActive int64
	connectAt  int64
	peekMax    int32  // Verdict.PeekMax, while peeking
	due        int64  // the earliest deadline: connectAt, or the idle one
	heap       int32  // index in the loop's timer heap, -1 if not in it
	first      []byte // Target.First until written
	sess       Session
}

// direction is the state of one way of a connection.
type direction struct {
	eof  bool   // src reached its end
	done bool   // and everything before it was written: dst's write side is shut
	bulk bool   // the last read filled the buffer: splice next
	pend []byte // bytes dst could not take yet, from the loop's pool
	pipe *pipe  // holds bytes spliced from src, while moving a bulk stream
}

func tag(c *conn, side int) int32 {
	t := (c.gen & genMask) << 8
	if side == backend {
		t |= uint32(c.dials&0x7f)<<1 | 1
	}
	return int32(t)
}

// register adds a socket to the loop's epoll, edge-triggered, for reads,
// writes and the peer's half-close at once: the registration never
// changes, and close removes it.
func (l *loop) register(c *conn, side int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: c.slot, Pad: tag(c, side)}
	if err := epollAdd(l.epfd, int(c.fd[side]), &ev); err != nil {
		return opError("epoll_ctl", err)
	}
	return nil
}

func (l *loop) accept(ln *Listener) {
	if gate := l.e.cfg.Gate; gate != nil {
		if wait := gate(); wait != nil {
			l.pause(wait)
			return
		}
	}
	// One accept per wake-up: the listener is level-triggered, so a
	// backlog is reported again at once, and no accept is spent to find
	// the backlog empty.
	fd, peer, err := accept4(ln.fd, &l.rsa)
	if err != nil {
		return // EAGAIN (another loop took it), ECONNABORTED, EMFILE: the gate's business
	}
	l.e.cfg.addFDs(1)
	l.accepted.Add(1)
	if !l.e.nodelayInherited {
		setNodelay(fd)
	}
	c, id := l.alloc()
	c.fd[client] = int32(fd)
	v := ln.h.Accept(id, peer)
	switch {
	case v.Detach != nil:
		l.release(c)
		detach(fd, v.Detach)
		return
	case v.Session == nil:
		sysClose(fd)
		l.e.cfg.addFDs(-1)
		l.release(c)
		return
	}
	c.sess, c.idle = v.Session, int64(v.Idle)
	c.state = stateWaiting
	if err := l.register(c, client); err != nil {
		l.finish(c, Result{Reason: Reset, Err: err}, false)
		return
	}
	if p, ok := v.Session.(Peeker); ok && v.Peek {
		c.state = statePeeking
		c.peekMax = int32(cmp.Or(v.PeekMax, l.e.cfg.BufSize))
		if v.PeekTimeout > 0 {
			l.setDue(c, l.now+int64(v.PeekTimeout))
		}
		c.flags[client] |= readable
		l.peek(c, p, nil)
		return
	}
	if v.Dial {
		// The client has usually sent its first bytes by now: read them
		// at once, so that they can go with the connect (see early).
		c.flags[client] |= readable
		if n, ok := l.read(c, client, l.buf); !ok {
			return
		} else if n > 0 {
			c.dir[client].pend = append(l.getBuf(), l.buf[:n]...)
		}
		l.dial(c, v.Target)
	}
}

// peek reads what the client has sent, up to its limit, and asks the
// session about all of it; err (ErrPeekTimeout) ends the reading.
func (l *loop) peek(c *conn, p Peeker, err error) {
	dir := &c.dir[client]
	for err == nil && c.flags[client]&readable != 0 && len(dir.pend) < int(c.peekMax) {
		if dir.pend == nil {
			dir.pend = l.getBuf()
		}
		if len(dir.pend) == cap(dir.pend) {
			dir.pend = append(dir.pend, 0)[:len(dir.pend)]
		}
		n, ok := l.read(c, client, dir.pend[len(dir.pend):min(cap(dir.pend), int(c.peekMax))])
		if !ok {
			return
		}
		dir.pend = dir.pend[:len(dir.pend)+n]
		if dir.eof {
			err = io.EOF
		}
		if n == 0 && err == nil {
			return // drained: wait for more
		}
	}
	more, drop, next, dial, giveUp := p.Peeked(dir.pend, err)
	if c.state != statePeeking {
		return // the session closed it
	}
	if more {
		if err != nil || len(dir.pend) >= int(c.peekMax) {
			l.finish(c, Result{Reason: GaveUp}, false) // a session that asks for bytes that cannot come
		}
		return
	}
	l.clearDue(c)
	dir.pend = append(dir.pend[:0], dir.pend[drop:]...)
	if len(dir.pend) == 0 {
		l.dropPending(dir)
	}
	c.state = stateWaiting
	switch {
	case giveUp:
		l.finish(c, Result{Reason: GaveUp}, false)
	case dial:
		l.dial(c, next)
	}
}

// detach hands a client socket over as a net.Conn. The descriptor count
// goes with it.
func detach(fd int, to func(net.Conn)) {
	f := os.NewFile(uintptr(fd), "client")
	nc, err := net.FileConn(f) // a duplicate; f's descriptor is closed next
	f.Close()
	if err != nil {
		return
	}
	go to(nc)
}

func (l *loop) dial(c *conn, t Target) {
	fd, err := dialSocket(t.Addr)
	if err != nil {
		l.dialFailed(c, err)
		return
	}
	l.e.cfg.addFDs(1)
	c.fd[backend] = int32(fd)
	c.flags[backend] = nagle
	c.dials++
	c.state = stateConnecting
	c.first = t.First
	if err := l.register(c, backend); err != nil {
		l.dialFailed(c, err)
		return
	}
	if t.Timeout > 0 {
		c.connectAt = l.now + int64(t.Timeout)
		l.setDue(c, c.connectAt)
	} else {
		c.connectAt = 0
		l.clearDue(c)
	}
	l.early(c)
}

// dialFailed closes the backend socket that did not connect and asks the
// session what next.
func (l *loop) dialFailed(c *conn, err error) {
	if fd := c.fd[backend]; fd >= 0 {
		sysClose(int(fd))
		l.e.cfg.addFDs(-1)
		c.fd[backend] = -1
	}
	c.connectAt = 0
	l.clearDue(c)
	c.state = stateWaiting
	c.flags[backend] = 0
	next, dial, giveUp := c.sess.DialFailed(err)
	switch {
	case giveUp:
		l.finish(c, Result{Reason: GaveUp}, false)
	case dial:
		l.dial(c, next)
	}
}

// event applies one epoll event to its connection.
func (l *loop) event(slot, tg int32, ev uint32) {
	if slot < 0 || int(slot) >= len(l.chunks)*chunkSize {
		return
	}
	c := l.slot(slot)
	side := int(tg & 1)
	if c.state == stateFree || tg != tag(c, side) {
		return // an event of a socket closed since
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.flags[side] |= readable
	}
	if ev&unix.EPOLLRDHUP != 0 {
		c.flags[side] |= rdhup
	}
	if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		c.flags[side] |= broken
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.flags[side] |= writable
	}
	switch c.state {
	case statePeeking:
		if side == client {
			l.peek(c, c.sess.(Peeker), nil)
		}
	case stateConnecting:
		if side != backend {
			return // the client's bytes wait until the backend is connected
		}
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			// Only now is SO_ERROR worth a call.
			errno, err := unix.GetsockoptInt(int(c.fd[backend]), unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && errno != 0 {
				err = unix.Errno(errno)
			} else if err == nil {
				err = unix.ECONNREFUSED
			}
			l.dialFailed(c, opError("connect", err))
			return
		}
		if ev&unix.EPOLLOUT != 0 {
			l.connected(c)
		}
	case stateOpen:
		if side == client {
			l.pump(c, client)
			l.pump(c, backend) // its pending bytes may now go to the client
		} else {
			l.pump(c, backend)
			l.pump(c, client)
		}
	}
}

// connected starts the forwarding once the backend's EPOLLOUT has said
// the socket is connected: what must go first (a PROXY header) goes in
// one write with the client bytes already read or waiting.
func (l *loop) connected(c *conn) {
	if !l.open(c) {
		return
	}
	if len(c.first) > 0 || len(c.dir[client].pend) > 0 {
		b := l.firstBytes(c)
		l.dropPending(&c.dir[client]) // b holds them now
		if c.flags[client]&readable != 0 && len(b) < len(l.buf) {
			n, ok := l.read(c, client, l.buf[len(b):])
			if !ok {
				return
			}
			b = l.buf[:len(b)+n]
		}
		skip := len(c.first)
		c.first = nil
		if !l.send(c, client, b, skip) {
			return
		}
	}
	l.pumpBoth(c)
}

// early writes what must go first right after the connect call, without
// waiting for EPOLLOUT: on loopback, and wherever the handshake is over
// by then, this saves a wake-up. A write the socket cannot take yet (still
// connecting) leaves everything as it was; a refused one is the dial's
// failure.
func (l *loop) early(c *conn) {
	if len(c.first) == 0 && len(c.dir[client].pend) == 0 {
		return
	}
	b := l.firstBytes(c)
	n, err := l.write(c, backend, b)
	if n <= 0 {
		if err != nil && err != unix.EAGAIN {
			l.dialFailed(c, opError("connect", err))
		}
		return // the bytes stay pending, for this dial or the next
	}
	l.dropPending(&c.dir[client])
	if !l.open(c) {
		return
	}
	skip := len(c.first)
	c.first = nil
	if n > skip {
		l.moved(c, client, n-skip)
	}
	if n < len(b) {
		l.keep(c, client, b[n:], max(skip-n, 0))
		return
	}
	l.pumpBoth(c) // passes the client's end on, if it came with its bytes
}

// firstBytes puts what must go first and the client bytes already read
// in the loop's buffer.
func (l *loop) firstBytes(c *conn) []byte {
	return append(append(l.buf[:0], c.first...), c.dir[client].pend...)
}

// dropPending gives back a direction's pending buffer.
func (l *loop) dropPending(dir *direction) {
	if dir.pend != nil {
		l.putBuf(dir.pend)
		dir.pend = nil
	}
}

// open marks the backend connected and tells the session. It reports
// false if the session closed the connection.
func (l *loop) open(c *conn) bool {
	c.state = stateOpen
	c.connectAt = 0
	c.lastActive = l.now
	c.sess.Connected()
	if c.state != stateOpen {
		return false
	}
	if c.idle > 0 {
		l.setDue(c, l.now+c.idle)
	} else {
		l.clearDue(c)
	}
	return true
}

func (l *loop) pumpBoth(c *conn) {
	l.pump(c, client)
	if c.state == stateOpen {
		l.pump(c, backend)
	}
}

// pump moves what it can in direction d: first what dst could not take
// before, then new bytes from src, up to the fair share.
func (l *loop) pump(c *conn, d int) {
	dir := &c.dir[d]
	if c.state != stateOpen || dir.done || !l.flush(c, d) {
		return
	}
	if dir.eof {
		l.ended(c, d)
		return
	}
	budget := l.e.cfg.FairShare
	for c.flags[d]&readable != 0 {
		if budget <= 0 {
			if !c.queued {
				c.queued = true
				l.ready = append(l.ready, ID{loop: l.index, slot: c.slot, gen: c.gen})
			}
			return
		}
		var n int
		var ok bool
		if dir.bulk {
			n, ok = l.spliceIn(c, d)
		} else {
			n, ok = l.read(c, d, l.buf)
			if ok && n > 0 {
				dir.bulk = n == len(l.buf)
				ok = l.send(c, d, l.buf[:n], 0)
			}
		}
		if !ok {
			return // blocked on dst, or the connection ended
		}
		budget -= n
		if dir.eof {
			l.ended(c, d)
			return
		}
	}
}

// read reads side src into b. A short read means the socket is drained
// (and, if the peer has half-closed, that its stream has ended): no read
// is spent to meet EAGAIN. ok is false if the connection ended.
func (l *loop) read(c *conn, src int, b []byte) (n int, ok bool) {
	for {
		n, err := sysRecv(int(c.fd[src]), b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			c.flags[src] &^= readable
			return 0, true
		case err != nil:
			l.fail(c, src == backend, opError("recvfrom", err))
			return 0, false
		case n == 0:
			c.flags[src] &^= readable
			c.dir[src].eof = true
			return 0, true
		case n < len(b) && c.flags[src]&broken == 0:
			c.flags[src] &^= readable
			if c.flags[src]&rdhup != 0 {
				c.dir[src].eof = true
			}
		}
		return n, true
	}
}

// send writes b, read from side d, to the other side; the bytes it cannot
// take now are kept, and d is not read again until they are written. The
// first skip bytes are not the client's (a PROXY header) and are not
// counted. It reports whether all of b went.
func (l *loop) send(c *conn, d int, b []byte, skip int) bool {
	dst := 1 - d
	n, err := l.write(c, dst, b)
	if n > skip {
		l.moved(c, d, n-skip)
	}
	if n == len(b) {
		return true
	}
	if err != nil && err != unix.EAGAIN {
		l.fail(c, dst == backend, opError("sendto", err))
		return false
	}
	l.keep(c, d, b[n:], max(skip-n, 0))
	return false
}

// keep holds the bytes that direction d's dst could not take, of which
// the first skip are not the client's (a PROXY header), and stops reading
// d until they are written.
func (l *loop) keep(c *conn, d int, rest []byte, skip int) {
	c.flags[1-d] &^= writable
	dir := &c.dir[d]
	dir.pend = append(l.getBuf(), rest...)
	if skip > 0 {
		// Part of the header is still pending: flush counts only the
		// client's bytes when they go. Rare enough to keep simple.
		c.first = dir.pend[:skip]
	}
}

// write writes b to side dst's socket.
func (l *loop) write(c *conn, dst int, b []byte) (int, error) {
	l.beforeSend(c, dst)
	fd := int(c.fd[dst])
	for {
		n, err := sysSend(fd, b)
		if err == unix.EINTR {
			continue
		}
		if n > 0 {
			sentSome(c, dst)
		}
		return max(n, 0), err
	}
}

// beforeSend comes before every write or splice to side dst, and
// sentSome after one that moved bytes. A backend socket is made with
// Nagle's algorithm on and gets TCP_NODELAY before its second send. The
// first is never held back by Nagle (nothing sent earlier waits for an
// acknowledgement), and most short connections send to their backend once,
// so they save the call; every later small write goes out at once, as with
// TCP_NODELAY from the start. A write refused while still connecting does
// not count. Client sockets have it from the listening socket.
func (l *loop) beforeSend(c *conn, dst int) {
	if c.flags[dst]&(nagle|sent) == nagle|sent {
		setNodelay(int(c.fd[dst]))
		c.flags[dst] &^= nagle | sent
	}
}

func sentSome(c *conn, dst int) {
	if c.flags[dst]&nagle != 0 {
		c.flags[dst] |= sent
	}
}

// flush writes what direction d holds for its dst (pending bytes, a
// pipe's contents), and reports whether all of it went.
func (l *loop) flush(c *conn, d int) bool {
	dir := &c.dir[d]
	dst := 1 - d
	if len(dir.pend) > 0 {
		if c.flags[dst]&writable == 0 {
			return false
		}
		n, err := l.write(c, dst, dir.pend)
		skip := 0
		if d == client {
			skip = len(c.first)
		}
		if n > skip {
			l.moved(c, d, n-skip)
			c.first = nil
		} else if n > 0 && skip > 0 {
			c.first = c.first[:skip-n]
		}
		if n < len(dir.pend) {
			if err != nil && err != unix.EAGAIN {
				l.fail(c, dst == backend, opError("sendto", err))
				return false
			}
			c.flags[dst] &^= writable
			dir.pend = append(dir.pend[:0], dir.pend[n:]...)
			return false
		}
		l.putBuf(dir.pend)
		dir.pend = nil
	}
	if p := dir.pipe; p != nil {
		for p.data > 0 {
			if c.flags[dst]&writable == 0 {
				return false
			}
			l.beforeSend(c, dst)
			n, err := sysSplice(int(p.r), int(c.fd[dst]), int(p.data))
			if n > 0 {
				sentSome(c, dst)
				p.data -= int32(n)
				l.moved(c, d, int(n))
			}
			switch {
			case err == unix.EINTR:
			case err == unix.EAGAIN:
				c.flags[dst] &^= writable
				return false
			case err != nil:
				l.fail(c, dst == backend, opError("splice", err))
				return false
			case n == 0:
				l.fail(c, dst == backend, opError("splice", unix.EPIPE))
				return false
			}
		}
		// Drained: the pipe goes back, so an idle connection holds none.
		l.putPipe(p)
		dir.pipe = nil
	}
	return true
}

// spliceIn moves bytes from side d into the direction's pipe, then on to
// dst. It falls back to the buffer when no pipe can be had.
func (l *loop) spliceIn(c *conn, d int) (int, bool) {
	dir := &c.dir[d]
	if dir.pipe == nil {
		if dir.pipe = l.getPipe(); dir.pipe == nil {
			dir.bulk = false
			return 0, true
		}
	}
	p := dir.pipe
	want := int(p.size - p.data)
	for {
		n, err := sysSplice(int(c.fd[d]), int(p.w), want)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			c.flags[d] &^= readable
			dir.bulk = false
			if p.data == 0 {
				l.putPipe(p)
				dir.pipe = nil
			}
			return 0, true
		case err != nil:
			l.fail(c, d == backend, opError("splice", err))
			return 0, false
		case n == 0:
			c.flags[d] &^= readable
			dir.eof = true
		case int(n) < want && c.flags[d]&broken == 0:
			// A bulk stream keeps arriving while the loop moves it: a
			// short splice is not taken for drained (that would cost a
			// wake-up per burst), only EAGAIN is. A short one means the
			// end of the stream, though, if the peer has half-closed.
			if c.flags[d]&rdhup != 0 {
				c.flags[d] &^= readable
				dir.eof = true
			}
			if int(n) < len(l.buf) {
				dir.bulk = false // a small flow again: back to the buffer
				c.flags[d] &^= readable
			}
		}
		p.data += int32(n)
		return int(n), l.flush(c, d)
	}
}

func (l *loop) moved(c *conn, d int, n int) {
	c.lastActive = l.now
	if d == backend {
		c.answered = true
	}
	c.sess.Moved(d == client, n)
}

// ended passes the end of src's stream on to dst, once all its bytes
// have gone: a shutdown of dst's write side, or, if the other direction
// has ended too, the end of the connection.
func (l *loop) ended(c *conn, d int) {
	dir := &c.dir[d]
	if dir.done {
		return
	}
	dir.done = true
	if c.firstEOF == 0 {
		c.firstEOF = ClientEOF
		if d == backend {
			c.firstEOF = BackendEOF
		}
	}
	if c.dir[1-d].done {
		// Both streams ended: close sends the last FIN.
		l.finish(c, Result{Reason: c.firstEOF}, false)
		return
	}
	sysShutdownWrite(int(c.fd[1-d]))
}

// fail ends the connection on a read or write error, with a reset both
// ways so that neither peer takes a broken stream for a whole one.
func (l *loop) fail(c *conn, backendFailed bool, err error) {
	l.finish(c, Result{Reason: Reset, Err: err, BackendFailed: backendFailed}, true)
}

// finish closes c's sockets (with a reset if reset), gives back its
// buffers and pipes and tells the session.
func (l *loop) finish(c *conn, r Result, reset bool) {
	if c.state == stateFree {
		return
	}
	for side := range 2 {
		if fd := int(c.fd[side]); fd >= 0 {
			if reset {
				setLinger0(fd)
			}
			sysClose(fd) // and out of epoll with it: no EPOLL_CTL_DEL
			l.e.cfg.addFDs(-1)
		}
	}
	for d := range 2 {
		dir := &c.dir[d]
		l.dropPending(dir)
		if dir.pipe != nil {
			l.putPipe(dir.pipe)
		}
	}
	r.Answered = c.answered
	sess := c.sess
	l.release(c)
	if sess != nil {
		sess.Closed(r)
	}
}
