package tcplb

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// errParked is returned by a direction's copy when its read deadline has
// passed: the connection's timer asks it to park.
var errParked = errors.New("tcplb: parked")

// End says how a connection ended; it is the "end" field of the access log.
type End string

// The ways a connection ends.
const (
	EndClientClosed  End = "client closed"   // the client's FIN came first; both directions then finished
	EndBackendClosed End = "backend closed"  // the backend's FIN came first; both directions then finished
	EndReset         End = "reset"           // a read or write failed on either side (RST, broken pipe)
	EndIdle          End = "idle timeout"    // no byte moved either way for IdleTimeout
	EndConnectFailed End = "connect failure" // every backend tried refused or timed out
	EndNoBackend     End = "no backend"      // the strategy returned none
	EndShutdown      End = "shutdown"        // closed by Shutdown's deadline or Close
	EndFull          End = "backends full"   // every backend was at its connection limit, for QueueTimeout if set
	EndDrained       End = "drained"         // the backend was drained or removed, and its drain timeout passed
)

// proxyConn is one client connection and, once dialled, its backend
// connection.
type proxyConn struct {
	lb      *Balancer
	s       *settings      // the balancer's settings when the connection was accepted
	pool    *Pool          // s.pool, or the pool of an SNI route
	addr    netip.AddrPort // the client: the peer, or what a trusted PROXY header said; under mu once served
	dest    netip.AddrPort // the address the client connected to, if a PROXY header said
	pending []byte         // client bytes admit read, for the backend first

	heldSlot, heldSource bool // admit took a listener slot, a source count
	sniff                bool // look for a PROXY header in the first bytes copied (an untrusted peer)
	client               net.Conn
	backend              *Backend
	server               net.Conn
	start                time.Time
	dialed               time.Time // when the dial to backend began

	lastActive atomic.Int64 // monoNanos of the last byte moved either way
	answered   atomic.Bool  // the backend has sent a byte
	timer      *time.Timer  // idle timeout and parking; see tick
	canPark    bool
	finished   atomic.Bool

	mu     sync.Mutex
	end    End   // first reason recorded wins
	err    error // the error behind EndReset or EndConnectFailed
	closed bool  // both sockets closed by abort
	live   int   // directions not finished, parked ones included
	up     direction
	down   direction
}

// direction is one half of the forwarding: bytes read from src are written
// to dst.
type direction struct {
	pc           *proxyConn
	src, dst     net.Conn
	eof          End            // how the connection ends if this direction's EOF comes first
	bytes        atomic.Int64   // written to dst; written by the direction's running goroutine, read by Connections
	backendBytes *atomic.Uint64 // the backend's counter for this direction
	writeFailed  bool           // the copy's error came from writing to dst, not reading src
	sniff        bool           // the first bytes from src must not start a PROXY header

	// Guarded by pc.mu.
	sawEOF bool  // src reached EOF
	parked bool  // waiting in the parking lot
	fd     int32 // src's descriptor while parked; the lot's key
}

// moved records n bytes written to dst: for the byte counts and the idle
// timeout. It runs once per chunk, not per byte.
func (d *direction) moved(n int) {
	now := time.Now()
	if d == &d.pc.down && !d.pc.answered.Load() {
		// The backend's first byte: connect time plus its time to answer.
		d.pc.backend.observeLatency(now.Sub(d.pc.dialed))
		d.pc.answered.Store(true)
	}
	d.bytes.Add(int64(n))
	d.backendBytes.Add(uint64(n))
	d.pc.lastActive.Store(monoNanos(now))
}

