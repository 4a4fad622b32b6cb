package tcplb

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// This file holds what the randomised strategies (random, p2c,
// least-latency, least-conn) share: where their random numbers come from,
// and a cached alias table that draws a backend in proportion to its weight
// in O(1).

// randSource gives a strategy its random numbers. The zero value uses
// math/rand/v2's top-level generator, which is safe for concurrent use and
// needs no lock. Tests set r to a seeded generator to make picks
// reproducible; a *rand.Rand is not safe for concurrent use, so such a
// strategy must then be called from one goroutine.
type randSource struct {
	r *rand.Rand
}

func (s *randSource) uint64() uint64 {
	if s.r == nil {
		return rand.Uint64()
	}
	return s.r.Uint64()
}

// uniform maps the random x to [0, n) by Lemire's multiply-shift: the high
// word of x·n. Without his rejection step a value is favoured by at most
// n/2⁶⁴, far below anything a test could see.
func uniform(x, n uint64) uint64 {
	hi, _ := bits.Mul64(x, n)
	return hi
}

// other maps the random x to an index in [0, n) other than i, each with
// probability 1/(n-1). n must be at least 2.
func other(x uint64, i, n int) int {
	j := i + 1 + int(uniform(x, uint64(n-1)))
	if j >= n {
		j -= n
	}
	return j
}

// splitmix is SplitMix64 (Steele, Lea and Flood, 2014): a tiny generator
// seeded once per pick from randSource, for the many coin flips of a
// least-conn scan, where calling math/rand/v2 per flip would cost more than
// the scan.
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	return mix64(uint64(*s))
}

// mix64 is SplitMix64's finaliser: a bijection of uint64 in which every
// input bit affects every output bit.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// sameSlice reports whether a and b are the same slice: same first element
// and length. The balancer never modifies a slice it has passed to Pick, so
// the same slice means the same backends in the same order.
func sameSlice(a, b []*Backend) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// aliasTable draws an index into one backend slice with probability
// weight/total, in O(1): Walker's alias method as built by Vose (1991).
// Column k of n is chosen uniformly; it keeps k with probability
// keep/2³² and gives its alias otherwise. An aliasTable is immutable.
type aliasTable struct {
	backends []*Backend // the caller's slice it was built for, kept as its identity
	weights  []int32    // the weights it was built with
	columns  []aliasColumn
	uniform  bool // all weights are equal: columns is nil and a draw is one multiply
}

type aliasColumn struct {
	keep  uint32 // the column's own index is drawn if the coin is below keep
	alias uint32
}

func newAliasTable(backends []*Backend) *aliasTable {
	n := len(backends)
	t := &aliasTable{backends: backends, weights: make([]int32, n), uniform: true}
	var total uint64
	for i, b := range backends {
		w := b.weight.Load()
		t.weights[i] = w
		total += uint64(w)
		t.uniform = t.uniform && w == t.weights[0]
	}
	if t.uniform {
		return t
	}
	// Vose's construction in integers: column k holds weight·n out of
	// total. An under-full column is topped up from an over-full one, which
	// becomes its alias.
	t.columns = make([]aliasColumn, n)
	scaled := make([]uint64, n)
	var small, large []int
	for i, w := range t.weights {
		scaled[i] = uint64(w) * uint64(n)
		if scaled[i] < total {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t.columns[s] = aliasColumn{keep: uint32(scaled[s] << 32 / total), alias: uint32(l)}
		scaled[l] -= total - scaled[s]
		if scaled[l] < total {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What is left is full, up to rounding: it keeps itself whatever the
	// coin.
	for _, i := range append(small, large...) {
		t.columns[i] = aliasColumn{keep: ^uint32(0), alias: uint32(i)}
	}
	return t
}

// draw maps the random x to a column, chosen uniformly from the top 32
// bits, and the index drawn, with the low 32 bits as the coin.
func (t *aliasTable) draw(x uint64) (column, index int) {
	k := int((x >> 32) * uint64(len(t.weights)) >> 32)
	if t.uniform {
		return k, k
	}
	c := t.columns[k]
	if uint32(x) < c.keep {
		return k, k
	}
	return k, int(c.alias)
}

// weightedDrawer draws backends in proportion to their weights, through an
// alias table cached for the slice it is usually given: the pool's current
// set, which stays the same slice until the set changes.
//
// The table is rebuilt (in O(n), once) for a new slice only the second time
// that slice is seen in a row of misses, so the one-off slices of the
// balancer's retries (the backends not yet tried) are drawn from by a linear
// scan instead and do not evict the pool's table. A change of weight is
// noticed when a draw lands in that backend's column, within about n draws.
type weightedDrawer struct {
	table atomic.Pointer[aliasTable]
	seen  atomic.Pointer[*Backend] // first element of the last slice without a table
}

// draw returns the index of a backend of backends, drawn with probability
// proportional to its weight from the random x. backends must not be empty.
func (d *weightedDrawer) draw(backends []*Backend, x uint64) int {
	t := d.table.Load()
	if t == nil || !sameSlice(t.backends, backends) {
		first := &backends[0]
		if d.seen.Swap(first) != first {
			return drawLinear(backends, x)
		}
		t = newAliasTable(backends)
		d.table.Store(t)
	}
	k, i := t.draw(x)
	if t.weights[k] != backends[k].weight.Load() {
		t = newAliasTable(backends)
		d.table.Store(t)
		_, i = t.draw(x)
	}
	return i
}

// drawLinear is draw without a table, in O(n).
func drawLinear(backends []*Backend, x uint64) int {
	var total uint64
	for _, b := range backends {
		total += uint64(b.weight.Load())
	}
	r := uniform(x, total)
	for i, b := range backends {
		w := uint64(b.weight.Load())
		if r < w {
			return i
		}
		r -= w
	}
	return len(backends) - 1 // a weight fell while we scanned
}
