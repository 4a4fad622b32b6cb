//go:build linux

package evloop

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Config is an engine's settings. The zero value is usable.
type Config struct {
	// Loops is the number of event loops; 0 means runtime.GOMAXPROCS(0).
	Loops int

	// BufSize is the size of each loop's read buffer and of the
	// per-connection buffers that hold what a write could not take. 0
	// means DefaultBufSize.
	BufSize int

	// FairShare bounds the bytes a loop moves for one direction of one
	// connection before it serves the others that are ready; 0 means
	// DefaultFairShare, one pipe's worth (1 MiB): measured on lbbench's
	// upload, a 256 KiB share cost 0.34 CPU-seconds per GB against 0.25
	// for 4 MiB, and a share above a pipe only lengthens the turn.
	FairShare int

	// FDs, if non-nil, is told of every descriptor the engine opens for a
	// connection (backend sockets, pipes; +n) and closes (-n), client
	// sockets included, so that the caller can keep a descriptor budget.
	FDs func(delta int)

	// Gate, if non-nil, is asked before each accept: a non-nil channel
	// means "not now" (the descriptor budget is spent), and the loops stop
	// watching their listening sockets until it is closed, so that
	// clients wait in the kernel's backlog.
	Gate func() <-chan struct{}
}

// Defaults for Config's zero fields.
const (
	DefaultBufSize   = 16 << 10
	DefaultFairShare = 1 << 20
)

func (c *Config) addFDs(n int) {
	if c.FDs != nil {
		c.FDs(n)
	}
}

// Engine is a set of event loops. Its methods are safe for concurrent use.
type Engine struct {
	cfg   Config
	loops []*loop

	// nodelayInherited reports whether accepted sockets inherit
	// TCP_NODELAY from their listening socket (Linux does): then accept
	// needs no setsockopt of its own.
	nodelayInherited bool
}