// handle serves one accepted connection: it dials a backend and starts the
// forwarding. The connection ends in finish, run by whichever direction
// ends last.
func (pc *proxyConn) handle() {
	lb, s := pc.lb, pc.s
	pc.pool = s.pool
	if s.edge != nil {
		if why, err := pc.admit(s.edge); why != "" {
			pc.reject(why, err)
			return
		}
	}
	backend, server, dialed, err := lb.connect(s, pc.pool, pc.addr)
	if err != nil {
		why := EndConnectFailed
		if errors.Is(err, errNoBackend) {
			why, err = EndNoBackend, nil
		} else if errors.Is(err, errFull) {
			why, err = EndFull, nil
		} else if lb.forceCtx.Err() != nil {
			why = EndShutdown
		}
		pc.reject(why, err)
		return
	}
	// A PROXY header, then what admit read of the client's bytes, in one
	// write before anything else. With a header, the client's first bytes
	// that have already arrived go in the same write (one packet, not two:
	// on loopback the second packet cost 4 µs of CPU per connection).
	first := append(pc.proxyHeader(pc.pool.opts.Load().SendProxy), pc.pending...)
	if len(first) > 0 && len(pc.pending) == 0 {
		bp := bufPool.Get().(*[]byte)
		if n := readNow(pc.client, (*bp)[:len(*bp)-len(first)]); n > 0 {
			pc.pending = append(pc.pending, (*bp)[:n]...)
			first = append(first, pc.pending...)
		}
		bufPool.Put(bp)
	}
	// undial gives back the backend connection when the client does not
	// get to use it.
	undial := func() {
		server.Close()
		fds.add(-1)
		release(pc.pool, backend)
	}
	if pc.sniff && len(pc.pending) > 0 { // the first client bytes, read here or by admit
		pc.sniff = false
		if looksLikeProxy(pc.pending) {
			undial()
			lb.countProxyError(reasonUntrusted)
			pc.reject(EndBadProxy, errUntrustedHeader)
			return
		}
	}
	if len(first) > 0 {
		if _, err := server.Write(first); err != nil {
			undial()
			pc.reject(EndReset, err)
			return
		}
	}
	pc.mu.Lock()
	pc.backend, pc.server, pc.dialed = backend, server, dialed
	closed := pc.closed
	if !closed { // under pc.mu, as abort may look at the directions at any time
		pc.up = direction{pc: pc, src: pc.client, dst: server, eof: EndClientClosed, backendBytes: &backend.bytesOut, sniff: pc.sniff}
		pc.down = direction{pc: pc, src: server, dst: pc.client, eof: EndBackendClosed, backendBytes: &backend.bytesIn}
		pc.live = 2
		if n := len(pc.pending); n > 0 {
			pc.up.bytes.Store(int64(n))
			backend.bytesOut.Add(uint64(n))
			pc.pending = nil
		}
	}
	pc.mu.Unlock()
	if closed { // Shutdown's deadline passed while we were dialling
		undial()
		pc.reject(EndShutdown, nil)
		return
	}
	pc.forward()
}

// reject ends a connection that never reached forwarding, recording why
// and counting it.
func (pc *proxyConn) reject(why End, err error) {
	pc.abort(why, false)
	pc.mu.Lock()
	if pc.err == nil {
		pc.err = err
	}
	pc.mu.Unlock()
	pc.lb.countRejected(why)
	fds.add(-1) // the client's socket, closed by abort
	pc.releaseEdge()
	pc.log()
	pc.lb.trackConn(pc, false)
}

// forward copies both directions concurrently, the backend-to-client one on
// this goroutine. A FIN read on one side becomes CloseWrite on the other
// (half-close), and the sockets are closed when both directions have
// finished. Any other read or write error aborts the connection: both sides
// are closed with a reset, so that neither mistakes a broken stream for a
// complete one.
//
// A connection quiet for parkAfter parks: its directions give up their
// goroutines and wait in the parking lot (park_linux.go) until their socket
// is readable again.
func (pc *proxyConn) forward() {
	pc.canPark = parkAfter > 0 && canPark(pc.client, pc.server)
	pc.lastActive.Store(monoNanos(time.Now()))
	if first := pc.nextTick(0); first > 0 {
		pc.timer = time.AfterFunc(first, pc.tick)
	}
	workers.run(pc.up.run)
	pc.down.run()
}

