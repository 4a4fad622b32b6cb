package tcplb

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

func init() {
	RegisterStrategy("hash", func() Strategy { return newMaglev(0) })
}

// Maglev is the "hash" strategy: consistent hashing of the client's IP
// address with Maglev's lookup table (Eisenbud et al., NSDI 2016). It
// suits backends that keep per-client state (caches, sessions) and pools
// served by several balancer processes that must agree without talking.
//
// What it guarantees:
//
//   - The same client IP address goes to the same backend while the set
//     of backends and their weights stay the same, in this process and in
//     any other with the same backends: the key is a fixed hash of the
//     address alone (not the port; an IPv4 address and its IPv4-mapped
//     IPv6 form are the same key), with no per-process seed, and the table
//     depends only on the backends' addresses and weights, not on their
//     order.
//   - Shares follow weights: the table has a prime number M of slots,
//     65537 or, for pools of more than 655 backends, the first prime above
//     a power of two that is over 100 times the number of backends (up to
//     4194319), and each backend fills slots in proportion to its weight:
//     within 1%, or within one slot for a backend with fewer than 100
//     (see TestMaglevTableShares). Each backend gets at least one. Clients
//     then spread over backends as their addresses hash over slots.
//   - Changing the set moves few clients that did not have to move:
//     removing one backend of n reassigns its own clients and, measured,
//     at most 0.02% of the others for n = 3, 0.3% for n = 10 and 0.7% for
//     n = 100 (see TestMaglevDisruption).
//   - A dead backend moves nobody else. When the balancer retries among the
//     backends not yet tried, Pick does not rebuild the table for that
//     subset but walks the client's preference list, the backends of the
//     slots following the client's slot, to the first one in the subset.
//     Clients of other backends keep theirs, and the dead backend's clients
//     spread over the rest in proportion to weight.
//
// With a balance factor c (see NewMaglev), Maglev also bounds each
// backend's load, as in consistent hashing with bounded loads (Mirrokni,
// Thorup and Zadimoghaddam, 2018): a backend whose Active is already at
// ⌈c/100 · (A+1) · weight/total weight⌉, where A is the pool's open
// connections, is skipped, and the client walks its preference list to
// the next backend with room. No backend then carries more than about c%
// of its fair share, at the price of sending some clients of a hot backend
// elsewhere; while no backend is over the bound, mapping is as without it.
// So that a pick stays O(1), A is re-read from the backends every n picks
// and counts the picks made since; connections closed in between are
// counted until the next re-read, which only loosens the bound.
//
// Pick is lock-free and allocates nothing while the backend set stays the
// same: a hash, a multiply and a table load, plus with a balance factor one
// Active load per slot walked. The table is built once per set of backends
// and weights, in O(M log M) time (milliseconds; see
// BenchmarkMaglevBuild), by the first pick that sees the new set; picks for
// that set that arrive meanwhile wait for it. A pick on a subset of the
// table's set (a retry) costs O(n) to find which backends it holds. A
// subset slice passed again soon (while among the last four subsets seen),
// as a pool's new, smaller set would be, gets its own table.
type Maglev struct {
	balanceFactor uint64 // 0: off; else at least 100
	table         atomic.Pointer[maglevTable]
	buildMu       sync.Mutex // serialises builds

	recentMu sync.Mutex
	recent   [4]sliceID // subsets recently served by walking the table
	next     int        // the slot of recent to overwrite next
}

// sliceID identifies a slice passed to Pick.
type sliceID struct {
	first **Backend
	n     int
}

// maxBalanceFactor bounds the balance factor so that the load arithmetic
// cannot overflow; a larger factor, over ten thousand times the fair share,
// bounds nothing in practice anyway.
const maxBalanceFactor = 1 << 20

// NewMaglev returns a consistent-hashing strategy. balanceFactor 0 maps
// each client address to its backend whatever the load; otherwise it must
// be at least 100, and a backend takes no new client while it holds
// balanceFactor/100 times its weighted share of the pool's open
// connections (counting the new one), rounded up, or more: 125 allows 25%
// over the average. The daemon sets it from a pool's hash_balance_factor.
func NewMaglev(balanceFactor int) (*Maglev, error) {
	if balanceFactor < 0 || balanceFactor > 0 && balanceFactor < 100 {
		return nil, fmt.Errorf("hash balance factor %d: must be 0 (off) or at least 100", balanceFactor)
	}
	return newMaglev(uint64(min(balanceFactor, maxBalanceFactor))), nil
}

