// Package dgram is the mechanism of UDP balancing: it reads the datagrams
// of one listening socket, keeps one session per client address, each
// with its own connected socket to a backend, relays datagrams both ways
// and ends sessions that go idle or have had their replies. It decides
// nothing: a Handler (the root package's policy) says which backend a new
// client goes to, and hears what each session did.
//
// There are two paths behind one Proxy interface. The portable one, on
// the net package: one goroutine reads the listening socket and one per
// session reads the backend's replies. On Linux, Config.EventLoop serves
// the socket and every session's on one event loop of the proxy's own
// (loop_linux.go): datagrams read and replies sent in batches, no
// goroutine or buffer per session.
package dgram

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MaxDatagram is the largest UDP payload there is, and the default limit.
const MaxDatagram = 65535

// MaxPending is how many client datagrams the event loop keeps for a
// session whose backend is being resolved (Verdict.Resolve); more are
// dropped (Failed).
const MaxPending = 16

// Config is a proxy's settings.
type Config struct {
	// Handler decides new sessions and hears what they did. Required.
	Handler Handler

	// Idle ends a session that has passed no datagram either way for
	// this long. Required (positive).
	Idle time.Duration

	// Responses, if positive, ends a session once the backend has sent
	// this many replies (1 suits DNS).
	Responses int

	// MaxDatagram is the largest client datagram relayed; larger ones are
	// dropped (Handler.Dropped with TooLarge), never truncated. 0 means
	// MaxDatagram. Replies are read whole, whatever their size.
	MaxDatagram int

	// EventLoop serves the proxy on an event loop of its own instead of
	// goroutines; Linux only (New fails elsewhere). New then takes the
	// listening socket: it serves a duplicate of it and closes the
	// *net.UDPConn at once, so that Go's poller does not watch it too.
	EventLoop bool
}

// Drop is why a datagram was not relayed.
type Drop int

// Reasons for Handler.Dropped.
const (
	Refused  Drop = iota // the Handler refused the client (Verdict.Drop says which policy; see Verdict)
	TooLarge             // a client datagram larger than Config.MaxDatagram
	Failed               // the send to the backend failed
)

// Reason is why a session ended.
type Reason int

// Reasons for Session.Ended.
const (
	Idle        Reason = iota // no datagram either way for Config.Idle
	Responses                 // the backend sent Config.Responses replies
	Unreachable               // the backend refused (ICMP port or host unreachable)
	DialFailed                // the backend's socket could not be made
	Closed                    // Proxy.CloseIf or Proxy.Close
	Error                     // another error on the backend's socket
)

// Handler is the policy. Its methods are called from the proxy's
// goroutines, concurrently (on the event loop: one at a time, on the
// loop), and must not block.
type Handler interface {
	// Open decides the session of a client whose datagram, first, has no
	// session yet. A zero Verdict.Session drops the datagram.
	Open(client netip.AddrPort, first []byte) Verdict
	// Dropped hears of a datagram of n bytes from client that was not
	// relayed, and why; for Refused, Open has already counted it.
	Dropped(client netip.AddrPort, why Drop, n int)
}

// Verdict is what the Handler decides for a new client.
type Verdict struct {
	// Session hears the session's events; nil drops the datagram (the
	// Handler has counted why).
	Session Session
	// Backend is where the session's datagrams go.
	Backend netip.AddrPort
	// Resolve, if Backend is the zero AddrPort, finds it (a host name's
	// lookup). It may block: the event loop calls it on a goroutine of
	// its own and keeps the session's first datagrams (up to
	// MaxPending) until it returns; an error ends the session with
	// DialFailed.
	Resolve func() (netip.AddrPort, error)
	// Prefix, if not empty, is sent in front of every datagram to the
	// backend (a PROXY v2 header).
	Prefix []byte
}

// Pass is what a Session does with a client's datagram.
type Pass int

// Values of Pass.
const (
	Forward Pass = iota // send it on to the backend
	Discard             // drop it (the Session has counted why)
	Reopen              // end the session (Closed) and let the datagram open the client's next one
)

// Session hears one session's events. FromClient and FromBackend are
// called for every datagram relayed; Ended once, last.
type Session interface {
	// FromClient is told of a datagram of n bytes from the client, before
	// it is sent on, and says what to do with it.
	FromClient(n int) Pass
	// FromBackend is told of a reply of n bytes sent on to the client.
	FromBackend(n int)
	// Ended reports why the session ended, with the error behind
	// Unreachable, DialFailed and Error.
	Ended(why Reason, err error)
}