// run copies one direction until EOF or an error, or until it parks.
func (d *direction) run() {
	pc := d.pc
	err := d.copy()
	for err == errParked {
		pc.mu.Lock()
		parked := !pc.closed && d.park() == nil
		d.parked = parked
		pc.mu.Unlock()
		if parked {
			return
		}
		// Closed meanwhile, or the lot refused: carry on here.
		d.src.SetReadDeadline(time.Time{})
		err = d.copy()
	}
	if err == nil { // EOF from src: pass the half-close on
		pc.mu.Lock()
		if pc.end == "" {
			pc.end = d.eof
		}
		d.sawEOF = true
		last := pc.up.sawEOF && pc.down.sawEOF
		pc.mu.Unlock()
		if !last {
			closeWrite(d.dst)
		} // else finish closes both sockets now, and close sends the FIN
	} else if errors.Is(err, errUntrustedHeader) {
		pc.lb.countProxyError(reasonUntrusted)
		pc.abort(EndBadProxy, true)
		pc.setErr(err)
	} else {
		first := pc.abort(EndReset, true)
		pc.setErr(err)
		// Which socket failed: the backend's is src going down, dst going up.
		backendFailed := (d == &pc.down) != d.writeFailed
		if first && backendFailed && !pc.answered.Load() {
			pc.pool.passiveFailure(pc.backend, "reset before the first byte: "+err.Error())
		}
	}
	pc.directionDone()
}

// resume continues a direction taken out of the parking lot.
func (d *direction) resume() {
	pc := d.pc
	pc.mu.Lock()
	d.parked = false
	pc.mu.Unlock()
	d.src.SetReadDeadline(time.Time{})
	if pc.timer != nil {
		pc.timer.Reset(parkAfter)
	}
	d.run()
}

// directionDone counts one direction as finished; the last one finishes
// the connection.
func (pc *proxyConn) directionDone() {
	pc.mu.Lock()
	pc.live--
	last := pc.live == 0
	pc.mu.Unlock()
	if last {
		pc.finish()
	}
}

// finish closes both sockets, writes the access-log line and forgets the
// connection.
func (pc *proxyConn) finish() {
	pc.finished.Store(true)
	if pc.timer != nil {
		pc.timer.Stop()
	}
	pc.client.Close()
	pc.server.Close()
	fds.add(-2)
	release(pc.pool, pc.backend)
	pc.releaseEdge()
	pc.lb.durations.observe(time.Since(pc.start))
	pc.log()
	pc.lb.trackConn(pc, false)
}

// nextTick returns when the connection's timer should next look at it,
// quiet being how long no byte has moved; 0 means not at all.
func (pc *proxyConn) nextTick(quiet time.Duration) time.Duration {
	var next time.Duration
	if idle := pc.s.idle; idle > 0 {
		next = idle - quiet
	}
	if pc.canPark && quiet < parkAfter && (next == 0 || parkAfter-quiet < next) {
		next = parkAfter - quiet
	}
	return next
}