func newMaglev(balanceFactor uint64) *Maglev {
	return &Maglev{balanceFactor: balanceFactor}
}

// BalanceFactor returns the balance factor in use: the one given to
// NewMaglev, at most 2²⁰, or 0 for none.
func (m *Maglev) BalanceFactor() int { return int(m.balanceFactor) }

// Pick returns the backend of the client's IP address, or nil if backends
// is empty.
func (m *Maglev) Pick(client netip.AddrPort, backends []*Backend) *Backend {
	switch len(backends) {
	case 0:
		return nil
	case 1:
		return backends[0]
	}
	key := hashClient(client.Addr())
	t := m.table.Load()
	if t == nil || !sameSlice(t.backends, backends) {
		if t != nil {
			if b := m.pickSubset(t, key, backends); b != nil {
				return b
			}
		}
		t = m.build(backends)
	}
	s := t.slot(key)
	i := int(t.slots[s])
	if t.weights[i] != backends[i].weight.Load() {
		t = m.build(backends)
		s = t.slot(key)
		i = int(t.slots[s])
	}
	if m.balanceFactor > 0 {
		bound := t.loadBound(m.balanceFactor)
		i, _ = t.walk(s, nil, &bound)
	}
	return backends[i]
}

// pickSubset picks for a slice that is not the table's: if it holds only
// backends of the table and has not been seen lately, it walks the
// client's preference list in the table to the first backend of the slice.
// Otherwise it returns nil, and the slice needs its own table.
func (m *Maglev) pickSubset(t *maglevTable, key uint64, backends []*Backend) *Backend {
	var buf [16]uint64 // enough for 1024 backends without allocating
	var present []uint64
	if words := (len(t.backends) + 63) / 64; words > len(buf) {
		present = make([]uint64, words)
	} else {
		present = buf[:words]
	}
	if !t.subset(backends, present) || m.seenBefore(backends) {
		return nil
	}
	var bound *loadBound
	if m.balanceFactor > 0 {
		var active int64
		var weight uint64
		for w, word := range present {
			for ; word != 0; word &= word - 1 {
				i := w*64 + bits.TrailingZeros64(word)
				active += t.backends[i].active.Load()
				weight += uint64(t.weights[i])
			}
		}
		b := newLoadBound(m.balanceFactor, active, weight)
		bound = &b
	}
	if i, ok := t.walk(t.slot(key), present, bound); ok {
		return t.backends[i]
	}
	return backends[uniform(key, uint64(len(backends)))]
}

// seenBefore reports whether the slice backends was passed to pickSubset
// lately (among the last four), and remembers it. The balancer's retries
// pass a new slice each time; a subset seen twice is rather a pool's new,
// smaller set, which deserves its own table.
func (m *Maglev) seenBefore(backends []*Backend) bool {
	id := sliceID{&backends[0], len(backends)}
	m.recentMu.Lock()
	defer m.recentMu.Unlock()
	if slices.Contains(m.recent[:], id) {
		return true
	}
	m.recent[m.next] = id
	m.next = (m.next + 1) % len(m.recent)
	return false
}

// build returns a table for backends with their current weights, building
// it unless another goroutine just did.
func (m *Maglev) build(backends []*Backend) *maglevTable {
	m.buildMu.Lock()
	defer m.buildMu.Unlock()
	if t := m.table.Load(); t != nil && sameSlice(t.backends, backends) && t.weightsCurrent() {
		return t
	}
	t := newMaglevTable(backends)
	m.table.Store(t)
	return t
}

// maglevSizes are the table sizes: primes, each the first above a power
// of two from 2¹⁶ to 2²².
var maglevSizes = [...]uint64{65537, 131101, 262147, 524309, 1048583, 2097169, 4194319}

// maglevSize returns the table size for n backends: the first of
// maglevSizes over 100·n, or the largest.
func maglevSize(n int) uint64 {
	for _, m := range maglevSizes {
		if m > 100*uint64(n) {
			return m
		}
	}
	return maglevSizes[len(maglevSizes)-1]
}

