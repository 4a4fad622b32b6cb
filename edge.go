package tcplb

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tcplb/tcplb/internal/sni"
)

// Edge is what a listener facing untrusted clients checks before it picks a
// backend, in this order: its connection limit, the PROXY protocol header
// of a trusted upstream, the access lists, the per-source limits and the
// TLS server name. A connection refused by any of them is closed before a
// backend is dialled, and counted by reason (BalancerStats.Rejected). The
// zero value checks nothing and costs nothing.
//
// The client address that the access lists, the per-source limits, the
// strategy (hash), the access log and the metrics see is the one a trusted
// upstream's PROXY header carried, or else the connection's peer.
type Edge struct {
	// ProxyProtocol, if non-nil, reads PROXY protocol headers from
	// trusted upstreams.
	ProxyProtocol *ProxyAccept

	// Deny refuses clients in these prefixes; then Allow, if not empty,
	// refuses the clients in none of its prefixes. IPv4 and IPv6 prefixes
	// may be mixed; an IPv4-mapped IPv6 client is matched as IPv4.
	Allow, Deny []netip.Prefix

	// MaxConns is the most connections the balancer holds at once,
	// counted from accept; 0 is no limit. Beyond it a new client waits,
	// in arrival order, up to the balancer's QueueTimeout, then is closed.
	MaxConns int

	// MaxConnsPerSource is the most connections one client address may
	// hold at once; 0 is no limit.
	MaxConnsPerSource int

	// RatePerSource is how many new connections per second one client
	// address may open (a token bucket of BurstPerSource tokens, default
	// the rate rounded up, at least 1); 0 is no limit. The table of
	// sources is bounded (see sourceTable): under a flood of distinct
	// addresses, idle entries are forgotten first.
	RatePerSource  float64
	BurstPerSource int

	// SNI, if non-nil, routes TLS connections by server name.
	SNI *SNIRouting
}

// ProxyAccept is how a listener takes PROXY protocol headers (v1 and v2,
// HAProxy's spec) from upstream load balancers.
type ProxyAccept struct {
	// Trusted are the upstreams allowed to send a header; required. A
	// trusted peer must send one, unless Optional; a connection from any
	// other peer that sends one is closed (a client must not choose the
	// address the backends see).
	Trusted  []netip.Prefix
	Optional bool

	// Timeout bounds the time to receive the whole header; a slower
	// upstream is closed. If zero, DefaultProxyHeaderTimeout (3s, the
	// spec's advice) is used.
	Timeout time.Duration
}

// SNIRouting routes TLS connections (without terminating TLS) by the server
// name of their ClientHello, which is read ahead and then sent to the
// backend first, so the backend receives every byte.
type SNIRouting struct {
	// Routes map server names to pools: exact names first, then
	// wildcards "*.example.com" matching one more label, the longest
	// suffix winning. Names are compared case-insensitively.
	Routes []SNIRoute

	// Close, if true, closes a connection with no ClientHello (within
	// Timeout and MaxHello bytes), no server name or no matching route;
	// otherwise it goes to the balancer's Pool.
	Close bool

	// Timeout bounds the time to receive the ClientHello. If zero,
	// DefaultClientHelloTimeout (5s) is used.
	Timeout time.Duration

	// MaxHello bounds the bytes read looking for the ClientHello. If zero,
	// DefaultMaxHello (one maximal TLS record, 16 KiB plus its header) is
	// used.
	MaxHello int
}

// SNIRoute sends the connections for ServerName ("a.example.com" or
// "*.example.com") to Pool.
type SNIRoute struct {
	ServerName string
	Pool       *Pool
}

// Defaults for the zero fields of ProxyAccept and SNIRouting.
const (
	DefaultProxyHeaderTimeout = 3 * time.Second
	DefaultClientHelloTimeout = 5 * time.Second
	DefaultMaxHello           = 16<<10 + 5
)

// edgeState is an Edge made ready for the accept path.
type edgeState struct {
	Edge
	proxyTimeout time.Duration
	sni          *sni.Table[*Pool]
	helloTimeout time.Duration
	maxHello     int
	burst        float64
}

// compileEdge checks e and builds its state; the zero Edge gives nil.
func compileEdge(e Edge) (*edgeState, error) {
	if e.ProxyProtocol == nil && len(e.Allow) == 0 && len(e.Deny) == 0 && e.MaxConns == 0 &&
		e.MaxConnsPerSource == 0 && e.RatePerSource == 0 && e.SNI == nil {
		return nil, nil
	}
	s := &edgeState{Edge: e}
	if p := e.ProxyProtocol; p != nil {
		if len(p.Trusted) == 0 {
			return nil, errors.New("proxy protocol: no trusted upstreams")
		}
		s.proxyTimeout = cmp.Or(p.Timeout, DefaultProxyHeaderTimeout)
	}
	for _, list := range [][]netip.Prefix{e.Allow, e.Deny, trusted(e.ProxyProtocol)} {
		for _, p := range list {
			if !p.IsValid() {
				return nil, fmt.Errorf("invalid prefix %v", p)
			}
		}
	}
	switch {
	case e.MaxConns < 0 || e.MaxConnsPerSource < 0 || e.BurstPerSource < 0:
		return nil, errors.New("negative connection limit")
	case e.RatePerSource < 0 || e.RatePerSource != e.RatePerSource:
		return nil, fmt.Errorf("rate per source %v: want 0 or more", e.RatePerSource)
	}
	if e.RatePerSource > 0 {
		s.burst = float64(e.BurstPerSource)
		if s.burst == 0 {
			s.burst = max(1, float64(int64(e.RatePerSource+0.999999)))
		}
	}
	if r := e.SNI; r != nil {
		s.sni = sni.NewTable[*Pool]()
		for _, route := range r.Routes {
			if route.Pool == nil {
				return nil, fmt.Errorf("sni route %q: no pool", route.ServerName)
			}
			if err := s.sni.Add(route.ServerName, route.Pool); err != nil {
				return nil, fmt.Errorf("sni route: %v", err)
			}
		}
		s.helloTimeout = cmp.Or(r.Timeout, DefaultClientHelloTimeout)
		s.maxHello = cmp.Or(r.MaxHello, DefaultMaxHello)
	}
	return s, nil
}

func trusted(p *ProxyAccept) []netip.Prefix {
	if p == nil {
		return nil
	}
	return p.Trusted
}

// inPrefixes reports whether a is in one of ps.
func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
