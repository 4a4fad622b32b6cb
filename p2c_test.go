package tcplb

import (
	"net/netip"
	"testing"
)

// With nothing open every comparison is a tie, won by the first
// candidate, which is drawn by weight.
func TestP2CZeroLoadFollowsWeights(t *testing.T) {
	bs := mustBackends(t, 1, 2, 3, 4, 10)
	p := &P2C{twoChoices{src: seeded()}}
	const n = 100000
	counts := map[*Backend]int{}
	for range n {
		counts[p.Pick(netip.AddrPort{}, bs)]++
	}
	checkShares(t, bs, counts, n)
}

// The two candidates are distinct, so a backend busier for its weight
// than every other is never picked.
func TestP2CNeverPicksBusiest(t *testing.T) {
	for _, tt := range []struct {
		weights []int
		active  []int64
	}{
		{[]int{1, 1}, []int64{1, 0}},
		{[]int{1, 1, 1, 1}, []int64{0, 9, 2, 2}},
		{[]int{4, 1, 1}, []int64{9, 2, 2}}, // 9/4 > 2/1
	} {
		bs := mustBackends(t, tt.weights...)
		busiest := 0
		for i, a := range tt.active {
			bs[i].active.Store(a)
			if a*int64(tt.weights[busiest]) > tt.active[busiest]*int64(tt.weights[i]) {
				busiest = i
			}
		}
		p := &P2C{twoChoices{src: seeded()}}
		for range 10000 {
			if b := p.Pick(netip.AddrPort{}, bs); b == bs[busiest] {
				t.Fatalf("weights %v, active %v: picked the busiest, %v", tt.weights, tt.active, b)
			}
		}
	}
}

// Connections that stay open: after m picks over n backends, p2c's
// busiest backend is only a few connections over the average, m/n, while
// random's drifts by about √(m/n·log n). The bound, 4 over, is the
// log₂ log n + O(1) of Berenbrink et al. for n = 100 (log₂ ln 100 ≈ 2.2)
// with a margin; random at the same seed is logged for comparison.
func TestP2CHeldConnections(t *testing.T) {
	const n, m = 100, 10000
	gap := func(s Strategy) int64 {
		bs := backendsAt(t, n)
		for range m {
			s.Pick(netip.AddrPort{}, bs).active.Add(1)
		}
		var most int64
		for _, b := range bs {
			most = max(most, b.Active())
		}
		return most - m/n
	}
	p2c := gap(&P2C{twoChoices{src: seeded()}})
	random := gap(&Random{src: seeded()})
	t.Logf("%d connections held on %d backends: busiest is %d over the average with p2c, %d with random", m, n, p2c, random)
	if p2c > 4 {
		t.Errorf("p2c: busiest backend %d connections over the average of %d, want at most 4", p2c, m/n)
	}
}

// With weights, held connections end up in proportion to weight, within
// a few connections (random would be some ±15 off here).
func TestP2CWeightedHeldConnections(t *testing.T) {
	bs := mustBackends(t, 1, 2, 3, 4)
	p := &P2C{twoChoices{src: seeded()}}
	const m = 1000 // 100 per unit of weight
	for range m {
		p.Pick(netip.AddrPort{}, bs).active.Add(1)
	}
	for _, b := range bs {
		if want := int64(100 * b.Weight()); b.Active() < want-3 || b.Active() > want+3 {
			t.Errorf("%v (weight %d) holds %d of %d connections, want %d ± 3", b, b.Weight(), b.Active(), m, want)
		}
	}
}