// maglevTable is Maglev's lookup table for one backend set. Only the
// bounded-load counters change after it is built.
type maglevTable struct {
	backends    []*Backend // the caller's slice it was built for, kept as its identity
	weights     []int32    // the weights it was built with
	totalWeight uint64
	slots       []uint32 // slot → index into backends
	index       map[*Backend]uint32

	// For the balance factor: the backends' total Active as last read,
	// and the picks so far (re-read every len(backends) picks).
	activeSum atomic.Int64
	picks     atomic.Uint64
}

// Seeds of the hashes: of a client address, and the two of a backend's
// address. They are arbitrary but fixed, in every process: changing one
// moves clients, as a table built differently would.
const (
	keySeed    = 0x6a09e667f3bcc908
	offsetSeed = 0x2545f4914f6cdd1d
	skipSeed   = 0x9e3779b97f4a7c15
)

// newMaglevTable builds the table for backends: Maglev's population, made
// weighted. Each backend has a permutation of the slots, starting at
// offset and stepping by skip (both from hashes of its address; M is
// prime, so every skip visits every slot), and takes turns claiming the
// next free slot of its permutation. A turn goes, round after round, to
// each backend whose quota ⌈round · weight / max weight⌉ has grown, so the
// heaviest take a turn every round, a backend of half their weight every
// other round, and every backend one in the first. Within a round the
// turns go by weight, heaviest first, then by address, so that the table
// does not depend on the order of backends.
func newMaglevTable(backends []*Backend) *maglevTable {
	n := len(backends)
	size := maglevSize(n)
	t := &maglevTable{
		backends: backends,
		weights:  make([]int32, n),
		slots:    make([]uint32, size),
		index:    make(map[*Backend]uint32, n),
	}
	var maxWeight uint64
	for i, b := range backends {
		w := b.weight.Load()
		t.weights[i] = w
		t.totalWeight += uint64(w)
		maxWeight = max(maxWeight, uint64(w))
		if _, dup := t.index[b]; !dup {
			t.index[b] = uint32(i)
		}
	}

	type turn struct {
		weight     uint64
		index      uint32 // into backends
		next, skip uint64 // the next slot of its permutation, and the step
	}
	turns := make([]turn, n)
	for i, b := range backends {
		h := fnv1a(b.addr)
		turns[i] = turn{
			weight: uint64(t.weights[i]),
			index:  uint32(i),
			next:   mix64(h^offsetSeed) % size,
			skip:   mix64(h^skipSeed)%(size-1) + 1,
		}
	}
	slices.SortFunc(turns, func(a, b turn) int {
		return cmp.Or(
			cmp.Compare(b.weight, a.weight),
			strings.Compare(backends[a.index].addr, backends[b.index].addr),
			cmp.Compare(a.index, b.index))
	})
	// Runs of equal weight take their turns together.
	var groups [][]turn
	for start, i := 0, 1; i <= n; i++ {
		if i == n || turns[i].weight != turns[start].weight {
			groups = append(groups, turns[start:i])
			start = i
		}
	}

	const free = ^uint32(0)
	for s := range t.slots {
		t.slots[s] = free
	}
	quota := func(round, weight uint64) uint64 { return (round*weight + maxWeight - 1) / maxWeight }
	filled := uint64(0)
	for round := uint64(1); filled < size; round++ {
		for _, g := range groups {
			if quota(round, g[0].weight) == quota(round-1, g[0].weight) {
				continue
			}
			for k := range g {
				p := &g[k]
				s := p.next
				for t.slots[s] != free {
					if s += p.skip; s >= size {
						s -= size
					}
				}
				t.slots[s] = p.index
				if s += p.skip; s >= size {
					s -= size
				}
				p.next = s
				if filled++; filled == size {
					return t
				}
			}
		}
	}
	return t
}

// slot returns the slot of a client key: the high word of key·M, which
// is uniform over [0, M) for uniform keys and needs no division.
func (t *maglevTable) slot(key uint64) uint64 {
	return uniform(key, uint64(len(t.slots)))
}