// Proxy relays the datagrams of one listening socket. Its methods are
// safe for concurrent use, but not from the Handler's or a Session's
// methods, except CloseIf.
type Proxy interface {
	// Serve serves the listening socket until Stop or Close, and returns
	// ErrStopped or net.ErrClosed then, or the error that stopped it.
	Serve() error
	// SetLimits changes Config's Idle, Responses and MaxDatagram (0
	// meaning MaxDatagram) for every session, open or new; a non-positive
	// idle is ignored.
	SetLimits(idle time.Duration, responses, maxDatagram int)
	// Stop makes Serve return ErrStopped: the listening socket is no
	// longer read, but it stays open, so that the open sessions' replies
	// still reach their clients from it until the sessions end (Empty)
	// or Close. Another process may read the socket meanwhile (a binary
	// upgrade).
	Stop()
	// Empty returns a channel closed once the proxy is stopped and has
	// no session left.
	Empty() <-chan struct{}
	// Len returns the number of open sessions.
	Len() int
	// Sessions returns the Sessions of the open sessions, in no order.
	Sessions() []Session
	// CloseIf ends, with Closed, every session whose Session match
	// accepts, and returns how many it ends. They end soon after, not
	// before CloseIf returns.
	CloseIf(match func(Session) bool) int
	// Close stops Serve (it closes the listening socket) and ends every
	// session, waiting until each has been told.
	Close() error
}

// goProxy is the portable Proxy: a goroutine reads the listening socket,
// and one per session its backend's replies.
type goProxy struct {
	pc  *net.UDPConn
	cfg Config

	limits // cfg holds the first ones

	mu       sync.Mutex
	sessions map[netip.AddrPort]*session
	closed   bool
	stopped  bool           // Stop: the listening socket is no longer read
	empty    chan struct{}  // closed once stopped with no session left
	wg       sync.WaitGroup // session goroutines
}

// ErrStopped is returned by Serve after Stop.
var ErrStopped = errors.New("dgram: stopped")

// New returns a proxy for pc; Serve runs it.
func New(pc *net.UDPConn, cfg Config) (Proxy, error) {
	if cfg.Handler == nil || cfg.Idle <= 0 {
		return nil, errors.New("dgram: Config needs a Handler and a positive Idle")
	}
	if cfg.EventLoop {
		return newLoop(pc, cfg)
	}
	p := &goProxy{pc: pc, cfg: cfg, sessions: make(map[netip.AddrPort]*session), empty: make(chan struct{})}
	p.SetLimits(cfg.Idle, cfg.Responses, cfg.MaxDatagram)
	return p, nil
}

// limits are the settings SetLimits changes, shared by both paths.
type limits struct {
	idle        atomic.Int64 // nanoseconds
	responses   atomic.Int64
	maxDatagram atomic.Int64
}

func (p *limits) SetLimits(idle time.Duration, responses, maxDatagram int) {
	if idle > 0 {
		p.idle.Store(int64(idle))
	}
	if maxDatagram <= 0 || maxDatagram > MaxDatagram {
		maxDatagram = MaxDatagram
	}
	p.responses.Store(int64(responses))
	p.maxDatagram.Store(int64(maxDatagram))
}

func (p *goProxy) Serve() error {
	// One byte more than the largest datagram tells one over the limit
	// from one at it, whatever SetLimits makes the limit.
	buf := make([]byte, MaxDatagram+1)
	var backoff time.Duration
	for {
		n, from, err := p.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			if p.isStopped() {
				return ErrStopped
			}
			if n == len(buf) { // Windows reports a truncated datagram as an error
				p.cfg.Handler.Dropped(from, TooLarge, n)
				continue
			}
			// ICMP errors for earlier replies (Windows reports them on
			// the listening socket) and other transient errors: back
			// off as Accept loops do, and go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if int64(n) > p.maxDatagram.Load() {
			p.cfg.Handler.Dropped(from, TooLarge, n)
			continue
		}
		p.relay(from, buf[:n])
	}
}

// relay sends a client's datagram on through its session, opening one
// if it has none.
func (p *goProxy) relay(from netip.AddrPort, b []byte) {
	p.mu.Lock()
	s := p.sessions[from]
	p.mu.Unlock()
	if s != nil && s.why.Load() >= 0 {
		s = nil // ending: the datagram opens the client's next session
	}
	if s == nil {
		if s = p.open(from, b); s == nil {
			return
		}
	}
	switch s.ev.FromClient(len(b)) {
	case Discard:
		return
	case Reopen:
		s.end(Closed)
		if s = p.open(from, b); s == nil || s.ev.FromClient(len(b)) != Forward {
			return
		}
	}
	s.last.Store(nanotime())
	if err := s.send(b); err != nil {
		p.cfg.Handler.Dropped(from, Failed, len(b))
	}
}

// open starts a session for client, or returns nil if the Handler drops
// its datagram or the backend's socket cannot be made.
func (p *goProxy) open(client netip.AddrPort, first []byte) *session {
	v := p.cfg.Handler.Open(client, first)
	if v.Session == nil {
		return nil
	}
	if !v.Backend.IsValid() && v.Resolve != nil {
		ap, err := v.Resolve() // this goroutine reads the socket: it waits, the kernel queues
		if err != nil {
			v.Session.Ended(DialFailed, err)
			return nil
		}
		v.Backend = ap
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(v.Backend))
	if err != nil {
		v.Session.Ended(DialFailed, err)
		return nil
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		v.Session.Ended(DialFailed, err)
		return nil
	}
	s := &session{p: p, client: client, conn: conn, rc: rc, ev: v.Session, prefix: v.Prefix}
	s.why.Store(-1)
	s.last.Store(nanotime())
	p.mu.Lock()
	if p.closed || p.stopped {
		p.mu.Unlock()
		conn.Close()
		v.Session.Ended(Closed, nil)
		return nil
	}
	p.sessions[client] = s
	p.wg.Add(1)
	p.mu.Unlock()
	go s.replies()
	return s
}

