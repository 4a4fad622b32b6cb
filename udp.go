package tcplb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcplb/tcplb/internal/dgram"
	"github.com/tcplb/tcplb/internal/proxyproto"
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
// backend), when its backend has been drained or removed and the pool's
// DrainTimeout has passed, or on Close. A session whose backend has gone
// down (active checks, passive ejection) ends at the client's next
// datagram, which opens a new session on an available backend: UDP has no
// connection to keep, so the client loses nothing. A session holds its
// backend like a connection: it counts in Backend.Active, so least-conn
// balances sessions.
//
// With the pool's SendProxy set to ProxyV2, every datagram to a backend
// starts with a PROXY v2 header of transport UDP (family UDP4 or UDP6, as
// the spec has it for SOCK_DGRAM) carrying the client's address and the
// listening socket's address (for a socket bound to a wildcard address,
// 0.0.0.0 or ::, with its port). ProxyV1 has no UDP form: Serve and Reload
// refuse a pool with it, and a pool changed to it later sends no header.
//
// Fields must be set before Serve and not changed afterwards; Reload
// changes them on a running balancer.
type UDPBalancer struct {
	// Name names the listener in logs. Optional.
	Name string

	// Pool holds the backends (UDP addresses) and the strategy. Required.
	Pool *Pool

	// Engine selects the data path, as Balancer.Engine does. With
	// EngineEpoll (the default on Linux) the socket and every session's
	// are served by an event loop of the balancer's own, which reads and
	// sends datagrams in batches (recvmmsg, sendmmsg) and holds no
	// goroutine or buffer per session; Serve then serves a duplicate of
	// the socket and closes pc at once, so that Go's poller does not
	// watch it too (pc.LocalAddr still answers). One loop serves one
	// socket: a listener's datagrams are served on one core. With
	// EngineGoroutines, a goroutine reads the socket and one per session
	// reads its backend's replies.
	Engine Engine

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

	// MaxSessionsPerSource is the most sessions one client IP may hold at
	// once (each of its ports is a session); beyond it the datagrams of
	// its new ports are dropped and counted. 0 means no limit.
	MaxSessionsPerSource int

	// RatePerSource is how many datagrams per second one client IP may
	// send, with bursts of BurstPerSource (0: the rate, at least 1); the
	// datagrams beyond it are dropped and counted, and its sessions stay.
	// 0 means no limit. The table of sources is the TCP one's (see
	// Edge.MaxConnsPerSource): bounded, idle sources forgotten first.
	RatePerSource  float64
	BurstPerSource int

	// Logger receives operational events. If nil, slog.Default().
	Logger *slog.Logger

	// AccessLog, if non-nil, receives one Info record per ended session:
	// client, listener, backend, datagrams and bytes each way, duration
	// and how it ended.
	AccessLog *slog.Logger

	mu              sync.Mutex
	proxy           dgram.Proxy
	stopped, closed bool                        // StopAccepting; Shutdown or Close (before Serve too)
	cur             atomic.Pointer[udpSettings] // what new sessions use; set by Serve and Reload
	pools           map[*Pool]struct{}          // earlier pools, which sessions may still use; under mu
	local           netip.AddrPort              // the listening socket's address, for PROXY headers; set by Serve
	sources         *sourceTable                // per-source limits; set by Serve

	sessions atomic.Int64
	total    atomic.Uint64
	dgIn     atomic.Uint64 // datagrams from clients forwarded
	dgOut    atomic.Uint64 // replies forwarded to clients
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	drops    [len(UDPDropReasons)]atomic.Uint64

	durations histogram // of ended sessions; the bounds of connection lifetimes
}

// UDPDropReasons name the reasons a client's datagram is dropped, the keys
// of UDPStats.Dropped: no_backend (none available, or a lookup failed),
// max_sessions, too_large (over MaxDatagram), denied (allow/deny),
// send_failed (the send to the backend failed), source_sessions
// (MaxSessionsPerSource) and rate (RatePerSource). The set is fixed, so
// that metrics have every series from the start.
var UDPDropReasons = [...]string{"no_backend", "max_sessions", "too_large", "denied", "send_failed", "source_sessions", "rate"}

