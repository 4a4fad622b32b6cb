package tcplb

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcplb/tcplb/internal/dgram"
)

// DefaultUDPIdleTimeout is how long a UDP session lasts without a datagram
// either way when UDPBalancer.IdleTimeout is zero.
const DefaultUDPIdleTimeout = 30 * time.Second

// UDPBalancer forwards UDP datagrams to the backends of its Pool. A
// client address (IP and port) is one session: its first datagram picks a
// backend with the pool's strategy (hash keeps a client IP on one backend
// across sessions), its later datagrams go to the same backend over a
// socket of the session's own, connected to it, so the kernel matches the
// replies and reports the backend's ICMP errors, and the replies go back to
// the client from the listening socket.
//
// A session ends after IdleTimeout without a datagram either way, after
// Responses replies if set, when the backend refuses a datagram (an ICMP
// port unreachable, which also counts as a passive-check failure of the
// backend), or on Close. A session holds its backend like a connection:
// it counts in Backend.Active, so least-conn balances sessions.
//
// Fields must be set before Serve and not changed afterwards.
type UDPBalancer struct {
	// Name names the listener in logs. Optional.
	Name string

	// Pool holds the backends (UDP addresses) and the strategy. Required.
	Pool *Pool

	// IdleTimeout ends a session that passed no datagram either way for
	// this long. If zero, DefaultUDPIdleTimeout (30s) is used; negative
	// is an error.
	IdleTimeout time.Duration

	// Responses, if positive, ends a session after that many replies from
	// the backend (nginx's proxy_responses: 1 suits DNS, whose clients
	// use a new port per query).
	Responses int

	// MaxSessions is the most sessions held at once; beyond it new
	// clients' datagrams are dropped and counted. 0 means no limit.
	MaxSessions int

	// MaxDatagram is the largest client datagram forwarded, 1 to 65535;
	// a larger one is dropped and counted, never truncated. 0 means 65535.
	// Replies are forwarded whole.
	MaxDatagram int

	// Allow, if not empty, admits only clients in these prefixes; Deny
	// refuses clients in these first. Refused datagrams are counted.
	Allow, Deny []netip.Prefix

	// Logger receives operational events. If nil, slog.Default().
	Logger *slog.Logger

	// AccessLog, if non-nil, receives one Info record per ended session:
	// client, listener, backend, datagrams and bytes each way, duration
	// and how it ended.
	AccessLog *slog.Logger

	mu    sync.Mutex
	proxy *dgram.Proxy

	sessions atomic.Int64
	total    atomic.Uint64
	dgIn     atomic.Uint64 // datagrams from clients forwarded
	dgOut    atomic.Uint64 // replies forwarded to clients
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	drops    [len(UDPDropReasons)]atomic.Uint64
}

// UDPDropReasons name the reasons a datagram is dropped, in the order of
// UDPStats.Dropped: no_backend (none available, or a lookup failed),
// max_sessions, too_large, denied (allow/deny), send_failed.
var UDPDropReasons = [...]string{"no_backend", "max_sessions", "too_large", "denied", "send_failed"}

const (
	dropNoBackend = iota
	dropMaxSessions
	dropTooLarge
	dropDenied
	dropSendFailed
)

// UDPStats are a UDPBalancer's counters.
type UDPStats struct {
	Active, Total             int64  // sessions open now; opened in all
	DatagramsIn, DatagramsOut uint64 // from clients to backends; replies to clients
	BytesIn, BytesOut         uint64
	Dropped                   map[string]uint64 // by UDPDropReasons
}

// Stats returns the balancer's counters.
func (u *UDPBalancer) Stats() UDPStats {
	s := UDPStats{
		Active: u.sessions.Load(), Total: int64(u.total.Load()),
		DatagramsIn: u.dgIn.Load(), DatagramsOut: u.dgOut.Load(),
		BytesIn: u.bytesIn.Load(), BytesOut: u.bytesOut.Load(),
		Dropped: make(map[string]uint64, len(UDPDropReasons)),
	}
	for i, r := range UDPDropReasons {
		s.Dropped[r] = u.drops[i].Load()
	}
	return s
}

// ErrUDPBalancerClosed is returned by Serve after Close.
var ErrUDPBalancerClosed = errors.New("tcplb: UDP balancer closed")

// Serve forwards the datagrams that reach pc until Close, and returns
// ErrUDPBalancerClosed then, or the error that stopped it.
func (u *UDPBalancer) Serve(pc *net.UDPConn) error {
	if u.Pool == nil {
		return errors.New("tcplb: UDPBalancer.Pool is required")
	}
	if u.IdleTimeout < 0 {
		return errors.New("tcplb: UDPBalancer.IdleTimeout must not be negative: a UDP session without traffic has to end")
	}
	if u.MaxDatagram < 0 || u.MaxDatagram > dgram.MaxDatagram {
		return errors.New("tcplb: UDPBalancer.MaxDatagram must be 0 to 65535")
	}
	idle := u.IdleTimeout
	if idle == 0 {
		idle = DefaultUDPIdleTimeout
	}
	p, err := dgram.New(pc, dgram.Config{Handler: udpPolicy{u}, Idle: idle, Responses: u.Responses, MaxDatagram: u.MaxDatagram})
	if err != nil {
		return err
	}
	u.mu.Lock()
	if u.proxy != nil {
		u.mu.Unlock()
		return errors.New("tcplb: UDPBalancer.Serve called twice")
	}
	u.proxy = p
	u.mu.Unlock()
	err = p.Serve()
	if errors.Is(err, net.ErrClosed) {
		return ErrUDPBalancerClosed
	}
	return err
}