func (p *goProxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	p.pc.SetReadDeadline(time.Unix(1, 0))
	p.checkEmptyLocked()
}

func (p *goProxy) isStopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

func (p *goProxy) Empty() <-chan struct{} { return p.empty }

func (p *goProxy) checkEmptyLocked() {
	if p.stopped && len(p.sessions) == 0 {
		select {
		case <-p.empty:
		default:
			close(p.empty)
		}
	}
}

func (p *goProxy) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

func (p *goProxy) Sessions() []Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Session, 0, len(p.sessions))
	for _, s := range p.sessions {
		out = append(out, s.ev)
	}
	return out
}

func (p *goProxy) CloseIf(match func(Session) bool) int {
	p.mu.Lock()
	var ending []*session
	for _, s := range p.sessions {
		if match(s.ev) {
			ending = append(ending, s)
		}
	}
	p.mu.Unlock()
	for _, s := range ending {
		s.end(Closed)
	}
	return len(ending)
}

func (p *goProxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.pc.Close()
	p.CloseIf(func(Session) bool { return true })
	p.wg.Wait()
	return err
}

// session is one client's session.
type session struct {
	p      *goProxy
	client netip.AddrPort
	conn   *net.UDPConn // connected to the backend
	rc     syscall.RawConn
	//lint:ignore U1000 used where a session has its own reply buffer (reply_other.go)
	buf    *[]byte
	ev     Session
	prefix []byte

	last    atomic.Int64 // nanotime of the last datagram either way
	why     atomic.Int32 // -1 while open; the Reason end asked for
	sendMu  sync.Mutex   // serialises sends with a prefix (one buffer)
	sendBuf []byte
}

// send writes a client's datagram to the backend, behind the prefix.
func (s *session) send(b []byte) error {
	if len(s.prefix) == 0 {
		_, err := s.conn.Write(b)
		return err
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.sendBuf = append(append(s.sendBuf[:0], s.prefix...), b...)
	_, err := s.conn.Write(s.sendBuf)
	return err
}

// replies reads the backend's replies and sends them to the client from
// the listening socket, until the session ends; it watches the idle
// timeout with the read deadline, extended, not reset per datagram.
func (s *session) replies() {
	defer s.p.wg.Done()
	replies := 0
	for {
		idle := time.Duration(s.p.idle.Load())
		s.conn.SetReadDeadline(time.Now().Add(idle - time.Duration(nanotime()-s.last.Load())))
		// end sets why before it moves the deadline into the past, so a
		// deadline set here after that is caught by this check, not slept
		// through until the idle timeout.
		if why := s.why.Load(); why >= 0 {
			s.finish(Reason(why), nil)
			return
		}
		buf, n, err := s.readReply()
		if why := s.why.Load(); why >= 0 {
			if buf != nil {
				doneReply(buf)
			}
			s.finish(Reason(why), nil)
			return
		}
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				if time.Duration(nanotime()-s.last.Load()) >= idle {
					s.finish(Idle, nil)
					return
				}
				continue // a client datagram came since: wait on
			case isUnreachable(err):
				s.finish(Unreachable, err)
			default:
				s.finish(Error, err)
			}
			return
		}
		s.last.Store(nanotime())
		replies++
		limit := s.p.responses.Load()
		last := limit > 0 && int64(replies) >= limit
		if last {
			// Out of the table before the reply goes, so that the
			// client's next datagram, however quick, opens a new session.
			s.detach()
		}
		_, err = s.p.pc.WriteToUDPAddrPort((*buf)[:n], s.client)
		doneReply(buf)
		if err == nil {
			s.ev.FromBackend(n)
		}
		if last {
			s.finish(Responses, nil)
			return
		}
	}
}

// end asks the session's reply goroutine to finish with why; the first
// reason asked for wins.
func (s *session) end(why Reason) {
	if s.why.CompareAndSwap(-1, int32(why)) {
		s.conn.SetReadDeadline(time.Unix(1, 0)) // wake the reader
	}
}

// detach takes the session out of the proxy's table.
func (s *session) detach() {
	s.p.mu.Lock()
	if s.p.sessions[s.client] == s {
		delete(s.p.sessions, s.client)
		s.p.checkEmptyLocked()
	}
	s.p.mu.Unlock()
}

// finish removes the session, closes its socket and tells the Handler;
// only the reply goroutine calls it.
func (s *session) finish(why Reason, err error) {
	s.detach()
	s.conn.Close()
	s.ev.Ended(why, err)
}

// isUnreachable reports whether err is the ICMP error of a backend that
// refused a datagram (port unreachable) or cannot be reached.
func isUnreachable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

var epoch = time.Now()

// nanotime is monotonic nanoseconds since the package loaded.
func nanotime() int64 { return int64(time.Since(epoch)) }
