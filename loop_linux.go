package tcplb

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcplb/tcplb/internal/evloop"
	"github.com/tcplb/tcplb/internal/proxyproto"
	"github.com/tcplb/tcplb/internal/sni"
	"golang.org/x/sys/unix"
)

// This file is one connection's life on the event-loop engine
// (internal/evloop), as policy: the engine accepts, dials, moves bytes and
// keeps the timers; it asks loopHandler.Accept what to do with each new
// client, and tells the connection's loopConn what happened. In order:
// Accept admits the client (Edge's checks that need no bytes) and picks a
// backend; the engine dials it (DialFailed picks the next when it fails);
// Connected, Moved as bytes go; Closed ends it, writes the access-log line
// and forgets it. What could block (waiting in a queue for a free backend
// or listener slot, resolving a backend's host name) runs on a goroutine of
// its own, which then asks the engine to dial or close. Edge checks that
// read the client's first bytes (PROXY headers, SNI) have the engine peek
// at them (Peeked); an untrusted peer of a PROXY listener is handed to the
// goroutine engine (goroutinesFor).

// loops is the process's event-loop engine, shared by every balancer
// with EngineEpoll; started on first use.
var loops struct {
	sync.Mutex
	n   int
	e   *evloop.Engine
	err error
}

// SetEventLoops sets the number of event loops of EngineEpoll; 0 (the
// default) means one per GOMAXPROCS. It must be called before the first
// balancer with EngineEpoll serves; later it returns an error. A loop waits
// in epoll_wait itself only when GOMAXPROCS is above the number of loops
// (the daemon runs one P more than it has loops); otherwise it waits in Go's
// poller, which costs two system calls more per wake-up.
func SetEventLoops(n int) error {
	loops.Lock()
	defer loops.Unlock()
	if loops.e != nil {
		return errors.New("tcplb: SetEventLoops after the event loops started")
	}
	if n < 0 {
		return errors.New("tcplb: SetEventLoops: negative count")
	}
	loops.n = n
	return nil
}

// EventLoopConnections returns how many client connections each event
// loop of EngineEpoll has accepted, by loop index, or nil before the loops
// start (and on systems without them): how the loops share the work.
func EventLoopConnections() []uint64 {
	loops.Lock()
	e := loops.e
	loops.Unlock()
	if e == nil {
		return nil
	}
	return e.Accepted()
}

// eventLoops returns the process's engine, started on first use.
func eventLoops(log func(msg string, args ...any)) (*evloop.Engine, error) {
	loops.Lock()
	defer loops.Unlock()
	if loops.e != nil || loops.err != nil {
		return loops.e, loops.err
	}
	readFdLimit()
	loops.e, loops.err = evloop.New(evloop.Config{
		Loops: loops.n,
		FDs:   func(n int) { fds.add(int64(n)) },
		Gate: func() <-chan struct{} {
			wait := fds.full()
			if wait != nil && fds.warned.CompareAndSwap(false, true) {
				log("near the descriptor limit: accepting only as connections close",
					"in_use", fds.inUse.Load(), "mark", fds.high.Load())
			}
			return wait
		},
	})
	return loops.e, loops.err
}

