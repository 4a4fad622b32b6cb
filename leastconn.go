package tcplb

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

func init() {
	RegisterStrategy("least-conn", func() Strategy { return NewLeastConn() })
}

// LeastConn is the "least-conn" strategy: the backend with the fewest open
// connections for its weight, Active/Weight, as HAProxy's leastconn and
// nginx's least_conn. It suits long or uneven connections (databases,
// streams, WebSockets), where round robin leaves some backends with far
// more open connections than others. Ratios are compared cross-multiplied,
// in integers.
//
// Ties are broken at random in proportion to weight, by weighted reservoir
// sampling over the tied backends: with no connection open, picks follow
// the weights as with random, and backends started together do not all
// send their first connections to the first backend of the list.
//
// Pick allocates nothing. For pools of up to lcScanMax (32) backends it is
// lock-free and reads every backend (about 1.5 ns each); a larger pool gets
// an index ordered by load (leastconn_index.go), kept up to date by the
// balancer as connections open and close, and a pick costs O(log n) under
// a short lock (about 80 ns at 1000 backends). Concurrent picks see the same
// counts until the balancer has counted their connections, so a burst of
// simultaneous connections can land on the same backend; random
// tie-breaking spreads a burst that arrives on a tie.
type LeastConn struct {
	src randSource

	index    atomic.Pointer[lcIndex] // for pools over lcScanMax backends
	lastSeen atomic.Pointer[sliceID]
	buildMu  sync.Mutex
}

// lcScanMax is the largest pool that Pick scans; a larger one gets an
// index (leastconn_index.go) the second time in a row it is seen, and picks
// cost O(log n): a scan reads every backend, about 1.5 ns each.
const lcScanMax = 32

// NewLeastConn returns a least-connections strategy.
func NewLeastConn() *LeastConn { return &LeastConn{} }

// Pick returns the backend with the fewest open connections for its
// weight, or nil if backends is empty.
func (l *LeastConn) Pick(_ netip.AddrPort, backends []*Backend) *Backend {
	switch len(backends) {
	case 0:
		return nil
	case 1:
		return backends[0]
	}
	if len(backends) > lcScanMax {
		if x := l.indexFor(backends); x != nil {
			return x.pick()
		}
	}
	rng := splitmix(l.src.uint64())
	best := backends[0]
	bestActive, bestWeight := best.active.Load(), int64(best.weight.Load())
	tieWeight := bestWeight
	for _, b := range backends[1:] {
		active, weight := b.active.Load(), int64(b.weight.Load())
		lhs, rhs := active*bestWeight, bestActive*weight
		switch {
		case lhs > rhs:
			continue
		case lhs < rhs:
			tieWeight = 0
		}
		// On a tie, b replaces the candidate with probability
		// weight/tieWeight, which leaves each tied backend chosen with
		// probability its weight over theirs.
		tieWeight += weight
		if lhs < rhs || int64(uniform(rng.next(), uint64(tieWeight))) < weight {
			best, bestActive, bestWeight = b, active, weight
		}
	}
	return best
}

// indexFor returns the index of backends, building it when the slice is
// seen for the second time in a row; nil means scan (a one-off slice, such
// as the balancer's retry among the backends not yet tried).
func (l *LeastConn) indexFor(backends []*Backend) *lcIndex {
	if x := l.index.Load(); x != nil && sameSlice(x.backends, backends) {
		return x
	}
	id := &sliceID{&backends[0], len(backends)}
	if prev := l.lastSeen.Swap(id); prev == nil || *prev != *id {
		return nil
	}
	l.buildMu.Lock()
	defer l.buildMu.Unlock()
	if x := l.index.Load(); x != nil && sameSlice(x.backends, backends) {
		return x
	}
	x := newLCIndex(backends)
	l.index.Store(x)
	return x
}
