package tcplb

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// benchPool returns n backends as a busy pool looks to a strategy: weights
// 1 to 4 (so weighted draws take the alias table, not the shortcut for
// equal weights), 0 to 7 open connections each, and a latency sample of
// 0.5 to 1.5ms each.
func benchPool(b *testing.B, n int) []*Backend {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	bs := backendsAt(b, n)
	for i, be := range bs {
		be.weight.Store(int32(1 + i%4))
		be.active.Store(rng.Int64N(8))
		be.observeLatency(500*time.Microsecond + time.Duration(rng.Int64N(int64(time.Millisecond))))
	}
	return bs
}

// BenchmarkPick measures one pick from one goroutine, for each registered
// strategy and hash with a balance factor of 125, from pools of 3, 100 and
// 1000 backends, with the client address changing on every pick.
func BenchmarkPick(b *testing.B) {
	type strategy struct {
		name string
		new  func() Strategy
	}
	var strategies []strategy
	for _, name := range StrategyNames() {
		strategies = append(strategies, strategy{name, func() Strategy { s, _ := NewStrategy(name); return s }})
	}
	strategies = append(strategies, strategy{"hash-bounded", func() Strategy { return newMaglev(125) }})
	clients := make([]netip.AddrPort, 1024)
	for i := range clients {
		clients[i] = clientAt(i)
	}
	for _, s := range strategies {
		for _, n := range []int{3, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", s.name, n), func(b *testing.B) {
				bs := benchPool(b, n)
				st := s.new()
				st.Pick(clients[0], bs) // build any table outside the loop
				st.Pick(clients[0], bs)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					st.Pick(clients[i%len(clients)], bs)
					i++
				}
			})
		}
	}
}

// BenchmarkPickRetry measures a pick among the backends not yet tried, as
// the balancer makes after a failed dial: a slice the strategy has not
// seen, which it serves without building a table (hash walks the pool's
// table; random and p2c draw by a linear scan).
func BenchmarkPickRetry(b *testing.B) {
	for _, name := range StrategyNames() {
		for _, n := range []int{3, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				bs := benchPool(b, n)
				st, _ := NewStrategy(name)
				st.Pick(clientAt(0), bs)
				st.Pick(clientAt(0), bs)
				retries := make([][]*Backend, 64) // more than hash remembers
				for i := range retries {
					retries[i] = without(bs, bs[i%n])
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					st.Pick(clientAt(i), retries[i%len(retries)])
					i++
				}
			})
		}
	}
}