// serveLoop serves ln on the event loops until the balancer stops
// accepting. It reports handled false, and does nothing, if ln is not a
// TCP listener whose socket the engine can take.
//
// The engine takes ln's socket over: it accepts on a duplicate and closes
// ln, so that Go's poller stops watching the socket (it would be woken by
// every new connection too). ln's Addr still answers.
func (lb *Balancer) serveLoop(ln net.Listener) (handled bool, err error) {
	local, ok := ln.Addr().(*net.TCPAddr)
	sc, ok2 := ln.(syscall.Conn)
	if !ok || !ok2 {
		return false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, nil
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		return false, nil
	}
	e, err := eventLoops(lb.logger().Warn)
	if err != nil {
		unix.Close(fd)
		return true, err
	}
	h := &loopHandler{lb: lb, e: e, local: local.AddrPort()}
	if h.local.Addr().IsUnspecified() {
		h.local = netip.AddrPort{} // ask the socket per connection, if a PROXY header needs it
	}
	// Under lb.mu, so that StopAccepting either sees the engine's
	// listener (and waits for its socket to close) or came first.
	lb.mu.Lock()
	if lb.closing.Load() {
		lb.mu.Unlock()
		unix.Close(fd)
		return true, ErrBalancerClosed
	}
	el, err := e.Serve(fd, h)
	if err != nil {
		lb.mu.Unlock()
		unix.Close(fd)
		return true, err
	}
	lb.stopLoops = append(lb.stopLoops, func() { el.Stop(); <-el.Done() })
	lb.mu.Unlock()
	ln.Close()
	<-lb.stop // StopAccepting stops el and waits for its socket to close
	<-el.Done()
	return true, ErrBalancerClosed
}

// loopHandler decides for each client a listener's loops accept.
type loopHandler struct {
	lb    *Balancer
	e     *evloop.Engine
	local netip.AddrPort // the listener's address; invalid if unspecified
}

// Accept runs on a loop: admit, pick, dial, and nothing that blocks.
func (h *loopHandler) Accept(id evloop.ID, client netip.AddrPort) evloop.Verdict {
	lb := h.lb
	lb.accepted.Add(1)
	s := lb.cur.Load()
	if e := s.edge; e != nil && goroutinesFor(e, s, lb, client) {
		return evloop.Verdict{Detach: func(c net.Conn) { lb.serveConn(c, s) }}
	}
	lc := &loopConn{lb: lb, h: h, id: id, s: s, pool: s.pool, addr: client, start: time.Now(), dest: h.local}
	if !lc.dest.IsValid() && s.pool.opts.Load().SendProxy != ProxyNone {
		lc.dest = h.e.LocalAddr(id) // a wildcard listener: the address this client reached
	}
	if !lb.trackConn(lc, true) {
		return evloop.Verdict{} // forced shutdown
	}
	if e := s.edge; e != nil {
		if e.ProxyProtocol != nil || e.SNI != nil {
			return lc.admitPeeking(e)
		}
		if why, wait := lc.admit(e); wait {
			go lc.admitSlow(e)
			return lc.waiting()
		} else if why != "" {
			lc.reject(why, nil)
			return evloop.Verdict{}
		}
	}
	t, act := lc.next(nil)
	switch act {
	case actDial:
		return evloop.Verdict{Session: lc, Dial: true, Target: t, Idle: s.idle}
	case actWait:
		return lc.waiting()
	}
	lc.reject(lc.end, lc.err)
	return evloop.Verdict{}
}

// loopConn is the policy state of one connection on the event loops.
type loopConn struct {
	lb    *Balancer
	h     *loopHandler
	id    evloop.ID
	s     *settings
	pool  *Pool
	addr  netip.AddrPort
	dest  netip.AddrPort // the address the client connected to, for PROXY headers
	start time.Time

	// mu guards what a goroutine that waits for the connection (queue,
	// name lookup) shares with the loop's Closed, which may come first.
	mu   sync.Mutex
	done bool // Closed has run

	// backend is the one dialled or connected, counted in its active
	// connections; read by drains and Connections too.
	backend atomic.Pointer[Backend]
	tried   []*Backend // failed dials, not picked again
	passed  *Backend   // a slow-starting backend passed over
	dialed  time.Time
	up      atomic.Int64
	down    atomic.Int64

	heldSlot, heldSource bool
	phase                int // what Peeked reads: phaseProxy, phaseHello
	skip                 int // bytes of the PROXY header, before the ClientHello
	answered             bool
	connected            bool
	end                  End   // why, when the connection is given up before forwarding
	err                  error // and the error behind it
	stopWhy              atomic.Pointer[End]
}

// Actions of next.
const (
	actDial   = iota // dial the target
	actWait          // a goroutine waits (queue, name lookup), then dials or closes
	actGiveUp        // lc.end says why
)

