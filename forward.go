package tcplb

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
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

	mu     sync.Mutex
	end    End   // first reason recorded wins
	err    error // the error behind EndReset or EndConnectFailed
	closed bool  // both sockets closed by abort
	up     direction
	down   direction
}

// direction is one half of the forwarding: bytes read from src are written
// to dst. Its idle bookkeeping is guarded by proxyConn.mu.
type direction struct {
	src, dst net.Conn
	bytes    int64
	// No byte moved in this direction between quietFrom and quietUntil.
	// A finished direction is quiet from its end on, for ever.
	quietFrom, quietUntil time.Time
	done                  bool
}

// handle serves one accepted connection from dial to close.
func (pc *proxyConn) handle() {
	lb := pc.lb
	defer lb.trackConn(pc, false)
	backend, server, err := lb.connect(clientAddr(pc.client))
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
	pc.backend, pc.server = backend, server
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
	now := time.Now()
	pc.up = direction{src: pc.client, dst: pc.server, quietFrom: now, quietUntil: now}
	pc.down = direction{src: pc.server, dst: pc.client, quietFrom: now, quietUntil: now}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pc.pipe(&pc.up, EndClientClosed, &pc.backend.bytesOut)
	}()
	pc.pipe(&pc.down, EndBackendClosed, &pc.backend.bytesIn)
	wg.Wait()
	pc.client.Close()
	pc.server.Close()
}

type counter interface{ Add(uint64) uint64 }

// pipe runs one direction until EOF or an error. With an idle timeout it
// copies in windows of an eighth of the timeout: a read deadline ends each
// window, and the bytes it moved tell whether the direction was quiet. The
// read deadline only stops the copy while it waits for data, so no byte is
// lost between windows, and the kernel's splice path is kept throughout
// because dst and src are the bare *net.TCPConn values.
func (pc *proxyConn) pipe(d *direction, eof End, backendBytes counter) {
	idle := pc.lb.idleTimeout()
	window := idle / 8
	for {
		if idle > 0 {
			d.src.SetReadDeadline(time.Now().Add(window))
		}
		n, err := copyConn(d.dst, d.src)
		d.bytes += n
		backendBytes.Add(uint64(n))
		if err == nil { // EOF from src: pass the half-close on
			pc.finish(d, eof)
			closeWrite(d.dst)
			return
		}
		if idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			if pc.stillActive(d, n > 0, idle) {
				continue
			}
			pc.abort(EndIdle, false)
			return
		}
		pc.abort(EndReset, true)
		pc.setErr(err)
		return
	}
}

// copyConn copies from src to dst until EOF or an error. Between two
// *net.TCPConn, ReadFrom takes the kernel's splice path on Linux.
func copyConn(dst, src net.Conn) (int64, error) {
	if rf, ok := dst.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(dst, src)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// finish marks d as done after a clean EOF.
func (pc *proxyConn) finish(d *direction, eof End) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.end == "" {
		pc.end = eof
	}
	d.done = true
	d.quietFrom = time.Now()
}

// stillActive records one finished window of d and reports whether the
// connection is still within its idle timeout: false when both directions
// have been confirmed quiet over a common stretch of at least idle.
func (pc *proxyConn) stillActive(d *direction, moved bool, idle time.Duration) bool {
	now := time.Now()
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if moved {
		d.quietFrom = now
	}
	d.quietUntil = now
	from, until := pc.up.quietFrom, pc.up.quietUntil
	if pc.up.done {
		until = now
	}
	from = later(from, pc.down.quietFrom)
	if !pc.down.done {
		until = earlier(until, pc.down.quietUntil)
	}
	return until.Sub(from) < idle
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
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
	attrs := []slog.Attr{
		slog.String("client", pc.client.RemoteAddr().String()),
		slog.String("listener", pc.lb.Name),
		slog.String("pool", pc.lb.Pool.Name()),
		slog.String("backend", backend),
		slog.Int64("client_bytes", pc.up.bytes),
		slog.Int64("backend_bytes", pc.down.bytes),
		slog.Duration("duration", time.Since(pc.start)),
		slog.String("end", string(end)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	al.LogAttrs(context.Background(), slog.LevelInfo, "connection", attrs...)
}