// Close stops Serve and ends every session.
func (u *UDPBalancer) Close() error {
	u.mu.Lock()
	p := u.proxy
	u.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Close()
}

func (u *UDPBalancer) logger() *slog.Logger {
	if u.Logger != nil {
		return u.Logger
	}
	return slog.Default()
}

// udpPolicy is the UDPBalancer seen by the mechanism.
type udpPolicy struct{ u *UDPBalancer }

// Open admits a new client and picks its backend.
func (h udpPolicy) Open(client netip.AddrPort, _ []byte) dgram.Verdict {
	u := h.u
	a := client.Addr()
	if inPrefixes(u.Deny, a) || (len(u.Allow) > 0 && !inPrefixes(u.Allow, a)) {
		u.drops[dropDenied].Add(1)
		return dgram.Verdict{}
	}
	if m := u.MaxSessions; m > 0 {
		if u.sessions.Add(1) > int64(m) {
			u.sessions.Add(-1)
			u.drops[dropMaxSessions].Add(1)
			return dgram.Verdict{}
		}
	} else {
		u.sessions.Add(1)
	}
	var passed *Backend
	b, _ := pickAcquire(u.Pool, client, u.Pool.Available(), &passed)
	if b == nil {
		u.sessions.Add(-1)
		u.drops[dropNoBackend].Add(1)
		return dgram.Verdict{}
	}
	ap, err := udpAddr(b)
	if err != nil {
		release(u.Pool, b)
		u.sessions.Add(-1)
		u.drops[dropNoBackend].Add(1)
		u.logger().Warn("UDP backend lookup failed", "listener", u.Name, "backend", b.addr, "err", err)
		return dgram.Verdict{}
	}
	b.total.Add(1)
	u.total.Add(1)
	return dgram.Verdict{Session: &udpSession{u: u, b: b, client: client, start: time.Now()}, Backend: ap}
}

// udpAddr returns b's address as an IP and port, looking a host name up.
func udpAddr(b *Backend) (netip.AddrPort, error) {
	if b.ap.IsValid() {
		return b.ap, nil
	}
	host, port, err := net.SplitHostPort(b.addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.ParseAddrPort(net.JoinHostPort(ips[0].Unmap().String(), port))
}

// Dropped counts a datagram the mechanism did not forward.
func (h udpPolicy) Dropped(_ netip.AddrPort, why dgram.Drop, _ int) {
	switch why {
	case dgram.TooLarge:
		h.u.drops[dropTooLarge].Add(1)
	case dgram.Failed:
		h.u.drops[dropSendFailed].Add(1)
	}
}

// udpSession is one session's accounting.
type udpSession struct {
	u      *UDPBalancer
	b      *Backend
	client netip.AddrPort
	start  time.Time

	in, out           atomic.Uint64 // datagrams each way
	bytesIn, bytesOut atomic.Uint64
}

func (s *udpSession) FromClient(n int) bool {
	s.in.Add(1)
	s.bytesIn.Add(uint64(n))
	s.u.dgIn.Add(1)
	s.u.bytesIn.Add(uint64(n))
	s.b.bytesOut.Add(uint64(n))
	return true
}

func (s *udpSession) FromBackend(n int) {
	s.out.Add(1)
	s.bytesOut.Add(uint64(n))
	s.u.dgOut.Add(1)
	s.u.bytesOut.Add(uint64(n))
	s.b.bytesIn.Add(uint64(n))
}

// udpEnds name the mechanism's reasons in the access log.
var udpEnds = map[dgram.Reason]string{
	dgram.Idle:        "idle timeout",
	dgram.Responses:   "responses",
	dgram.Unreachable: "backend unreachable",
	dgram.DialFailed:  "connect failed",
	dgram.Closed:      "shutdown",
	dgram.Error:       "error",
}

func (s *udpSession) Ended(why dgram.Reason, err error) {
	u := s.u
	release(u.Pool, s.b)
	u.sessions.Add(-1)
	if why == dgram.Unreachable || why == dgram.DialFailed {
		u.Pool.passiveFailure(s.b, "UDP: "+err.Error())
	}
	al := u.AccessLog
	if al == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("client", s.client.String()),
		slog.String("listener", u.Name),
		slog.String("pool", u.Pool.Name()),
		slog.String("backend", s.b.addr),
		slog.Uint64("client_datagrams", s.in.Load()),
		slog.Uint64("backend_datagrams", s.out.Load()),
		slog.Uint64("client_bytes", s.bytesIn.Load()),
		slog.Uint64("backend_bytes", s.bytesOut.Load()),
		slog.Duration("duration", time.Since(s.start)),
		slog.String("end", udpEnds[why]),
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	al.LogAttrs(context.Background(), slog.LevelInfo, "udp session", attrs...)
}
