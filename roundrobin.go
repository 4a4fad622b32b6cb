package tcplb

import (
	"net/netip"
	"sync/atomic"
)

func init() {
	RegisterStrategy("round-robin", func() Strategy { return NewRoundRobin() })
}

// RoundRobin is the "round-robin" strategy, the default. With equal weights
// it is strictly cyclic: n picks over n backends give each backend exactly
// once, in slice order. When weights differ it follows nginx's smooth
// weighted round robin, which spreads a heavy backend's turns through the
// cycle instead of sending them in a burst: weights 5, 1, 1 give
// a a b a c a a.
//
// Pick is lock-free, O(1) and allocates nothing while the backend set stays
// the same slice: one atomic increment and a check of the picked backend's
// weight. A slice seen twice in a row gets a schedule, built once in
// O(n·W) for total weight W (the first slice at once); a slice seen once (the
// balancer's retry among the backends not yet tried after a failed dial) is
// served in plain cyclic order on a cycle of its own instead, so retries
// neither pay for a build nor evict or shift the pool's schedule. A weight changed in place is noticed when that backend is next
// picked, and the schedule is rebuilt for the picks after it.
type RoundRobin struct {
	next     atomic.Uint64
	schedule atomic.Pointer[rrSchedule]
	lastSeen atomic.Pointer[sliceID] // the last slice without a schedule
	other    atomic.Uint64           // the cycle of slices without a schedule
}

// NewRoundRobin returns a round-robin strategy.
func NewRoundRobin() *RoundRobin { return &RoundRobin{} }

// rrSchedule is one cycle of picks for a given backend set and weights.
type rrSchedule struct {
	backends []*Backend // the set it was built for, to detect a change
	weights  []int32
	order    []uint32 // indices into backends; nil when all weights are equal
}

// Pick returns the next backend of the cycle, or nil if backends is empty.
func (r *RoundRobin) Pick(_ netip.AddrPort, backends []*Backend) *Backend {
	switch len(backends) {
	case 0:
		return nil
	case 1:
		return backends[0]
	}
	s := r.schedule.Load()
	if s != nil && !sameSlice(s.backends, backends) {
		id := &sliceID{&backends[0], len(backends)}
		if prev := r.lastSeen.Swap(id); prev == nil || *prev != *id {
			return backends[(r.other.Add(1)-1)%uint64(len(backends))]
		}
		s = nil
	}
	if s == nil {
		s = newRRSchedule(backends)
		r.schedule.Store(s)
	}
	i := r.next.Add(1) - 1
	k := i % uint64(len(backends))
	if s.order != nil {
		k = uint64(s.order[i%uint64(len(s.order))])
	}
	b := backends[k]
	if b.weight.Load() != s.weights[k] {
		r.schedule.CompareAndSwap(s, newRRSchedule(backends))
	}
	return b
}

// newRRSchedule builds one cycle of smooth weighted round robin: each step
// adds every backend's weight to its running score, picks the highest score
// (the first on a tie) and takes the total weight off the winner. Weights
// are divided by their greatest common divisor first, so the cycle is as
// short as it can be.
func newRRSchedule(backends []*Backend) *rrSchedule {
	s := &rrSchedule{
		backends: backends, // the caller's slice, kept as its identity
		weights:  make([]int32, len(backends)),
	}
	g, equal := int32(0), true
	for i, b := range backends {
		w := b.weight.Load()
		s.weights[i] = w
		g = gcd(g, w)
		equal = equal && w == s.weights[0]
	}
	if equal {
		return s
	}
	total := int32(0)
	for _, w := range s.weights {
		total += w / g
	}
	score := make([]int32, len(backends))
	s.order = make([]uint32, total)
	for step := range s.order {
		best := 0
		for i, w := range s.weights {
			score[i] += w / g
			if score[i] > score[best] {
				best = i
			}
		}
		score[best] -= total
		s.order[step] = uint32(best)
	}
	return s
}

func gcd(a, b int32) int32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
