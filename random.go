package tcplb

import "net/netip"

func init() {
	RegisterStrategy("random", func() Strategy { return NewRandom() })
}

// Random is the "random" strategy: each pick is an independent draw in
// which a backend's chance is its weight over the total weight. It keeps no
// state between picks beyond a cached table, so it needs no coordination
// between listeners or balancer processes, but unlike round robin it
// guarantees shares only on average: over n picks a backend of share p gets
// n·p ± a few √(n·p).
//
// Pick is lock-free, allocates nothing and takes O(1) time: one random
// number and an alias-table lookup (Walker's alias method), the table built
// once in O(n) per backend set. A backend set passed only once, such as
// the balancer's retry among the backends not yet tried, is drawn from in
// O(n) without a table.
type Random struct {
	src    randSource
	drawer weightedDrawer
}

// NewRandom returns a weighted random strategy.
func NewRandom() *Random { return &Random{} }

// Pick returns a backend drawn at random in proportion to weight, or nil if
// backends is empty.
func (r *Random) Pick(_ netip.AddrPort, backends []*Backend) *Backend {
	switch len(backends) {
	case 0:
		return nil
	case 1:
		return backends[0]
	}
	return backends[r.drawer.draw(backends, r.src.uint64())]
}