// weightsCurrent reports whether every backend still has the weight the
// table was built with.
func (t *maglevTable) weightsCurrent() bool {
	for i, b := range t.backends {
		if b.weight.Load() != t.weights[i] {
			return false
		}
	}
	return true
}

// subset reports whether every backend of backends is one of the table's,
// and sets the bit of each one's index in present, which must be zero and
// hold a bit per backend of the table.
func (t *maglevTable) subset(backends []*Backend, present []uint64) bool {
	// The balancer's retries keep the table's order: one merge pass.
	j := 0
	for _, b := range backends {
		for j < len(t.backends) && t.backends[j] != b {
			j++
		}
		if j == len(t.backends) {
			return t.subsetAnyOrder(backends, present)
		}
		present[j/64] |= 1 << (j % 64)
		j++
	}
	return true
}

func (t *maglevTable) subsetAnyOrder(backends []*Backend, present []uint64) bool {
	clear(present)
	for _, b := range backends {
		i, ok := t.index[b]
		if !ok {
			return false
		}
		present[i/64] |= 1 << (i % 64)
	}
	return true
}

// walk follows a client's preference list, the backends of the slots from
// s on, and returns the first that is in present (nil: every backend of
// the table) and, if bound is not nil, not full. If every backend in
// present that it sees within its walk limit is full, it returns the least
// loaded of them for its weight. ok is false if it saw none in present.
//
// Without a bound the walk may go round the whole table; with one it stops
// after 4n+64 slots, enough to find a backend with room unless nearly all
// are full, which a balance factor near 100 allows.
func (t *maglevTable) walk(s uint64, present []uint64, bound *loadBound) (i int, ok bool) {
	size := uint64(len(t.slots))
	limit := size
	if bound != nil {
		limit = min(size, 4*uint64(len(t.backends))+64)
	}
	best, bestActive, bestWeight := -1, int64(0), int64(1)
	for range limit {
		i := int(t.slots[s])
		if present == nil || present[i/64]&(1<<(i%64)) != 0 {
			if bound == nil {
				return i, true
			}
			active, weight := t.backends[i].active.Load(), int64(t.weights[i])
			if !bound.full(active, weight) {
				return i, true
			}
			if best < 0 || active*bestWeight < bestActive*weight {
				best, bestActive, bestWeight = i, active, weight
			}
		}
		if s++; s == size {
			s = 0
		}
	}
	return best, best >= 0
}

// loadBound says which backends are full under a balance factor c: those
// with Active·100·W ≥ c·(A+1)·weight, for A open connections and total
// weight W, that is Active ≥ ⌈c/100 · (A+1) · weight/W⌉. The ceiling keeps
// the capacities' sum above A, so some backend always has room.
type loadBound struct {
	limit uint64 // c·(A+1)
	scale uint64 // 100·W
}

func newLoadBound(factor uint64, active int64, totalWeight uint64) loadBound {
	return loadBound{limit: factor * (uint64(max(active, 0)) + 1), scale: 100 * totalWeight}
}

func (l *loadBound) full(active, weight int64) bool {
	hiA, loA := bits.Mul64(uint64(max(active, 0)), l.scale)
	hiB, loB := bits.Mul64(l.limit, uint64(weight))
	return hiA > hiB || hiA == hiB && loA >= loB
}

// loadBound returns the bound for the next pick from the table's set,
// counting the picks since the last read of the backends' Active as open
// connections.
func (t *maglevTable) loadBound(factor uint64) loadBound {
	k := t.picks.Add(1) - 1
	since := k % uint64(len(t.backends))
	if since == 0 {
		var sum int64
		for _, b := range t.backends {
			sum += b.active.Load()
		}
		t.activeSum.Store(sum)
	}
	return newLoadBound(factor, t.activeSum.Load()+int64(since), t.totalWeight)
}

// hashClient returns a client's key: a hash of its IP address, not its
// port, with no per-process seed, so that every process maps an address
// the same way. An IPv4 address and its IPv4-mapped IPv6 form have the
// same key.
func hashClient(a netip.Addr) uint64 {
	b := a.Unmap().As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	return mix64(hi ^ mix64(lo^keySeed))
}

// fnv1a is the 64-bit FNV-1a hash of s.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
