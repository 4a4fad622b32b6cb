package tcplb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the Balancer's zero-valued fields.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultIdleTimeout    = time.Hour
)

// ErrBalancerClosed is returned by Serve after Shutdown or Close.
var ErrBalancerClosed = errors.New("tcplb: balancer closed")

// Balancer accepts TCP connections and forwards each one to a backend of its
// Pool. Its fields must be set before the first call to Serve and not
// changed afterwards; the zero value of each optional field is usable. To
// change the pool or the timeouts while serving (a reload), use SetPool and
// SetTimeouts: each connection keeps the settings it was accepted with.
//
// One connection's life, in this file, forward.go and copy_linux.go: Serve
// accepts it; handle asks the pool's strategy for a backend and dials it,
// trying the backends not yet tried when a dial fails; forward then copies
// bytes both ways (a quiet connection parks without goroutines) until both
// directions are done, the connection has been idle for IdleTimeout, either
// side resets, or Shutdown's deadline passes; finally finish writes one
// access-log line that records how it ended.
type Balancer struct {
	// Name names the balancer's listener in logs. Optional.
	Name string

	// Pool holds the backends and the strategy. Required.
	Pool *Pool

	// ConnectTimeout bounds each dial to a backend. If zero,
	// DefaultConnectTimeout (5s) is used.
	ConnectTimeout time.Duration

	// IdleTimeout closes a connection on which no byte has moved in either
	// direction for this long; a direction blocked writing to a peer that
	// does not read moves no bytes. If zero, DefaultIdleTimeout (1h) is
	// used; if negative, connections never time out.
	IdleTimeout time.Duration

	// QueueTimeout is how long a new client may wait, in arrival order,
	// for a backend under its connection limit (Backend.SetMaxConns) when
	// every backend of the pool is full. If zero, the client is closed at
	// once ("backends full" in the access log).
	QueueTimeout time.Duration

	// Edge, if not zero, is what the balancer checks before it picks a
	// backend: PROXY headers from trusted upstreams, access lists,
	// connection limits and SNI routing (see Edge). An invalid Edge makes
	// Serve fail.
	Edge Edge

	// Engine selects the data path; the zero value, EngineDefault, is the
	// event loops on Linux and goroutines elsewhere. On the event loops,
	// Serve takes the listener's socket over (see Serve).
	Engine Engine

	// Logger receives operational events (accept errors, failed dials). If
	// nil, slog.Default() is used.
	Logger *slog.Logger

	// Connections to backends are made without TCP keep-alive, as HAProxy
	// does by default: the idle timeout is what closes connections whose
	// peer has gone, and it saves four system calls per connection. The
	// listener passed to Serve decides keep-alive for client connections
	// (net.Listen turns it on; the daemon turns it off).

	// AccessLog, if non-nil, receives one Info record per finished
	// connection: client, listener, backend, bytes each way, duration and
	// how it ended (see End).
	AccessLog *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	stopLoops []func()             // stop the event loops' listening sockets and wait until they are closed; under mu
	serving   sync.WaitGroup       // Serve loops running
	conns     map[tracked]struct{} // open connections of either engine
	drained   chan struct{}        // closed when conns empties during shutdown
	closing   atomic.Bool
	stop      chan struct{} // closed when shutdown starts: wakes accept backoff
	forceCtx  context.Context
	force     context.CancelFunc // cancels dials and marks forced closes
	initOnce  sync.Once

	cur     atomic.Pointer[settings] // what new connections are served with
	edgeErr error                    // from compiling the Edge field

	slots     atomic.Int64 // connections holding one of Edge.MaxConns
	slotQueue waitQueue    // clients waiting for one
	sources   *sourceTable // for Edge's per-source limits
	proxyErrs [len(proxyErrorReasons)]atomic.Uint64
	pools     map[*Pool]struct{} // every pool served, attached for drains; under mu

	accepted  atomic.Uint64
	rejected  [len(rejectReasons)]atomic.Uint64
	durations histogram // of connections that reached a backend
}