const (
	dropNoBackend = iota
	dropMaxSessions
	dropTooLarge
	dropDenied
	dropSendFailed
	dropSourceSessions
	dropRate
)

// UDPStats are a UDPBalancer's counters.
type UDPStats struct {
	Active, Total             int64  // sessions open now; opened in all
	DatagramsIn, DatagramsOut uint64 // from clients to backends; replies to clients
	BytesIn, BytesOut         uint64
	Dropped                   map[string]uint64 // by UDPDropReasons
	Durations                 HistogramSnapshot // of ended sessions, from first datagram to end
}

// Stats returns the balancer's counters.
func (u *UDPBalancer) Stats() UDPStats {
	s := UDPStats{
		Active: u.sessions.Load(), Total: int64(u.total.Load()),
		DatagramsIn: u.dgIn.Load(), DatagramsOut: u.dgOut.Load(),
		BytesIn: u.bytesIn.Load(), BytesOut: u.bytesOut.Load(),
		Dropped:   make(map[string]uint64, len(UDPDropReasons)),
		Durations: u.durations.snapshot(),
	}
	for i, r := range UDPDropReasons {
		s.Dropped[r] = u.drops[i].Load()
	}
	return s
}

// UDPSessionInfo describes one open UDP session.
type UDPSessionInfo struct {
	Client                            string    // the client's address
	Backend                           string    // the backend's address
	Start                             time.Time // the client's first datagram
	ClientDatagrams, BackendDatagrams uint64    // from the client to the backend; replies
	ClientBytes, BackendBytes         uint64
}

