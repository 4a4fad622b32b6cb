package tcplb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// seeded returns a random source with a fixed seed, for one goroutine.
func seeded() randSource { return randSource{rand.New(rand.NewPCG(1, 2))} }

// checkShares fails unless each backend's count is within 5 standard
// deviations of its weight's share of n independent draws. The counts come
// from a fixed seed, so the test is deterministic; 5σ is the bound a
// correct sampler would pass with any seed but for about one run in a
// million, so the seed is not what makes it pass.
func checkShares(t *testing.T, bs []*Backend, counts map[*Backend]int, n int) {
	t.Helper()
	total := 0
	for _, b := range bs {
		total += b.Weight()
	}
	for i, b := range bs {
		p := float64(b.Weight()) / float64(total)
		want, sigma := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
		if got := float64(counts[b]); math.Abs(got-want) > 5*sigma {
			t.Errorf("backend %d (weight %d of %d) picked %d times in %d, want %.0f ± %.0f (5σ)", i, b.Weight(), total, counts[b], n, want, 5*sigma)
		}
	}
}

// The alias table gives each backend exactly its weight's share, up to
// the rounding of each column's coin to 32 bits.
func TestAliasTableExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	many := make([]int, 1000)
	for i := range many {
		many[i] = 1 + rng.IntN(MaxWeight)
	}
	for _, weights := range [][]int{{1, 1, 1}, {3, 1, 2}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 256}, {256, 255, 128, 100, 7, 2, 1}, many} {
		name := fmt.Sprint(weights)
		if len(weights) > 20 {
			name = fmt.Sprintf("%d random weights", len(weights))
		}
		t.Run(name, func(t *testing.T) {
			bs := mustBackends(t, weights...)
			tab := newAliasTable(bs)
			n := float64(len(bs))
			p := make([]float64, len(bs))
			for k := range bs {
				if tab.uniform {
					p[k] += 1 / n
					continue
				}
				keep := float64(tab.columns[k].keep) / (1 << 32)
				p[k] += keep / n
				p[tab.columns[k].alias] += (1 - keep) / n
			}
			total := 0
			for _, w := range weights {
				total += w
			}
			for i, w := range weights {
				if want := float64(w) / float64(total); math.Abs(p[i]-want) > 1e-9 {
					t.Errorf("backend %d (weight %d): probability %.12f, want %.12f", i, w, p[i], want)
				}
			}
		})
	}
}

func TestRandomShares(t *testing.T) {
	bs := mustBackends(t, 1, 2, 3, 4, 10)
	const n = 100000
	t.Run("table", func(t *testing.T) {
		r := &Random{src: seeded()}
		counts := map[*Backend]int{}
		for range n {
			counts[r.Pick(netip.AddrPort{}, bs)]++
		}
		checkShares(t, bs, counts, n)
	})
	// A new slice each time, as the balancer's retries: drawn by a linear
	// scan, not from a table.
	t.Run("one-off slices", func(t *testing.T) {
		r := &Random{src: seeded()}
		counts := map[*Backend]int{}
		for range n {
			counts[r.Pick(netip.AddrPort{}, slices.Clone(bs))]++
		}
		if r.drawer.table.Load() != nil {
			t.Error("one-off slices got a table")
		}
		checkShares(t, bs, counts, n)
	})
}

// The pool's table survives the retries' one-off slices, a slice seen twice
// in a row gets a table, and a weight change rebuilds it.
func TestWeightedDrawerCache(t *testing.T) {
	bs := mustBackends(t, 1, 2, 3)
	var d weightedDrawer
	src := seeded()
	d.draw(bs, src.uint64())
	if d.table.Load() != nil {
		t.Fatal("table built for a slice seen once")
	}
	d.draw(bs, src.uint64())
	tab := d.table.Load()
	if tab == nil || !sameSlice(tab.backends, bs) {
		t.Fatal("no table for a slice seen twice")
	}
	for range 100 {
		d.draw(slices.Clone(bs[1:]), src.uint64())
		d.draw(bs, src.uint64())
	}
	if d.table.Load() != tab {
		t.Fatal("one-off slices replaced the pool's table")
	}
	bs[2].weight.Store(30)
	for range 1000 {
		d.draw(bs, src.uint64())
	}
	if tab := d.table.Load(); !sameSlice(tab.backends, bs) || tab.weights[2] != 30 {
		t.Fatalf("after a weight change, table weights %v, want [1 2 30]", tab.weights)
	}
}
