package tcplb

import (
	"net/netip"
	"sync"
	"time"
)

// sourceTable keeps, per client address, the open connections and a token
// bucket of new ones, for Edge's per-source limits.
//
// It is bounded: at maxSources entries, an insertion first forgets the
// entries that carry no state (no open connection and a full bucket), then,
// if the table is still full, arbitrary entries with no open connection; so
// a flood of distinct addresses can at worst reset some idle sources'
// buckets, and never grows the table past maxSources plus the sources with
// open connections (which the descriptor limit bounds).
type sourceTable struct {
	mu  sync.Mutex
	m   map[netip.Addr]*source
	max int
}

type source struct {
	active int     // open connections
	tokens float64 // new connections allowed now
	last   int64   // monoNanos when the tokens were counted
}

const maxSources = 1 << 16

func newSourceTable(max int) *sourceTable {
	return &sourceTable{m: make(map[netip.Addr]*source), max: max}
}

// acquire counts a new connection from a, unless a holds maxConns already
// (EndSourceLimit) or has no token left (EndRateLimited); 0 limits are off.
func (t *sourceTable) acquire(a netip.Addr, maxConns int, rate, burst float64, now time.Time) End {
	a = a.Unmap()
	ns := monoNanos(now)
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.entry(a, rate, burst, ns)
	if maxConns > 0 && s.active >= maxConns {
		return EndSourceLimit
	}
	if rate > 0 && !s.spend(rate, burst, ns) {
		return EndRateLimited
	}
	s.active++
	return ""
}

// take spends one of a's tokens of a bucket of rate per second and burst,
// and reports whether there was one; it does not count a connection.
func (t *sourceTable) take(a netip.Addr, rate, burst float64, now time.Time) bool {
	a = a.Unmap()
	ns := monoNanos(now)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.entry(a, rate, burst, ns).spend(rate, burst, ns)
}

// entry returns a's entry, made with a full bucket if a has none, making
// room first when the table is full; t.mu is held.
func (t *sourceTable) entry(a netip.Addr, rate, burst float64, ns int64) *source {
	s := t.m[a]
	if s == nil {
		if len(t.m) >= t.max {
			t.evict(rate, burst, ns)
		}
		s = &source{tokens: burst, last: ns}
		t.m[a] = s
	}
	return s
}

// spend refills s's bucket up to ns and takes a token from it, reporting
// whether there was one.
func (s *source) spend(rate, burst float64, ns int64) bool {
	s.tokens = min(burst, s.tokens+rate*float64(ns-s.last)/1e9)
	s.last = ns
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

// release counts a connection from a as closed.
func (t *sourceTable) release(a netip.Addr) {
	a = a.Unmap()
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.m[a]; s != nil && s.active > 0 {
		s.active--
	}
}

// evict makes room; t.mu is held.
func (t *sourceTable) evict(rate, burst float64, now int64) {
	for a, s := range t.m {
		full := rate <= 0 || s.tokens+rate*float64(now-s.last)/1e9 >= burst
		if s.active == 0 && full {
			delete(t.m, a)
		}
	}
	for a, s := range t.m {
		if len(t.m) < t.max*7/8 {
			return
		}
		if s.active == 0 {
			delete(t.m, a)
		}
	}
}