func (lc *loopConn) waiting() evloop.Verdict {
	return evloop.Verdict{Session: lc, Idle: lc.s.idle}
}

// admit runs the Edge checks that need none of the client's bytes,
// without blocking. wait reports that the listener is full and the client
// may queue for a slot: admitSlow does that on a goroutine.
func (lc *loopConn) admit(e *edgeState) (why End, wait bool) {
	lb := lc.lb
	if e.MaxConns > 0 {
		if lb.slotQueue.waiting() || !incrementBelow(&lb.slots, int64(e.MaxConns)) {
			if lc.s.queue > 0 {
				return "", true
			}
			return EndListenerFull, false
		}
		lc.heldSlot = true
	}
	return lc.admitRest(e), false
}

func (lc *loopConn) admitRest(e *edgeState) End {
	return lc.lb.admitClient(e, lc.addr.Addr(), &lc.heldSource)
}

// admitSlow waits in the listener's queue, then goes on as Accept would.
func (lc *loopConn) admitSlow(e *edgeState) {
	lb := lc.lb
	if !lb.acquireSlot(lc.s, e.MaxConns) {
		lc.giveUp(EndListenerFull, nil)
		return
	}
	lc.mu.Lock()
	if lc.done {
		lc.mu.Unlock()
		lb.slots.Add(-1)
		lb.slotQueue.wakeOne()
		return
	}
	lc.heldSlot = true
	why := lc.admitRest(e)
	lc.mu.Unlock()
	if why != "" {
		lc.giveUp(why, nil)
		return
	}
	lc.resume(nil)
}

// next picks the backend to dial after the failure err (nil at first),
// skipping full and (with the ramp's probability) slow-starting backends
// as tryConnect does. It never blocks: when every backend is full and the
// client may queue, or the backend needs a name lookup, it starts a
// goroutine that waits and returns actWait.
func (lc *loopConn) next(err error) (evloop.Target, int) {
	pool := lc.pool
	if lc.lb.forceCtx.Err() != nil {
		lc.end, lc.err = EndShutdown, nil
		return evloop.Target{}, actGiveUp
	}
	if !pool.queue.waiting() || lc.s.queue <= 0 {
		b, full := lc.pick()
		switch {
		case b != nil:
			return lc.target(b)
		case !full || lc.s.queue <= 0:
			lc.end, lc.err = EndNoBackend, nil
			if full {
				lc.end = EndFull
			} else if err != nil {
				lc.end, lc.err = EndConnectFailed, err
			}
			return evloop.Target{}, actGiveUp
		}
	}
	go lc.resume(err)
	return evloop.Target{}, actWait
}

// pick asks the strategy for a backend not yet tried and takes a
// connection slot on it. full reports that the only ones left were at
// their limit.
func (lc *loopConn) pick() (b *Backend, full bool) {
	candidates := lc.pool.Available()
	for _, t := range lc.tried {
		candidates = without(candidates, t)
	}
	return pickAcquire(lc.pool, lc.addr, candidates, &lc.passed)
}

// target makes the dial of b: its address (a name is looked up on a
// goroutine) and the PROXY header the pool sends.
func (lc *loopConn) target(b *Backend) (evloop.Target, int) {
	lc.backend.Store(b)
	lc.dialed = time.Now()
	return lc.dialOf(b)
}

func (lc *loopConn) dialOf(b *Backend) (evloop.Target, int) {
	ap := b.ap
	if !ap.IsValid() {
		go lc.lookup(b)
		return evloop.Target{}, actWait
	}
	return evloop.Target{Addr: ap, Timeout: lc.s.connect, First: lc.header()}, actDial
}

