package tcplb

import "net/netip"

func init() {
	RegisterStrategy("p2c", func() Strategy { return NewP2C() })
}

// P2C is the "p2c" strategy, the power of two choices (Mitzenmacher,
// 2001): draw two backends and take the one with fewer open connections
// for its weight, Active/Weight. With equal weights and connections placed
// one after another, the busiest backend then stays about log₂ log n
// connections above the average however many are open (Berenbrink et al.,
// 2000), where independent random choices drift apart by the order of
// √(m·log n / n) for m connections. A pick costs O(1) whatever the pool
// size, with no lock: p2c suits large, busy pools, and pools shared by
// several balancer processes, which do not all rush to the same
// least-loaded backend as least-conn would.
//
// The first candidate is drawn in proportion to weight, the second
// uniformly among the others, and a tie goes to the first: with no
// connections open, picks follow the weights exactly, as with random.
//
// Pick is lock-free and allocates nothing: two random numbers, an
// alias-table lookup (see Random) and two Active loads.
type P2C struct {
	two twoChoices
}

// NewP2C returns a power-of-two-choices strategy.
func NewP2C() *P2C { return &P2C{} }

// Pick returns the less loaded for its weight of two backends drawn at
// random, or nil if backends is empty.
func (p *P2C) Pick(_ netip.AddrPort, backends []*Backend) *Backend {
	switch len(backends) {
	case 0:
		return nil
	case 1:
		return backends[0]
	}
	a, b := p.two.draw(backends)
	// b/wb < a/wa, cross-multiplied; weights are at most MaxWeight, so the
	// products cannot overflow.
	if b.active.Load()*int64(a.weight.Load()) < a.active.Load()*int64(b.weight.Load()) {
		return b
	}
	return a
}

// twoChoices draws the candidates of a power-of-two-choices pick.
type twoChoices struct {
	src    randSource
	drawer weightedDrawer
}

// draw returns two different backends of backends, which must hold at
// least two: first drawn in proportion to weight, second uniformly among
// the rest.
func (c *twoChoices) draw(backends []*Backend) (first, second *Backend) {
	i := c.drawer.draw(backends, c.src.uint64())
	j := other(c.src.uint64(), i, len(backends))
	return backends[i], backends[j]
}