// settings are what a connection is served with, fixed at its accept:
// SetPool and SetTimeouts publish new ones for the connections accepted
// afterwards.
type settings struct {
	name                 string
	pool                 *Pool
	edge                 *edgeState    // nil: no edge checks
	connect, idle, queue time.Duration // resolved: connect > 0; idle 0 means none
}

func (lb *Balancer) init() {
	lb.initOnce.Do(func() {
		lb.pools = make(map[*Pool]struct{})
		lb.sources = newSourceTable(maxSources)
		edge, err := compileEdge(lb.Edge)
		lb.edgeErr = err
		lb.cur.Store(&settings{name: lb.Name, pool: lb.Pool, edge: edge})
		lb.setTimeouts(lb.ConnectTimeout, lb.IdleTimeout, lb.QueueTimeout)
		lb.listeners = make(map[net.Listener]struct{})
		lb.conns = make(map[tracked]struct{})
		lb.stop = make(chan struct{})
		lb.forceCtx, lb.force = context.WithCancel(context.Background())
		lb.durations.bounds = durationBounds
	})
}

func (lb *Balancer) logger() *slog.Logger {
	if lb.Logger != nil {
		return lb.Logger
	}
	return slog.Default()
}

// SetPool makes the connections accepted from now on go to pool; open
// connections stay with the pool they started with. The Pool field keeps
// its first value; CurrentPool returns the one in use.
func (lb *Balancer) SetPool(pool *Pool) {
	lb.init()
	lb.update(func(next *settings) { next.pool = pool })
	lb.mu.Lock()
	serving := len(lb.listeners) > 0
	lb.mu.Unlock()
	if serving {
		lb.attach(pool)
	}
}

// SetName renames the balancer in the logs of the connections accepted from
// now on. The Name field keeps its first value.
func (lb *Balancer) SetName(name string) {
	lb.init()
	lb.update(func(next *settings) { next.name = name })
}

// SetEdge replaces the balancer's Edge for the connections accepted from
// now on; it returns an error, and changes nothing, if e is invalid. Open
// connections keep the limits they were admitted under; the connection
// counts behind the limits carry over.
func (lb *Balancer) SetEdge(e Edge) error {
	lb.init()
	edge, err := compileEdge(e)
	if err != nil {
		return err
	}
	lb.update(func(next *settings) { next.edge = edge })
	return nil
}

// CurrentPool returns the pool new connections go to.
func (lb *Balancer) CurrentPool() *Pool {
	lb.init()
	return lb.cur.Load().pool
}

// SetTimeouts changes ConnectTimeout, IdleTimeout and QueueTimeout, with
// the same meaning of zero and negative values, for the connections
// accepted from now on; open connections keep theirs.
func (lb *Balancer) SetTimeouts(connect, idle, queue time.Duration) {
	lb.init()
	lb.setTimeouts(connect, idle, queue)
}

func (lb *Balancer) setTimeouts(connect, idle, queue time.Duration) {
	if connect <= 0 {
		connect = DefaultConnectTimeout
	}
	switch {
	case idle < 0:
		idle = 0
	case idle == 0:
		idle = DefaultIdleTimeout
	}
	lb.update(func(next *settings) { next.connect, next.idle, next.queue = connect, idle, max(queue, 0) })
}

// update publishes a copy of the settings changed by change.
func (lb *Balancer) update(change func(*settings)) {
	for {
		old := lb.cur.Load()
		next := *old
		change(&next)
		if lb.cur.CompareAndSwap(old, &next) {
			return
		}
	}
}

// attach tells pool that lb serves it, so that draining a backend reaches
// lb's connections; Shutdown detaches from every pool.
func (lb *Balancer) attach(pool *Pool) {
	if pool == nil {
		return
	}
	lb.mu.Lock()
	_, done := lb.pools[pool]
	lb.pools[pool] = struct{}{}
	lb.mu.Unlock()
	if !done {
		pool.attach(lb, true)
	}
}