// tick runs on the connection's timer: it closes a connection idle for
// IdleTimeout, asks a connection quiet for parkAfter to park, and sets the
// timer for the next of these.
func (pc *proxyConn) tick() {
	if pc.finished.Load() {
		return
	}
	quiet := time.Duration(monoNanos(time.Now()) - pc.lastActive.Load())
	if idle := pc.s.idle; idle > 0 && quiet >= idle {
		pc.abort(EndIdle, false)
		return
	}
	if pc.canPark && quiet >= parkAfter {
		// A read deadline in the past wakes each running direction, which
		// then parks (copy returns errParked).
		past := time.Unix(1, 0)
		pc.client.SetReadDeadline(past)
		pc.server.SetReadDeadline(past)
	}
	if next := pc.nextTick(quiet); next > 0 {
		pc.timer.Reset(next)
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBuffered is the portable copy loop, through a pooled buffer.
func (d *direction) copyBuffered() error {
	for {
		if done, err := d.copyChunk(); done || err != nil {
			return err
		}
	}
}

// copyChunk moves one read's worth of bytes from d.src to d.dst. It reports
// done at d.src's EOF.
func (d *direction) copyChunk() (done bool, err error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := d.src.Read(*bp)
	if n > 0 && d.sniff {
		d.sniff = false
		if looksLikeProxy((*bp)[:n]) {
			return false, errUntrustedHeader
		}
	}
	if n > 0 {
		if _, werr := d.dst.Write((*bp)[:n]); werr != nil {
			d.writeFailed = true
			return false, werr
		}
		d.moved(n)
	}
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// abort records why the connection ends, if no reason is recorded yet, and
// closes both sockets, which ends both directions. With reset, the sockets
// are closed with SO_LINGER 0 so that each peer sees a reset rather than a
// clean end of stream. It reports whether it closed them, false if an
// earlier abort had.
func (pc *proxyConn) abort(why End, reset bool) bool {
	pc.mu.Lock()
	if pc.end == "" || pc.end == EndClientClosed || pc.end == EndBackendClosed {
		// A half-close followed by a failure or timeout ends by the latter.
		pc.end = why
	}
	if pc.closed {
		pc.mu.Unlock()
		return false
	}
	pc.closed = true
	// A parked direction has no goroutine to see its socket close: take it
	// out of the lot before closing, and count it as finished here.
	var orphans int
	for _, d := range []*direction{&pc.up, &pc.down} {
		if d.parked && d.unpark() {
			d.parked = false
			orphans++
		}
	}
	for _, c := range []net.Conn{pc.client, pc.server} {
		if c == nil {
			continue
		}
		if reset {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
		}
		c.Close()
	}
	pc.mu.Unlock()
	for range orphans {
		pc.directionDone()
	}
	return true
}

// setErr records the error behind the first reset or failed connect.
func (pc *proxyConn) setErr(err error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.err == nil && (pc.end == EndReset || pc.end == EndConnectFailed || pc.end == EndBadProxy) {
		pc.err = err
	}
}

// log writes the connection's access-log line.
func (pc *proxyConn) log() {
	pc.mu.Lock()
	end, err := pc.end, pc.err
	pc.mu.Unlock()
	pc.lb.logConn(pc.clientString(), pc.s, pc.pool, pc.backend, pc.up.bytes.Load(), pc.down.bytes.Load(), pc.start, end, err)
}

// logConn writes one access-log line.
func (lb *Balancer) logConn(client string, s *settings, pool *Pool, b *Backend, up, down int64, start time.Time, end End, err error) {
	al := lb.AccessLog
	if al == nil {
		return
	}
	backend := ""
	if b != nil {
		backend = b.addr
	}
	// The record is built by hand, as slog's docs show for wrappers, with
	// no caller PC: Logger.LogAttrs would walk the stack for one on every
	// connection.
	ctx := context.Background()
	h := al.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	now := time.Now()
	r := slog.NewRecord(now, slog.LevelInfo, "connection", 0)
	r.AddAttrs(
		slog.String("client", client),
		slog.String("listener", s.name),
		slog.String("pool", pool.Name()),
		slog.String("backend", backend),
		slog.Int64("client_bytes", up),
		slog.Int64("backend_bytes", down),
		slog.Duration("duration", now.Sub(start)),
		slog.String("end", string(end)),
	)
	if err != nil {
		r.AddAttrs(slog.String("err", err.Error()))
	}
	h.Handle(ctx, r)
}

// info, goesTo and stop make a proxyConn tracked.

func (pc *proxyConn) info() ConnInfo {
	i := ConnInfo{Start: pc.start}
	pc.mu.Lock() // the directions are set up under it, with the backend
	defer pc.mu.Unlock()
	i.Client = pc.clientString()
	if pc.backend != nil {
		i.Backend = pc.backend.addr
		i.ClientBytes = pc.up.bytes.Load()
		i.BackendBytes = pc.down.bytes.Load()
	}
	return i
}

func (pc *proxyConn) goesTo(b *Backend) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.backend == b
}

func (pc *proxyConn) stop(why End) { pc.abort(why, false) }

// clientString is the client's address for logs: the PROXY header's, if a
// trusted upstream sent one.
func (pc *proxyConn) clientString() string {
	if pc.addr.IsValid() {
		return pc.addr.String()
	}
	return pc.client.RemoteAddr().String()
}