// resume is next on a goroutine: it may wait in the pool's queue for a
// backend under its limit, and ends with a dial or a close.
func (lc *loopConn) resume(err error) {
	var b *Backend
	lc.pool.queue.take(lc.s.queue, lc.lb.forceCtx.Done(), func() bool {
		var full bool
		b, full = lc.pick()
		return b != nil || !full
	})
	if b == nil {
		why := EndNoBackend
		switch {
		case lc.lb.forceCtx.Err() != nil:
			why, err = EndShutdown, nil
		case err != nil:
			why = EndConnectFailed
		case lc.pool.queue.waiting() || len(lc.pool.Available()) > 0:
			why = EndFull
		}
		lc.giveUp(why, err)
		return
	}
	if !lc.adopt(b) {
		return
	}
	if t, act := lc.dialOf(b); act == actDial {
		lc.h.e.Dial(lc.id, t)
	}
}

// adopt makes b, picked on a waiting goroutine, the connection's backend,
// unless the connection was closed meanwhile: then b is given back.
func (lc *loopConn) adopt(b *Backend) bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.done {
		release(lc.pool, b)
		return false
	}
	lc.backend.Store(b)
	lc.dialed = time.Now()
	return true
}

// lookup resolves b's host name off the loop, then dials, or counts the
// failure as a failed dial and goes on with the next backend.
func (lc *loopConn) lookup(b *Backend) {
	host, port, _ := net.SplitHostPort(b.addr)
	ctx, cancel := context.WithTimeout(lc.lb.forceCtx, lc.s.connect)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(ips) > 0 {
		ap, perr := netip.ParseAddrPort(net.JoinHostPort(ips[0].Unmap().String(), port))
		if perr == nil {
			lc.h.e.Dial(lc.id, evloop.Target{Addr: ap, Timeout: lc.s.connect - time.Since(lc.dialed), First: lc.header()})
			return
		}
		err = perr
	} else if err == nil {
		err = errors.New("no address")
	}
	err = &net.OpError{Op: "dial", Net: "tcp", Err: err}
	lc.mu.Lock()
	if lc.done {
		lc.mu.Unlock()
		return
	}
	lc.failed(err)
	lc.mu.Unlock()
	lc.resume(err)
}

// giveUp closes a waiting connection from its goroutine.
func (lc *loopConn) giveUp(why End, err error) {
	lc.mu.Lock()
	if !lc.done {
		lc.end, lc.err = why, err
	}
	lc.mu.Unlock()
	lc.stop(why)
}

// header returns the PROXY header the pool sends, or nil.
func (lc *loopConn) header() []byte {
	v := lc.pool.opts.Load().SendProxy
	if v == ProxyNone {
		return nil
	}
	return proxyHeader(v, lc.addr, lc.dest)
}

// failed counts a failed dial of the backend.
func (lc *loopConn) failed(err error) {
	b := lc.backend.Swap(nil)
	release(lc.pool, b)
	b.connectErrors.Add(1)
	lc.tried = append(lc.tried, b)
	lc.lb.logger().Warn("backend connect failed", "listener", lc.s.name, "pool", lc.pool.Name(), "backend", b.addr, "err", err)
	if lc.lb.forceCtx.Err() == nil {
		lc.pool.passiveFailure(b, "connect: "+err.Error())
	}
}

// The evloop.Session methods, called on the connection's loop.

func (lc *loopConn) Connected() {
	b := lc.backend.Load()
	lc.connected = true
	b.total.Add(1)
	b.connectTime.observe(time.Since(lc.dialed))
}

func (lc *loopConn) DialFailed(err error) (evloop.Target, bool, bool) {
	err = &net.OpError{Op: "dial", Net: "tcp", Err: err}
	lc.failed(err)
	t, act := lc.next(err)
	return t, act == actDial, act == actGiveUp
}

func (lc *loopConn) Moved(up bool, n int) {
	b := lc.backend.Load()
	if up {
		lc.up.Add(int64(n))
		b.bytesOut.Add(uint64(n))
		return
	}
	if !lc.answered {
		// The backend's first byte: connect time plus its time to answer.
		lc.answered = true
		b.observeLatency(time.Since(lc.dialed))
	}
	lc.down.Add(int64(n))
	b.bytesIn.Add(uint64(n))
}

