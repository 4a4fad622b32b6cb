package tcplb

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
)

func mustBackends(t testing.TB, weights ...int) []*Backend {
	t.Helper()
	bs := make([]*Backend, len(weights))
	for i, w := range weights {
		b, err := NewBackend(fmt.Sprintf("127.0.0.1:%d", 3001+i), w)
		if err != nil {
			t.Fatal(err)
		}
		bs[i] = b
	}
	return bs
}

// TestStrategyConformance runs every registered strategy through the rules
// of the Strategy contract.
func TestStrategyConformance(t *testing.T) {
	names := StrategyNames()
	if len(names) == 0 {
		t.Fatal("no strategies registered")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			testStrategyConformance(t, name)
		})
	}
}

func testStrategyConformance(t *testing.T, name string) {
	newS := func() Strategy {
		s, err := NewStrategy(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	client := netip.MustParseAddrPort("192.0.2.7:40000")

	t.Run("empty", func(t *testing.T) {
		s := newS()
		if b := s.Pick(client, nil); b != nil {
			t.Errorf("Pick(nil) = %v, want nil", b)
		}
		if b := s.Pick(client, []*Backend{}); b != nil {
			t.Errorf("Pick([]) = %v, want nil", b)
		}
	})

	for _, weights := range [][]int{{1}, {1, 1, 1}, {3, 1, 2}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 256}} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			s := newS()
			bs := mustBackends(t, weights...)
			in := make(map[*Backend]int, len(bs))
			for i, b := range bs {
				in[b] = i
			}
			total := 0
			for _, w := range weights {
				total += w
			}
			const goroutines, per = 8, 2000
			counts := make([][]int, goroutines)
			var wg sync.WaitGroup
			for g := range goroutines {
				counts[g] = make([]int, len(bs))
				wg.Go(func() {
					for i := range per {
						// Many clients, so that hashing strategies spread too.
						client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), byte(i)}), 40000)
						b := s.Pick(client, bs)
						k, ok := in[b]
						if !ok {
							t.Errorf("Pick = %v, not one of the given backends", b)
							return
						}
						counts[g][k]++
						if len(bs) > 1 && i%4 == 0 {
							// A retry, as the balancer makes after a failed
							// dial: a new slice of the backends not yet
							// tried. Not counted in the distribution.
							left := without(bs, b)
							if b := s.Pick(client, left); !slices.Contains(left, b) {
								t.Errorf("Pick(%v less %v) = %v, not one of the given backends", bs, bs[k], b)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			// Every backend gets its weighted share within 10% of all picks.
			// No connection is opened, so for the load-aware strategies
			// (least-conn, p2c, least-latency) every comparison is a tie,
			// which each breaks at random in proportion to weight; hash
			// spreads the 16,000 client addresses by its table, whose shares
			// follow the weights.
			n := goroutines * per
			for i, w := range weights {
				got := 0
				for g := range counts {
					got += counts[g][i]
				}
				want := float64(n) * float64(w) / float64(total)
				if d := float64(got) - want; d > 0.1*float64(n) || d < -0.1*float64(n) {
					t.Errorf("backend %d (weight %d) got %d of %d picks, want about %.0f", i, w, got, n, want)
				}
			}
		})
	}
}

func TestNewStrategyUnknown(t *testing.T) {
	_, err := NewStrategy("nope")
	if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "round-robin") {
		t.Fatalf(`NewStrategy("nope") error = %v, want one naming "nope" and listing round-robin`, err)
	}
}

func TestRoundRobinCyclic(t *testing.T) {
	bs := mustBackends(t, 1, 1, 1)
	rr := NewRoundRobin()
	for i := range 30 {
		if got, want := rr.Pick(netip.AddrPort{}, bs), bs[i%3]; got != want {
			t.Fatalf("pick %d = %v, want %v", i, got, want)
		}
	}
}

func TestRoundRobinSmoothWeighted(t *testing.T) {
	bs := mustBackends(t, 5, 1, 1)
	rr := NewRoundRobin()
	var got strings.Builder
	for range 14 {
		got.WriteByte("abc"[rr.Pick(netip.AddrPort{}, bs).Addr()[len("127.0.0.1:300")]-'1'])
	}
	if want := "aabacaaaabacaa"; got.String() != want {
		t.Errorf("weights 5,1,1 picked %s, want %s", got.String(), want)
	}
}

func TestRoundRobinWeightedShares(t *testing.T) {
	bs := mustBackends(t, 4, 2, 1, 10)
	rr := NewRoundRobin()
	counts := map[*Backend]int{}
	const cycles = 50
	for range cycles * 17 {
		counts[rr.Pick(netip.AddrPort{}, bs)]++
	}
	for _, b := range bs {
		if got, want := counts[b], cycles*b.Weight(); got != want {
			t.Errorf("%v (weight %d) picked %d times in %d cycles, want %d", b, b.Weight(), got, cycles, want)
		}
	}
}

func TestRoundRobinFollowsSetChanges(t *testing.T) {
	bs := mustBackends(t, 1, 1, 1, 1)
	rr := NewRoundRobin()
	rr.Pick(netip.AddrPort{}, bs)
	sub := bs[1:3]
	for range 10 {
		b := rr.Pick(netip.AddrPort{}, sub)
		if b != sub[0] && b != sub[1] {
			t.Fatalf("Pick(sub) = %v, outside the subset", b)
		}
	}
	bs[0].weight.Store(3)
	// The change is noticed when backend 0 is next picked, within a cycle.
	for i := 0; rr.Pick(netip.AddrPort{}, bs) != bs[0]; i++ {
		if i > 4 {
			t.Fatal("backend 0 not picked within a cycle")
		}
	}
	counts := map[*Backend]int{}
	for range 6 * 10 {
		counts[rr.Pick(netip.AddrPort{}, bs)]++
	}
	if counts[bs[0]] != 30 {
		t.Errorf("after weight change to 3, backend 0 got %d of 60 picks, want 30", counts[bs[0]])
	}
}

func BenchmarkRoundRobinPick(b *testing.B) {
	for _, weights := range [][]int{{1, 1, 1}, {5, 1, 1}} {
		b.Run(fmt.Sprint(weights), func(b *testing.B) {
			bs := mustBackends(b, weights...)
			rr := NewRoundRobin()
			client := netip.MustParseAddrPort("192.0.2.7:40000")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rr.Pick(client, bs)
				}
			})
		})
	}
}
