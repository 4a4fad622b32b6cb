package tcplb

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// MaxWeight is the largest backend weight, as in HAProxy. Weights are
// relative: a backend of weight 2 gets twice the connections of one of
// weight 1.
const MaxWeight = 256

// Backend is one server that connections are forwarded to. It carries the
// counters that strategies and operators read: all methods are safe for
// concurrent use, and reading a counter costs one atomic load.
//
// A Backend keeps its counters for its whole life, so a pool that is
// reconfigured should keep the *Backend of an address that stays.
type Backend struct {
	addr   string
	ap     netip.AddrPort // addr as an IP literal and port, if it is one: the event loops dial it without a lookup
	weight atomic.Int32

	active        atomic.Int64
	total         atomic.Uint64
	connectErrors atomic.Uint64
	bytesIn       atomic.Uint64 // bytes read from this backend
	bytesOut      atomic.Uint64 // bytes written to this backend
	dgramsIn      atomic.Uint64 // UDP: replies read from this backend
	dgramsOut     atomic.Uint64 // UDP: client datagrams written to this backend

	connectTime histogram // how long successful dials took

	latency atomic.Uint64 // least-latency's estimate and its update time, packed (latency.go); 0 until the first sample

	lcRef atomic.Pointer[lcRef] // the least-conn index ordering this backend, if any (leastconn_index.go)

	maxConns  atomic.Int64 // 0: no limit
	rampStart atomic.Int64 // monoNanos when a slow start began; 0 when not ramping (health.go)

	// Health state (health.go), guarded by mu; changed only under the
	// pool's mu too.
	mu                       sync.Mutex
	pool                     *Pool // the pool the backend was last added to
	upSince                  time.Time
	draining                 bool
	drainReason              string
	drainSince               time.Time
	drainTimer               *time.Timer // closes the connections at the drain timeout
	down, checked            bool        // by active checks; checked: a check has passed or failed
	downReason               string
	downSince                time.Time
	ejected, ejectCapped     bool // by passive checks; ejectCapped: refused by the ejection cap, logged
	ejectReason              string
	ejectSince, lastEjectEnd time.Time
	ejections                int // in a row, for the doubling cooldown
	ejectTimer               *time.Timer
	fails                    []time.Time // recent passive failures, oldest first
}

// addActive changes the count of open connections, and tells the least-conn
// index that orders the backend, if there is one. The balancer changes the
// count only through it.
func (b *Backend) addActive(delta int64) {
	b.active.Add(delta)
	b.activeChanged()
}

func (b *Backend) activeChanged() {
	if r := b.lcRef.Load(); r != nil {
		r.x.update(b, r.i)
	}
}

// acquire counts a new connection to b, unless b is at its connection
// limit, and reports whether it did.
func (b *Backend) acquire() bool {
	limit := b.maxConns.Load()
	if limit <= 0 {
		b.addActive(1)
		return true
	}
	if !incrementBelow(&b.active, limit) {
		return false
	}
	b.activeChanged()
	return true
}

// MaxConns returns the most connections the backend takes at once; 0 means
// no limit.
func (b *Backend) MaxConns() int64 { return b.maxConns.Load() }

// SetMaxConns sets the most connections the backend takes at once; 0 or
// less means no limit. A strategy's pick of a full backend is skipped;
// when every backend is full, a client waits for a free one up to the
// Balancer's QueueTimeout. Lowering the limit closes no connection.
func (b *Backend) SetMaxConns(n int64) { b.maxConns.Store(max(n, 0)) }

// NewBackend returns a backend for addr, a "host:port" address (an IPv6
// host in brackets: "[::1]:3001"), with the given weight, 1 to MaxWeight.
// The host may be a name; it is resolved at each dial.
func NewBackend(addr string, weight int) (*Backend, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, err
	}
	if weight < 1 || weight > MaxWeight {
		return nil, fmt.Errorf("weight %d: must be between 1 and %d", weight, MaxWeight)
	}
	b := &Backend{addr: addr, upSince: time.Now()}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		b.ap = ap
	}
	b.connectTime.bounds = connectBounds
	b.weight.Store(int32(weight))
	return b, nil
}

// CheckAddr reports why addr is not a usable backend address ("host:port"
// with a non-empty host and a port from 1 to 65535), or nil if it is.
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %v", addr, stripAddr(err))
	}
	if host == "" {
		return fmt.Errorf("%q: missing host", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%q: invalid port", addr)
	}
	return nil
}

// stripAddr drops the address that net.AddrError repeats, since callers
// already quote it.
func stripAddr(err error) error {
	if ae, ok := err.(*net.AddrError); ok {
		return fmt.Errorf("%s", ae.Err)
	}
	return err
}

// Addr returns the backend's "host:port" address.
func (b *Backend) Addr() string { return b.addr }

// Weight returns the backend's weight, 1 to MaxWeight.
func (b *Backend) Weight() int { return int(b.weight.Load()) }

// Active returns the number of connections open to the backend now.
func (b *Backend) Active() int64 { return b.active.Load() }

// Stats is a point-in-time copy of a backend's counters.
type Stats struct {
	Active        int64  // connections open now
	Total         uint64 // connections established since the backend was created
	ConnectErrors uint64 // dials that failed or timed out
	BytesIn       uint64 // bytes read from the backend (sent on to clients)
	BytesOut      uint64 // bytes written to the backend (received from clients)
}

// Stats returns the backend's counters. Byte counts are added when a
// Datagrams returns how many datagrams UDP sessions have passed through
// the backend, in the directions of Stats' BytesIn and BytesOut: in, the
// replies read from it; out, the client datagrams written to it (after
// the listener's limits and drops). Both are 0 for a backend no
// UDPBalancer has sent to.
func (b *Backend) Datagrams() (in, out uint64) { return b.dgramsIn.Load(), b.dgramsOut.Load() }

// forwarding direction finishes or pauses, not per read.
func (b *Backend) Stats() Stats {
	return Stats{
		Active:        b.active.Load(),
		Total:         b.total.Load(),
		ConnectErrors: b.connectErrors.Load(),
		BytesIn:       b.bytesIn.Load(),
		BytesOut:      b.bytesOut.Load(),
	}
}

// ConnectTimes returns the histogram of how long the backend's successful
// dials took.
func (b *Backend) ConnectTimes() HistogramSnapshot { return b.connectTime.snapshot() }

func (b *Backend) String() string { return b.addr }