// Sessions returns up to limit of the open sessions, oldest first; limit
// <= 0 means all.
func (u *UDPBalancer) Sessions(limit int) []UDPSessionInfo {
	u.mu.Lock()
	p := u.proxy
	u.mu.Unlock()
	if p == nil {
		return nil
	}
	ss := p.Sessions()
	out := make([]UDPSessionInfo, 0, len(ss))
	for _, s := range ss {
		us := s.(*udpSession)
		out = append(out, UDPSessionInfo{
			Client: us.client.String(), Backend: us.b.addr, Start: us.start,
			ClientDatagrams: us.in.Load(), BackendDatagrams: us.out.Load(),
			ClientBytes: us.bytesIn.Load(), BackendBytes: us.bytesOut.Load(),
		})
	}
	slices.SortFunc(out, func(a, b UDPSessionInfo) int { return a.Start.Compare(b.Start) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// ErrUDPBalancerClosed is returned by Serve after Close.
var ErrUDPBalancerClosed = errors.New("tcplb: UDP balancer closed")

// udpSettings are the fields of a UDPBalancer that Reload changes.
type udpSettings struct {
	name                   string
	pool                   *Pool
	idle                   time.Duration
	responses, maxSessions int
	maxDatagram            int
	allow, deny            []netip.Prefix
	perSource              int     // MaxSessionsPerSource
	rate, burst            float64 // RatePerSource, and its burst
}

// settings checks u's fields and returns them.
func (u *UDPBalancer) settings() (*udpSettings, error) {
	switch {
	case u.Pool == nil:
		return nil, errors.New("tcplb: UDPBalancer.Pool is required")
	case u.IdleTimeout < 0:
		return nil, errors.New("tcplb: UDPBalancer.IdleTimeout must not be negative: a UDP session without traffic has to end")
	case u.MaxDatagram < 0 || u.MaxDatagram > dgram.MaxDatagram:
		return nil, errors.New("tcplb: UDPBalancer.MaxDatagram must be 0 to 65535")
	case u.Responses < 0 || u.MaxSessions < 0:
		return nil, errors.New("tcplb: UDPBalancer.Responses and MaxSessions must not be negative")
	case u.MaxSessionsPerSource < 0 || u.BurstPerSource < 0:
		return nil, errors.New("tcplb: UDPBalancer.MaxSessionsPerSource and BurstPerSource must not be negative")
	case u.RatePerSource < 0 || math.IsNaN(u.RatePerSource) || math.IsInf(u.RatePerSource, 0):
		return nil, fmt.Errorf("tcplb: UDPBalancer.RatePerSource %v: want 0 or more datagrams per second", u.RatePerSource)
	case u.Pool.Options().SendProxy == ProxyV1:
		return nil, fmt.Errorf("tcplb: pool %s sends PROXY v1, which has no UDP form: a UDPBalancer's pool can send v2", u.Pool.Name())
	}
	s := &udpSettings{
		name: u.Name, pool: u.Pool, idle: u.IdleTimeout,
		responses: u.Responses, maxSessions: u.MaxSessions, maxDatagram: u.MaxDatagram,
		allow: slices.Clone(u.Allow), deny: slices.Clone(u.Deny),
		perSource: u.MaxSessionsPerSource, rate: u.RatePerSource,
	}
	if s.rate > 0 {
		s.burst = float64(u.BurstPerSource)
		if s.burst == 0 {
			s.burst = max(1, math.Ceil(s.rate))
		}
	}
	if s.idle == 0 {
		s.idle = DefaultUDPIdleTimeout
	}
	return s, nil
}

// Serve forwards the datagrams that reach pc until Close, and returns
// ErrUDPBalancerClosed then, or the error that stopped it. After Close or
// Shutdown, Serve closes pc and returns ErrUDPBalancerClosed at once; after
// StopAccepting it returns at once, leaving pc open.
func (u *UDPBalancer) Serve(pc *net.UDPConn) error {
	u.mu.Lock()
	if u.proxy != nil {
		u.mu.Unlock()
		return errors.New("tcplb: UDPBalancer.Serve called twice")
	}
	if u.closed {
		u.mu.Unlock()
		pc.Close()
		return ErrUDPBalancerClosed
	}
	s := u.cur.Load() // set by a Reload before Serve
	if s == nil {
		var err error
		if s, err = u.settings(); err != nil {
			u.mu.Unlock()
			return err
		}
	}
	u.local = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	u.local = netip.AddrPortFrom(u.local.Addr().Unmap(), u.local.Port())
	p, err := dgram.New(pc, dgram.Config{Handler: udpPolicy{u}, Idle: s.idle, Responses: s.responses,
		MaxDatagram: s.maxDatagram, EventLoop: u.Engine.resolve() == EngineEpoll})
	if err != nil {
		u.mu.Unlock()
		return err
	}
	u.proxy = p
	u.sources = newSourceTable(maxSources)
	u.cur.Store(s)
	if u.stopped {
		p.Stop()
	}
	u.mu.Unlock()
	s.pool.attach(u, true)
	defer func() {
		u.mu.Lock()
		pools := u.pools
		u.pools = nil
		u.mu.Unlock()
		for p := range pools {
			p.attach(u, false)
		}
		s.pool.attach(u, false)
	}()
	err = p.Serve()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, dgram.ErrStopped) {
		return ErrUDPBalancerClosed
	}
	return err
}

// Reload makes a running balancer take next's Name, Pool, IdleTimeout,
// Responses, MaxSessions, MaxDatagram, Allow and Deny (its loggers are
// not taken). New sessions use them at once; open sessions keep their
// backend, including one that is not in a new Pool (as TCP connections
// do: it lasts until it ends by itself), and take the new idle timeout,
// response count and datagram limit. A setting Serve would refuse is an
// error and changes nothing. Before Serve, Reload sets what Serve starts
// with.
func (u *UDPBalancer) Reload(next *UDPBalancer) error {
	s, err := next.settings()
	if err != nil {
		return err
	}
	u.mu.Lock()
	p := u.proxy
	if p == nil {
		u.cur.Store(s)
		u.mu.Unlock()
		return nil
	}
	old := u.cur.Swap(s)
	if old.pool != s.pool {
		// The old pool still has sessions: its drains must reach them.
		if u.pools == nil {
			u.pools = map[*Pool]struct{}{}
		}
		u.pools[old.pool] = struct{}{}
	}
	u.mu.Unlock()
	s.pool.attach(u, true)
	p.SetLimits(s.idle, s.responses, s.maxDatagram)
	return nil
}

// closeBackend ends the sessions to b (a drained backend whose drain
// timeout passed), and returns how many it ended.
func (u *UDPBalancer) closeBackend(b *Backend, why End) int {
	u.mu.Lock()
	p := u.proxy
	u.mu.Unlock()
	if p == nil {
		return 0
	}
	return p.CloseIf(func(s dgram.Session) bool {
		us := s.(*udpSession)
		if us.b != b {
			return false
		}
		us.end.CompareAndSwap(nil, &why)
		return true
	})
}

// StopAccepting makes Serve return ErrUDPBalancerClosed without closing
// the socket: no datagram is read from it any more, so no session opens,
// but the open sessions' replies still reach their clients from it until
// the sessions end. Another process may read the socket meanwhile, as in
// a binary upgrade. Shutdown or Close closes the socket.
func (u *UDPBalancer) StopAccepting() {
	u.mu.Lock()
	u.stopped = true
	p := u.proxy
	u.mu.Unlock()
	if p != nil {
		p.Stop()
	}
}

// Shutdown stops reading the socket (StopAccepting), waits until the
// open sessions have ended by themselves or ctx is done, then closes the
// socket and ends what is left, returning ctx's error in that case.
func (u *UDPBalancer) Shutdown(ctx context.Context) error {
	u.mu.Lock()
	u.stopped, u.closed = true, true
	p := u.proxy
	u.mu.Unlock()
	if p == nil {
		return nil
	}
	p.Stop()
	var err error
	select {
	case <-p.Empty():
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.Close()
	return err
}

// Close stops Serve and ends every session.
func (u *UDPBalancer) Close() error {
	u.mu.Lock()
	u.stopped, u.closed = true, true
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
	cfg := u.cur.Load()
	a := client.Addr()
	if inPrefixes(cfg.deny, a) || (len(cfg.allow) > 0 && !inPrefixes(cfg.allow, a)) {
		u.drops[dropDenied].Add(1)
		return dgram.Verdict{}
	}
	if m := cfg.maxSessions; m > 0 {
		if u.sessions.Add(1) > int64(m) {
			u.sessions.Add(-1)
			u.drops[dropMaxSessions].Add(1)
			return dgram.Verdict{}
		}
	} else {
		u.sessions.Add(1)
	}
	counted := cfg.perSource > 0
	if counted && u.sources.acquire(a, cfg.perSource, 0, cfg.burst, time.Now()) != "" {
		u.sessions.Add(-1)
		u.drops[dropSourceSessions].Add(1)
		return dgram.Verdict{}
	}
	var passed *Backend
	avail := cfg.pool.avail.Load()
	var candidates []*Backend
	if avail != nil {
		candidates = *avail
	}
	b, _ := pickAcquire(cfg.pool, client, candidates, &passed)
	if b == nil {
		if counted {
			u.sources.release(a)
		}
		u.sessions.Add(-1)
		u.drops[dropNoBackend].Add(1)
		return dgram.Verdict{}
	}
	var prefix []byte
	if cfg.pool.opts.Load().SendProxy == ProxyV2 {
		prefix = proxyproto.AppendV2Datagram(nil, client, u.local)
	}
	b.total.Add(1)
	u.total.Add(1)
	s := &udpSession{u: u, cfg: cfg, b: b, client: client, start: time.Now(), seen: avail, counted: counted}
	v := dgram.Verdict{Session: s, Backend: b.ap, Prefix: prefix}
	if !b.ap.IsValid() {
		// A host name, looked up for each session as for each TCP dial,
		// off the event loop; a failed lookup is a failed dial.
		v.Resolve = func() (netip.AddrPort, error) { return lookupUDP(b.addr) }
	}
	return v
}

// lookupUDP returns addr, a host name and port, as an IP and port.
func lookupUDP(addr string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err // "lookup HOST: ..."
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
	u       *UDPBalancer
	cfg     *udpSettings // the balancer's settings when the session opened
	b       *Backend
	client  netip.AddrPort
	start   time.Time
	seen    *[]*Backend         // the pool's Available snapshot b was last found in
	counted bool                // in the per-source session count
	end     atomic.Pointer[End] // why the policy ended the session, if it did

	in, out           atomic.Uint64 // datagrams each way
	bytesIn, bytesOut atomic.Uint64
	unanswered        atomic.Int64 // datagrams to the backend since its last reply
}

// FromClient counts a client's datagram, or ends the session if its
// backend has left the pool's available backends without draining (it is
// down or ejected): the datagram then opens a new session. Checked only
// when the pool's snapshot has changed, so one atomic load per datagram.
func (s *udpSession) FromClient(n int) dgram.Pass {
	if now := s.cfg.pool.avail.Load(); now != s.seen {
		if (now == nil || !slices.Contains(*now, s.b)) && !s.b.isDraining() {
			why := EndBackendDown
			s.end.CompareAndSwap(nil, &why)
			return dgram.Reopen
		}
		s.seen = now
	}
	if c := s.u.cur.Load(); c.rate > 0 && !s.u.sources.take(s.client.Addr(), c.rate, c.burst, time.Now()) {
		s.u.drops[dropRate].Add(1)
		return dgram.Discard
	}
	s.in.Add(1)
	s.unanswered.Add(1)
	s.bytesIn.Add(uint64(n))
	s.u.dgIn.Add(1)
	s.u.bytesIn.Add(uint64(n))
	s.b.bytesOut.Add(uint64(n))
	s.b.dgramsOut.Add(1)
	return dgram.Forward
}

func (s *udpSession) FromBackend(n int) {
	s.out.Add(1)
	s.unanswered.Store(0)
	s.bytesOut.Add(uint64(n))
	s.u.dgOut.Add(1)
	s.u.bytesOut.Add(uint64(n))
	s.b.bytesIn.Add(uint64(n))
	s.b.dgramsIn.Add(1)
}

// Ways a UDP session ends, beside EndIdle, EndShutdown and EndDrained.
const (
	EndResponses   End = "responses"           // the backend sent UDPBalancer.Responses replies
	EndUnreachable End = "backend unreachable" // an ICMP error: port or host unreachable
	EndBackendDown End = "backend down"        // the backend went down or was ejected; the next datagram opened a new session
	EndError       End = "error"               // another error on the session's socket
)

// udpEnds name the mechanism's reasons in the access log.
var udpEnds = map[dgram.Reason]End{
	dgram.Idle:        EndIdle,
	dgram.Responses:   EndResponses,
	dgram.Unreachable: EndUnreachable,
	dgram.DialFailed:  EndConnectFailed,
	dgram.Closed:      EndShutdown,
	dgram.Error:       EndError,
}

func (s *udpSession) Ended(why dgram.Reason, err error) {
	u := s.u
	pool := s.cfg.pool
	release(pool, s.b)
	u.sessions.Add(-1)
	if s.counted {
		u.sources.release(s.client.Addr())
	}
	u.durations.observe(time.Since(s.start))
	switch {
	case why == dgram.Unreachable || why == dgram.DialFailed:
		if why == dgram.DialFailed {
			u.logger().Warn("backend connect failed", "listener", s.cfg.name, "pool", pool.Name(),
				"backend", s.b.addr, "client", s.client.String(), "protocol", "udp", "err", err)
		}
		pool.passiveFailure(s.b, "UDP: "+err.Error())
	case why == dgram.Idle:
		if n, limit := s.unanswered.Load(), pool.opts.Load().Passive.UDPUnanswered; limit > 0 && n >= int64(limit) {
			pool.passiveFailure(s.b, fmt.Sprintf("UDP: %d datagrams without a reply within the idle timeout", n))
		}
	}
	end := udpEnds[why]
	if e := s.end.Load(); e != nil && why == dgram.Closed {
		end = *e
	}
	al := u.AccessLog
	if al == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("client", s.client.String()),
		slog.String("listener", s.cfg.name),
		slog.String("pool", pool.Name()),
		slog.String("backend", s.b.addr),
		slog.Uint64("client_datagrams", s.in.Load()),
		slog.Uint64("backend_datagrams", s.out.Load()),
		slog.Uint64("client_bytes", s.bytesIn.Load()),
		slog.Uint64("backend_bytes", s.bytesOut.Load()),
		slog.Duration("duration", time.Since(s.start)),
		slog.String("end", string(end)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	al.LogAttrs(context.Background(), slog.LevelInfo, "udp session", attrs...)
}