// New starts an engine's loops.
func New(cfg Config) (*Engine, error) {
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.BufSize <= 0 {
		cfg.BufSize = DefaultBufSize
	}
	if cfg.FairShare <= 0 {
		cfg.FairShare = DefaultFairShare
	}
	e := &Engine{cfg: cfg, nodelayInherited: nodelayInherits()}
	for i := range cfg.Loops {
		l, err := newLoop(e, uint16(i))
		if err != nil {
			e.Stop()
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	// A loop blocks in epoll_wait only if a P is left for the rest
	// of the process; see loop.run and loop.runBlocking.
	blocking := runtime.GOMAXPROCS(0) > len(e.loops) && os.Getenv("EVLOOP_PARK") == ""
	for _, l := range e.loops {
		if blocking {
			go l.runBlocking()
		} else {
			go l.run()
		}
	}
	return e, nil
}

// Stop stops the loops; the connections still open are closed (their
// sessions told). Callers stop their listeners first.
func (e *Engine) Stop() {
	for _, l := range e.loops {
		l.post(func(l *loop) { l.stopped = true })
	}
}

// Accepted returns how many client connections each loop has accepted,
// by loop index: how the loops share the listening sockets' work.
func (e *Engine) Accepted() []uint64 {
	n := make([]uint64, len(e.loops))
	for i, l := range e.loops {
		n[i] = l.accepted.Load()
	}
	return n
}

// ID names one connection of an engine. The zero ID names none. An ID
// stays valid after its connection ends: operations on it do nothing.
type ID struct {
	loop uint16
	slot int32
	gen  uint32
}

// Target is a backend to dial.
type Target struct {
	Addr    netip.AddrPort
	Timeout time.Duration // connect timeout; 0 means none
	// First is written to the backend before any client byte, in the
	// same write as the client bytes already waiting (a PROXY header).
	First []byte
}

// Verdict is what a Handler decides for a new client.
type Verdict struct {
	// Session receives the connection's events. If nil (and Detach is
	// nil), the client socket is closed at once.
	Session Session
	// Dial, if true, dials Target at once; otherwise the connection waits
	// (its client socket watched, not read) until Engine.Dial or
	// Engine.Close.
	Dial   bool
	Target Target
	// Idle closes the connection when no byte has moved either way for
	// this long, once both sockets are open; 0 means never.
	Idle time.Duration
	// Detach, if non-nil, takes the client socket off the engine: it is
	// made a net.Conn and passed to Detach on a new goroutine.
	Detach func(net.Conn)
	// Peek, if true (Session must be a Peeker; Dial is ignored), reads
	// the client's first bytes before any dial and hands them to
	// Peeker.Peeked, for up to PeekTimeout (0: no limit) and PeekMax
	// bytes.
	Peek        bool
	PeekTimeout time.Duration
	PeekMax     int
}

// Peeker is a Session that looks at the client's first bytes before the
// dial (Verdict.Peek): a PROXY header, a TLS ClientHello.
type Peeker interface {
	Session
	// Peeked is given every client byte read so far, and why no more
	// will come: io.EOF (the client ended its stream), ErrPeekTimeout,
	// or nil. It returns more to be called again with more bytes (it is
	// when err is nil and fewer than PeekMax bytes have come); otherwise
	// the first drop bytes are discarded (a header that is not the
	// client's data) and the rest go to the backend first, and it decides
	// as DialFailed does: a target and dial, or wait, or give up.
	Peeked(b []byte, err error) (more bool, drop int, next Target, dial, giveUp bool)
}

// ErrPeekTimeout is Peeked's error when Verdict.PeekTimeout passed.
var ErrPeekTimeout = errors.New("peek timeout")

// Handler decides for each accepted client. Accept runs on a loop and
// must not block.
type Handler interface {
	Accept(id ID, client netip.AddrPort) Verdict
}

// Session is the policy side of one connection. The engine calls its
// methods on the connection's loop, one at a time; they must not block.
type Session interface {
	// Connected reports the backend socket connected.
	Connected()
	// DialFailed reports that the dial of the last target failed or
	// timed out (ErrConnectTimeout). It returns the next target to try,
	// and dial true; or dial false to wait for Engine.Dial or
	// Engine.Close (as after Verdict without Dial); or give up true, and
	// the connection is closed.
	DialFailed(err error) (next Target, dial, giveUp bool)
	// Moved reports n bytes written to the backend (up) or to the
	// client (!up).
	Moved(up bool, n int)
	// Closed reports the connection closed, both sockets; it is the
	// last call.
	Closed(r Result)
}

// Reason says how a connection ended.
type Reason uint8

// The reasons, in Result.
const (
	ClientEOF  Reason = iota + 1 // both directions ended, the client's first
	BackendEOF                   // both directions ended, the backend's first
	Reset                        // a read or write failed (Result.Err, Result.BackendFailed)
	Idle                         // Verdict.Idle passed with no byte moved
	Closed                       // Engine.Close
	GaveUp                       // DialFailed gave up
)

// Result is the end of a connection.
type Result struct {
	Reason Reason
	Err    error // behind Reset
	// BackendFailed reports whether the failure behind Reset was on the
	// backend's socket (a read from it or a write to it).
	BackendFailed bool
	// Answered reports whether the backend had sent a byte.
	Answered bool
}

// ErrConnectTimeout is DialFailed's error for a dial that took longer than
// its Target.Timeout.
var ErrConnectTimeout = errors.New("connect timeout")

// Dial dials t for a connection that waits (see Verdict.Dial). It may be
// called from any goroutine.
func (e *Engine) Dial(id ID, t Target) {
	l := e.loopOf(id)
	if l == nil {
		return
	}
	l.post(func(l *loop) {
		if c := l.lookup(id); c != nil && c.state == stateWaiting {
			l.dial(c, t)
		}
	})
}

// Close closes a connection, with a reset if reset; its Session is told
// (Closed). It may be called from any goroutine; a connection already
// closed is left alone.
func (e *Engine) Close(id ID, reset bool) {
	l := e.loopOf(id)
	if l == nil {
		return
	}
	l.post(func(l *loop) {
		if c := l.lookup(id); c != nil {
			l.finish(c, Result{Reason: Closed}, reset)
		}
	})
}

func (e *Engine) loopOf(id ID) *loop {
	if id.gen == 0 || int(id.loop) >= len(e.loops) {
		return nil
	}
	return e.loops[id.loop]
}

// Listener is a listening socket served by every loop of an engine.
type Listener struct {
	e    *Engine
	fd   int
	h    Handler
	mu   sync.Mutex
	left int           // loops still watching fd
	done chan struct{} // closed when fd is closed
}

// Serve accepts connections on the listening socket fd on every loop,
// handing each to h. The engine owns fd from now on: it makes it
// non-blocking and closes it when Stop has taken it out of every loop.
func (e *Engine) Serve(fd int, h Handler) (*Listener, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	if e.nodelayInherited {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	ln := &Listener{e: e, fd: fd, h: h, left: len(e.loops), done: make(chan struct{})}
	// Every loop waits on the socket; EPOLLEXCLUSIVE wakes one of them
	// per connection instead of all.
	for _, l := range e.loops {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE}
		l.post(func(l *loop) { l.addListener(ln, ev) })
	}
	return ln, nil
}

// Stop stops accepting: each loop stops watching the socket, and the last
// closes it. It returns at once; Done is closed when the socket is.
func (ln *Listener) Stop() {
	for _, l := range ln.e.loops {
		l.post(func(l *loop) { l.removeListener(ln) })
	}
}

// Done is closed when the listening socket has been closed.
func (ln *Listener) Done() <-chan struct{} { return ln.done }

func (ln *Listener) loopDone() {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.left--
	if ln.left == 0 {
		unix.Close(ln.fd)
		close(ln.done)
	}
}

// nodelayInherits reports whether a socket accepted from a listening
// socket with TCP_NODELAY has it too, by trying it once on loopback.
func nodelayInherits() bool {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(lfd)
	unix.SetsockoptInt(lfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}) != nil || unix.Listen(lfd, 1) != nil {
		return false
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		return false
	}
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(cfd)
	if unix.Connect(cfd, sa) != nil {
		return false
	}
	afd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		return false
	}
	defer unix.Close(afd)
	v, err := unix.GetsockoptInt(afd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
	return err == nil && v != 0
}

// LocalAddr returns the address the client of id connected to (the
// listening socket's, when that is not a wildcard). Call it only on the
// connection's loop: in Handler.Accept or a Session method.
func (e *Engine) LocalAddr(id ID) netip.AddrPort {
	l := e.loopOf(id)
	if l == nil {
		return netip.AddrPort{}
	}
	c := l.lookup(id)
	if c == nil || c.fd[client] < 0 {
		return netip.AddrPort{}
	}
	var rsa unix.RawSockaddrAny
	size := uint32(unix.SizeofSockaddrAny)
	if _, _, e := unix.Syscall(unix.SYS_GETSOCKNAME, uintptr(c.fd[client]), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&size))); e != 0 {
		return netip.AddrPort{}
	}
	return rawToAddrPort(&rsa)
}
