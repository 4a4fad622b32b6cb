package tcplb

import (
	"math/rand/v2"
	"sync"
)

// lcIndex keeps one backend slice ordered for least-conn, so that a pick
// costs O(log n) instead of a scan of every backend. It is a binary min-heap
// keyed by (load, turn): load is Active/Weight as a 32.32 fixed-point
// number, which orders the ratios exactly for weights up to MaxWeight, and
// turn breaks ties. Each backend's turn is a virtual time that advances by
// an exponential draw of mean 1/weight each time the backend wins a tie, so
// among backends of equal load each is picked in proportion to its weight,
// in a random order.
//
// The balancer reports every change of a backend's Active count through
// Backend.addActive, which updates the index; weights are read when the
// index is built and when a backend's count changes. A backend indexed by
// two least-conn pools at once reports to the most recently built index
// only, so each pool should have Backends of its own (the daemon does).
type lcIndex struct {
	mu       sync.Mutex
	backends []*Backend // the slice it was built for, kept as its identity
	at       []int32    // backends[i] is heap[at[i]]
	heap     []lcNode
	now      float64 // the turn of the last pick
}

// lcNode is one backend's place in the heap; the keys sit in the heap array
// itself, so a sift compares neighbouring memory.
type lcNode struct {
	load uint64
	turn float64
	i    int32 // index into backends
}

func lcLoad(b *Backend) uint64 {
	a := max(b.active.Load(), 0)
	return uint64(a) << 32 / uint64(max(b.weight.Load(), 1))
}

// lcRef is where a backend reports changes of its Active count.
type lcRef struct {
	x *lcIndex
	i int32 // the backend's entry
}

func newLCIndex(backends []*Backend) *lcIndex {
	x := &lcIndex{
		backends: backends,
		at:       make([]int32, len(backends)),
		heap:     make([]lcNode, len(backends)),
	}
	// Point the backends here first, then read their loads under x.mu: a
	// count that changes meanwhile is either read below or reported here
	// after the build, never lost.
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, b := range backends {
		b.lcRef.Store(&lcRef{x, int32(i)})
	}
	for i, b := range backends {
		x.heap[i] = lcNode{load: lcLoad(b), turn: draw(b), i: int32(i)}
		x.at[i] = int32(i)
	}
	for i := len(x.heap)/2 - 1; i >= 0; i-- {
		x.down(i)
	}
	return x
}

// draw returns an exponential variate of mean 1/weight (math/rand/v2's
// ziggurat: a few nanoseconds, where -ln(u) would cost about twenty).
func draw(b *Backend) float64 {
	return rand.ExpFloat64() / float64(max(b.weight.Load(), 1))
}

// pick returns the backend with the least load, the earliest turn on a tie,
// and moves its turn on.
func (x *lcIndex) pick() *Backend {
	x.mu.Lock()
	defer x.mu.Unlock()
	top := &x.heap[0]
	b := x.backends[top.i]
	x.now = top.turn
	top.turn += draw(b)
	x.down(0)
	return b
}

// update re-reads b's load after its Active count changed.
func (x *lcIndex) update(b *Backend, i int32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if int(i) >= len(x.backends) || x.backends[i] != b {
		return
	}
	at := int(x.at[i])
	n := &x.heap[at]
	old := n.load
	n.load = lcLoad(b)
	// A backend back from a busy spell joins the ties at the current turn,
	// not with the turns it missed.
	n.turn = max(n.turn, x.now)
	if n.load < old {
		x.up(at)
	} else {
		x.down(at)
	}
}

func (x *lcIndex) less(i, j int) bool {
	a, b := &x.heap[i], &x.heap[j]
	return a.load < b.load || a.load == b.load && a.turn < b.turn
}

func (x *lcIndex) swap(i, j int) {
	x.heap[i], x.heap[j] = x.heap[j], x.heap[i]
	x.at[x.heap[i].i] = int32(i)
	x.at[x.heap[j].i] = int32(j)
}

func (x *lcIndex) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !x.less(i, p) {
			return
		}
		x.swap(i, p)
		i = p
	}
}

func (x *lcIndex) down(i int) {
	n := len(x.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && x.less(r, l) {
			m = r
		}
		if !x.less(m, i) {
			return
		}
		x.swap(i, m)
		i = m
	}
}