func (lc *loopConn) Closed(r evloop.Result) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.done = true
	end := lc.end
	var err error
	switch r.Reason {
	case evloop.ClientEOF:
		end = EndClientClosed
	case evloop.BackendEOF:
		end = EndBackendClosed
	case evloop.Reset:
		end, err = EndReset, r.Err
		if r.BackendFailed && !r.Answered && lc.connected {
			lc.pool.passiveFailure(lc.backend.Load(), "reset before the first byte: "+r.Err.Error())
		}
	case evloop.Idle:
		end = EndIdle
	case evloop.Closed:
		if w := lc.stopWhy.Load(); w != nil && lc.end == "" {
			end = *w
		}
		err = lc.err
	case evloop.GaveUp:
		err = lc.err
	}
	if b := lc.backend.Load(); b != nil { // connected, or dialling when it was closed
		release(lc.pool, b)
	}
	if lc.connected {
		lc.lb.durations.observe(time.Since(lc.start))
	} else {
		lc.lb.countRejected(end)
	}
	lc.finish(end, err)
}

// reject ends a connection refused in Accept, before the engine keeps it.
func (lc *loopConn) reject(why End, err error) {
	lc.lb.countRejected(why)
	lc.finish(why, err)
}

func (lc *loopConn) finish(end End, err error) {
	lc.lb.releaseEdge(&lc.heldSlot, &lc.heldSource, lc.addr.Addr())
	lc.lb.logConn(lc.addr.String(), lc.s, lc.pool, lc.backend.Load(), lc.up.Load(), lc.down.Load(), lc.start, end, err)
	lc.lb.trackConn(lc, false)
}

// info, goesTo and stop make a loopConn tracked.

func (lc *loopConn) info() ConnInfo {
	lc.mu.Lock() // Peeked may change addr
	i := ConnInfo{Client: lc.addr.String(), Start: lc.start}
	lc.mu.Unlock()
	if b := lc.backend.Load(); b != nil {
		i.Backend = b.addr
		i.ClientBytes, i.BackendBytes = lc.up.Load(), lc.down.Load()
	}
	return i
}

func (lc *loopConn) goesTo(b *Backend) bool { return lc.backend.Load() == b }

func (lc *loopConn) stop(why End) {
	lc.stopWhy.CompareAndSwap(nil, &why)
	lc.h.e.Close(lc.id, false)
}

// goroutinesFor reports whether a new client of a listener with edge
// settings is served by the goroutine engine: a PROXY listener's untrusted
// peers (their first bytes are checked as they are copied, which the loops
// do not do yet), and any client that would wait in the listener's queue
// before its first bytes are read.
func goroutinesFor(e *edgeState, s *settings, lb *Balancer, client netip.AddrPort) bool {
	if e.ProxyProtocol == nil && e.SNI == nil {
		return false
	}
	if e.ProxyProtocol != nil && !inPrefixes(e.ProxyProtocol.Trusted, client.Addr()) {
		return true
	}
	return e.MaxConns > 0 && s.queue > 0 && (lb.slotQueue.waiting() || lb.slots.Load() >= int64(e.MaxConns))
}

// The phases of reading a client's first bytes on the loop.
const (
	phaseProxy = iota + 1 // a trusted upstream's PROXY header
	phaseHello            // a TLS ClientHello, for SNI routing
)

