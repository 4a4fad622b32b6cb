package tcplb

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

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
)

// proxyConn is one client connection and, once dialled, its backend
// connection.
type proxyConn struct {
	lb      *Balancer
	client  net.Conn
	backend *Backend
	server  net.Conn
	start   time.Time
	dialed  time.Time // when the dial to backend began

	lastActive atomic.Int64 // UnixNano of the last byte moved either way
	idleTimer  *time.Timer

	mu     sync.Mutex
	end    End   // first reason recorded wins
	err    error // the error behind EndReset or EndConnectFailed
	closed bool  // both sockets closed by abort
	up     direction
	down   direction
}

// direction is one half of the forwarding: bytes read from src are written
// to dst.
type direction struct {
	pc           *proxyConn
	src, dst     net.Conn
	bytes        int64          // written to dst; only this direction's goroutine touches it
	backendBytes *atomic.Uint64 // the backend's counter for this direction
	done         bool           // src reached EOF; guarded by pc.mu
}

// moved records n bytes written to dst: for the byte counts and the idle
// timeout. It runs once per chunk, not per byte.
func (d *direction) moved(n int) {
	now := time.Now()
	if d.bytes == 0 && d == &d.pc.down {
		// The backend's first byte: connect time plus its time to answer.
		d.pc.backend.observeLatency(now.Sub(d.pc.dialed))
	}
	d.bytes += int64(n)
	d.backendBytes.Add(uint64(n))
	d.pc.lastActive.Store(now.UnixNano())
}

// handle serves one accepted connection from dial to close.
func (pc *proxyConn) handle() {
	lb := pc.lb
	defer lb.trackConn(pc, false)
	backend, server, dialed, err := lb.connect(clientAddr(pc.client))
	if err != nil {
		why := EndConnectFailed
		if errors.Is(err, errNoBackend) {
			why, err = EndNoBackend, nil
		} else if lb.forceCtx.Err() != nil {
			why = EndShutdown
		}
		pc.abort(why, false)
		pc.setErr(err)
		pc.log()
		return
	}
	pc.mu.Lock()
	pc.backend, pc.server, pc.dialed = backend, server, dialed
	closed := pc.closed
	pc.mu.Unlock()
	if closed { // Shutdown's deadline passed while we were dialling
		server.Close()
	} else {
		pc.forward()
	}
	backend.active.Add(-1)
	pc.log()
}

// forward copies both directions concurrently and returns when both are
// done. A FIN read on one side becomes CloseWrite on the other (half-close),
// and the sockets are closed when both directions have finished. Any other
// read or write error aborts the connection: both sides are closed with a
// reset, so that neither mistakes a broken stream for a complete one.
func (pc *proxyConn) forward() {
	pc.up = direction{pc: pc, src: pc.client, dst: pc.server, backendBytes: &pc.backend.bytesOut}
	pc.down = direction{pc: pc, src: pc.server, dst: pc.client, backendBytes: &pc.backend.bytesIn}
	if idle := pc.lb.idleTimeout(); idle > 0 {
		pc.lastActive.Store(time.Now().UnixNano())
		pc.idleTimer = time.AfterFunc(idle, pc.checkIdle)
		defer pc.idleTimer.Stop()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	workers.run(func() {
		defer wg.Done()
		pc.pipe(&pc.up, EndClientClosed)
	})
	pc.pipe(&pc.down, EndBackendClosed)
	wg.Wait()
	pc.client.Close()
	pc.server.Close()
}

// pipe runs one direction until EOF or an error.
func (pc *proxyConn) pipe(d *direction, eof End) {
	err := d.copy()
	if err == nil { // EOF from src: pass the half-close on
		pc.mu.Lock()
		if pc.end == "" {
			pc.end = eof
		}
		d.done = true
		last := pc.up.done && pc.down.done
		pc.mu.Unlock()
		if !last {
			closeWrite(d.dst)
		} // else forward closes both sockets now, and close sends the FIN
		return
	}
	pc.abort(EndReset, true)
	pc.setErr(err)
}

// checkIdle runs when the idle timer fires: it closes the connection if no
// byte has moved for IdleTimeout, and otherwise sets the timer for when
// that would be.
func (pc *proxyConn) checkIdle() {
	idle := pc.lb.idleTimeout()
	quiet := time.Since(time.Unix(0, pc.lastActive.Load()))
	if quiet >= idle {
		pc.abort(EndIdle, false)
		return
	}
	pc.idleTimer.Reset(idle - quiet)
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
	if n > 0 {
		if _, werr := d.dst.Write((*bp)[:n]); werr != nil {
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
// clean end of stream.
func (pc *proxyConn) abort(why End, reset bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.end == "" || pc.end == EndClientClosed || pc.end == EndBackendClosed {
		// A half-close followed by a failure or timeout ends by the latter.
		pc.end = why
	}
	if pc.closed {
		return
	}
	pc.closed = true
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
}

// setErr records the error behind the first reset or failed connect.
func (pc *proxyConn) setErr(err error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.err == nil && (pc.end == EndReset || pc.end == EndConnectFailed) {
		pc.err = err
	}
}

// log writes the connection's access-log line.
func (pc *proxyConn) log() {
	al := pc.lb.AccessLog
	if al == nil {
		return
	}
	pc.mu.Lock()
	end, err := pc.end, pc.err
	pc.mu.Unlock()
	backend := ""
	if pc.backend != nil {
		backend = pc.backend.addr
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
		slog.String("client", pc.client.RemoteAddr().String()),
		slog.String("listener", pc.lb.Name),
		slog.String("pool", pc.lb.Pool.Name()),
		slog.String("backend", backend),
		slog.Int64("client_bytes", pc.up.bytes),
		slog.Int64("backend_bytes", pc.down.bytes),
		slog.Duration("duration", now.Sub(pc.start)),
		slog.String("end", string(end)),
	)
	if err != nil {
		r.AddAttrs(slog.String("err", err.Error()))
	}
	h.Handle(ctx, r)
}