// Serve accepts connections on ln and forwards each one in its own
// goroutines until ln fails or the balancer is shut down, when it returns
// ErrBalancerClosed. Serve may be called for several listeners at once.
//
// An Accept error other than a closed listener (running out of file
// descriptors, say) is logged and retried after a pause that starts at 5ms
// and doubles up to 1s, so the loop does not spin.
//
// With EngineEpoll and a TCP listener (any listener with a SyscallConn
// method whose Addr is a *net.TCPAddr), the process's event loops accept
// on a duplicate of ln's socket, and Serve closes ln itself so that Go's
// poller no longer watches the socket; ln.Addr still answers. Other
// listeners are served with goroutines.
func (lb *Balancer) Serve(ln net.Listener) error {
	lb.init()
	if lb.cur.Load().pool == nil {
		return errors.New("tcplb: Balancer.Pool is nil")
	}
	if lb.edgeErr != nil {
		return fmt.Errorf("tcplb: Balancer.Edge: %v", lb.edgeErr)
	}
	if !lb.trackListener(ln, true) {
		return ErrBalancerClosed
	}
	defer lb.trackListener(ln, false)
	lb.attach(lb.cur.Load().pool)

	readFdLimit()
	if lb.Engine.resolve() == EngineEpoll {
		if handled, err := lb.serveLoop(ln); handled {
			return err
		}
	}
	var backoff time.Duration
	for {
		if wait := fds.full(); wait != nil {
			if fds.warned.CompareAndSwap(false, true) {
				lb.logger().Warn("near the descriptor limit: accepting only as connections close",
					"listener", lb.cur.Load().name, "in_use", fds.inUse.Load(), "mark", fds.high.Load())
			}
			select {
			case <-wait:
			case <-lb.stop:
				return ErrBalancerClosed
			}
			continue
		}
		c, err := ln.Accept()
		if err != nil {
			if lb.closing.Load() {
				return ErrBalancerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			lb.logger().Error("accept failed; retrying", "listener", lb.cur.Load().name, "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-lb.stop:
				t.Stop()
			}
			continue
		}
		backoff = 0
		fds.add(1)
		lb.accepted.Add(1)
		if !lb.serveConn(c, lb.cur.Load()) {
			return ErrBalancerClosed
		}
	}
}

// serveConn serves an accepted connection, counted in fds and accepted,
// on the goroutine engine. It reports false, having closed c, if the
// balancer is past its shutdown deadline.
func (lb *Balancer) serveConn(c net.Conn, s *settings) bool {
	pc := &proxyConn{lb: lb, s: s, client: c, addr: clientAddr(c), start: time.Now()}
	if !lb.trackConn(pc, true) {
		c.Close()
		fds.add(-1)
		return false
	}
	workers.run(pc.handle)
	return true
}

// StopAccepting closes every listener the balancer serves, so each Serve
// returns ErrBalancerClosed and later ones return it at once, and leaves the
// open connections alone. On the event loops it returns once the loops
// have let go of the listening sockets and closed them. It is the first step of Shutdown; calling it on
// its own starts a lame-duck phase.
func (lb *Balancer) StopAccepting() {
	lb.init()
	lb.mu.Lock()
	if !lb.closing.Swap(true) {
		close(lb.stop)
	}
	for ln := range lb.listeners {
		ln.Close()
	}
	stops := lb.stopLoops
	lb.stopLoops = nil
	lb.mu.Unlock()
	// Not under mu: the loops take it to admit the connections they are
	// accepting as they let go of the socket.
	for _, stop := range stops {
		stop()
	}
}

// Shutdown stops the balancer gracefully: it closes every listener at once
// (StopAccepting), so no new connection is accepted, then waits for the open
// connections to finish on their own. If ctx ends first, it closes the
// remaining connections (their access-log lines say "shutdown"), waits for
// their goroutines to return and returns ctx's error.
func (lb *Balancer) Shutdown(ctx context.Context) error {
	lb.StopAccepting()
	lb.serving.Wait() // no connection is accepted after this
	lb.mu.Lock()
	if lb.drained == nil {
		lb.drained = make(chan struct{})
		if len(lb.conns) == 0 {
			close(lb.drained)
		}
	}
	lb.mu.Unlock()

	defer func() {
		lb.mu.Lock()
		pools := lb.pools
		lb.pools = make(map[*Pool]struct{})
		lb.mu.Unlock()
		for p := range pools {
			p.attach(lb, false)
		}
	}()
	select {
	case <-lb.drained:
		return nil
	case <-ctx.Done():
	}
	lb.force()
	lb.mu.Lock()
	open := make([]tracked, 0, len(lb.conns))
	for c := range lb.conns {
		open = append(open, c)
	}
	lb.mu.Unlock()
	for _, c := range open { // not under lb.mu: a parked connection finishes inside abort
		c.stop(EndShutdown)
	}
	<-lb.drained
	return ctx.Err()
}

// Close closes the listeners and every open connection at once, and waits
// for the connections' goroutines to return.
func (lb *Balancer) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := lb.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// ActiveConns returns the number of client connections being served.
func (lb *Balancer) ActiveConns() int {
	lb.init()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return len(lb.conns)
}

func (lb *Balancer) trackListener(ln net.Listener, add bool) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if !add {
		delete(lb.listeners, ln)
		lb.serving.Done()
		return true
	}
	if lb.closing.Load() {
		return false
	}
	lb.listeners[ln] = struct{}{}
	lb.serving.Add(1) // under mu, before closing is set: Shutdown's Wait sees it
	return true
}