// admitPeeking starts the Edge checks that read the client's first bytes:
// the listener limit first, then the PROXY header (Peeked goes on with the
// access lists, the per-source limits and the ClientHello).
func (lc *loopConn) admitPeeking(e *edgeState) evloop.Verdict {
	lb := lc.lb
	if e.MaxConns > 0 {
		if !incrementBelow(&lb.slots, int64(e.MaxConns)) {
			lc.reject(EndListenerFull, nil)
			return evloop.Verdict{}
		}
		lc.heldSlot = true
	}
	v := evloop.Verdict{Session: lc, Peek: true, Idle: lc.s.idle}
	if e.ProxyProtocol != nil {
		lc.phase = phaseProxy
		v.PeekTimeout, v.PeekMax = e.proxyTimeout, proxyproto.MaxHeaderLen
		if e.SNI != nil {
			// One deadline for both reads: the header's and the hello's.
			v.PeekTimeout += e.helloTimeout
			v.PeekMax += e.maxHello
		}
		return v
	}
	if why := lc.admitRest(e); why != "" {
		lc.reject(why, nil)
		return evloop.Verdict{}
	}
	lc.phase = phaseHello
	v.PeekTimeout, v.PeekMax = e.helloTimeout, e.maxHello
	return v
}

// errNeedMore is what a peekReader returns at the end of the bytes read so
// far, while more may come.
var errNeedMore = errors.New("need more bytes")

// peekReader reads the bytes peeked so far, then err: why no more will
// come, or errNeedMore.
type peekReader struct {
	b   []byte
	err error
}

func (r *peekReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, r.err
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func peekReaderOf(b []byte, err error) *peekReader {
	switch {
	case err == nil:
		err = errNeedMore
	case errors.Is(err, evloop.ErrPeekTimeout):
		err = os.ErrDeadlineExceeded // what the parsers take for a timeout
	}
	return &peekReader{b: b, err: err}
}

// Peeked implements evloop.Peeker: the Edge checks on the client's first
// bytes, then the pick.
func (lc *loopConn) Peeked(b []byte, err error) (more bool, drop int, next evloop.Target, dial, giveUp bool) {
	e := lc.s.edge
	if lc.phase == phaseProxy {
		if more, why, perr := lc.peekProxy(e, b, err); more {
			return true, 0, next, false, false
		} else if why != "" {
			lc.end, lc.err = why, perr
			return false, 0, next, false, true
		}
		if why := lc.admitRest(e); why != "" {
			lc.end = why
			return false, lc.skip, next, false, true
		}
		if e.SNI == nil {
			return lc.peekedPick(lc.skip)
		}
		lc.phase = phaseHello
	}
	name, _, serr := sni.ReadServerName(peekReaderOf(b[lc.skip:], err), e.maxHello)
	if errors.Is(serr, errNeedMore) {
		return true, 0, next, false, false
	}
	pool, why, rerr := e.route(name, serr)
	if why != "" {
		lc.end, lc.err = why, rerr
		return false, lc.skip, next, false, true
	}
	if pool != nil {
		lc.pool = pool
	}
	return lc.peekedPick(lc.skip)
}

// peekProxy reads a trusted upstream's header from b, as readProxyHeader
// does on the goroutine engine.
func (lc *loopConn) peekProxy(e *edgeState, b []byte, err error) (more bool, why End, perr error) {
	var scratch [proxyproto.MaxHeaderLen]byte
	h, rest, rerr := proxyproto.Read(peekReaderOf(b, err), scratch[:])
	switch {
	case errors.Is(rerr, errNeedMore):
		return true, "", nil
	case lc.lb.proxyRefused(rerr, e.ProxyProtocol.Optional):
		return false, EndBadProxy, rerr
	case rerr != nil: // no header, and it is optional
		lc.skip = 0
		return false, "", nil
	}
	lc.skip = len(b) - len(rest)
	if !h.Local {
		lc.mu.Lock()
		lc.addr, lc.dest = h.Source, h.Dest
		lc.mu.Unlock()
	}
	return false, "", nil
}

// peekedPick picks the backend once the first bytes have been looked at.
func (lc *loopConn) peekedPick(drop int) (bool, int, evloop.Target, bool, bool) {
	if !lc.dest.IsValid() && lc.pool.opts.Load().SendProxy != ProxyNone {
		lc.dest = lc.h.e.LocalAddr(lc.id)
	}
	t, act := lc.next(nil)
	return false, drop, t, act == actDial, act == actGiveUp
}