// tracked is an open connection, of the goroutine engine (proxyConn) or
// the event-loop engine (loopConn).
type tracked interface {
	// info describes the connection for Connections.
	info() ConnInfo
	// goesTo reports whether the connection is to b.
	goesTo(b *Backend) bool
	// stop closes the connection, recording why, from any goroutine.
	stop(why End)
}

func (lb *Balancer) trackConn(pc tracked, add bool) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if add {
		// A connection accepted as StopAccepting closes the listener is
		// served, not dropped: Shutdown waits for the Serve loops to
		// return before it counts the connections. Only the forced
		// phase refuses.
		if lb.forceCtx.Err() != nil {
			return false
		}
		lb.conns[pc] = struct{}{}
		return true
	}
	delete(lb.conns, pc)
	if len(lb.conns) == 0 && lb.drained != nil {
		select {
		case <-lb.drained:
		default:
			close(lb.drained)
		}
	}
	return true
}

// connect finds a backend for a new client and dials it. When every
// backend is at its connection limit it waits, in arrival order, up to
// QueueTimeout for a free one; while others wait it queues behind them.
func (lb *Balancer) connect(s *settings, pool *Pool, client netip.AddrPort) (b *Backend, c net.Conn, dialed time.Time, err error) {
	pool.queue.take(s.queue, lb.forceCtx.Done(), func() bool {
		b, c, dialed, err = lb.tryConnect(s, pool, client)
		return err != errFull
	})
	if err == errFull && lb.forceCtx.Err() != nil {
		err = lb.forceCtx.Err()
	}
	return b, c, dialed, err
}

// tryConnect picks a backend and dials it. A pick of a full backend is
// skipped, and so, with a probability that falls as it ramps up, is a pick
// of a slow-starting one: the strategy is asked again among the rest, and a
// slow-starting backend passed over is still used if nothing else is left.
// When a dial fails it asks the strategy again among the backends not yet
// tried, so each backend is dialled at most once. It returns the error of
// the last dial, errFull when every backend was full, or errNoBackend when
// the strategy had nothing to offer. dialed is when the successful dial
// began.
func (lb *Balancer) tryConnect(s *settings, pool *Pool, client netip.AddrPort) (b *Backend, c net.Conn, dialed time.Time, err error) {
	candidates := pool.Available()
	d := net.Dialer{KeepAlive: -1} // see Balancer's doc: idle timeout, not keep-alive
	var passed *Backend            // a slow-starting backend passed over
	err = errNoBackend
	for {
		b, full := pickAcquire(pool, client, candidates, &passed)
		if b == nil {
			if full && err == errNoBackend {
				err = errFull
			}
			return nil, nil, time.Time{}, err
		}
		dialed = time.Now()
		ctx := &dialContext{Context: lb.forceCtx, deadline: dialed.Add(s.connect)}
		c, err = d.DialContext(ctx, "tcp", b.addr)
		if err == nil {
			fds.add(1)
			b.total.Add(1)
			b.connectTime.observe(time.Since(dialed))
			return b, c, dialed, nil
		}
		release(pool, b)
		b.connectErrors.Add(1)
		lb.logger().Warn("backend connect failed", "listener", s.name, "pool", pool.Name(), "backend", b.addr, "err", err)
		if lb.forceCtx.Err() == nil {
			pool.passiveFailure(b, "connect: "+err.Error())
		}
		candidates = without(candidates, b)
	}
}

// pickAcquire asks pool's strategy for a backend among candidates and
// takes a connection slot on it: a pick of a full backend is skipped, and
// so, with a probability that falls as it ramps up, is a pick of a
// slow-starting one, which *passed keeps and which is used if nothing else
// is left. It returns nil when there is none, and full if some were at
// their limit. Both engines pick through it.
func pickAcquire(pool *Pool, client netip.AddrPort, candidates []*Backend, passed **Backend) (b *Backend, full bool) {
	strategy := pool.Strategy()
	for {
		b = strategy.Pick(client, candidates)
		switch {
		case b == nil && *passed == nil:
			return nil, full
		case b == nil:
			b, *passed = *passed, nil
		case !pool.admit(b):
			if *passed == nil {
				*passed = b
			}
			candidates = without(candidates, b)
			continue
		}
		if !b.acquire() {
			full = true
			candidates = without(candidates, b)
			continue
		}
		return b, false
	}
}

// release counts a connection to b as ended, and lets a client waiting for
// a free backend of pool try again.
func release(pool *Pool, b *Backend) {
	b.addActive(-1)
	if b.maxConns.Load() > 0 {
		pool.queue.wakeOne()
	}
}

// closeBackend closes the balancer's open connections to b, recording why
// they ended, and returns how many it closed.
func (lb *Balancer) closeBackend(b *Backend, why End) int {
	lb.init()
	lb.mu.Lock()
	var open []tracked
	for c := range lb.conns {
		open = append(open, c)
	}
	lb.mu.Unlock()
	n := 0
	for _, c := range open {
		if c.goesTo(b) {
			c.stop(why)
			n++
		}
	}
	return n
}

var (
	errNoBackend = errors.New("no backend available")
	errFull      = errors.New("every backend is at its connection limit")
)

// dialContext is the balancer's force-close context with a connect
// deadline. It is what net.Dialer's Timeout would build, minus two
// context.WithDeadline timers per dial (2 to 3 microseconds
// per connection): with a single address, the dialer applies the deadline as
// the socket's write deadline, and cancellation by Shutdown still reaches it
// through the embedded context. TestConnectTimeout guards the behaviour.
type dialContext struct {
	context.Context
	deadline time.Time
}

func (c *dialContext) Deadline() (time.Time, bool) { return c.deadline, true }

// without returns a new slice of backends less b.
func without(backends []*Backend, b *Backend) []*Backend {
	out := make([]*Backend, 0, len(backends))
	for _, x := range backends {
		if x != b {
			out = append(out, x)
		}
	}
	return out
}

// clientAddr returns the address of a connection's remote end.
func clientAddr(c net.Conn) netip.AddrPort {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	default:
		ap, _ := netip.ParseAddrPort(a.String())
		return ap
	}
}
