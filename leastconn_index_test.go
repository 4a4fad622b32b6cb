package tcplb

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
)

// bigPool returns n backends with weights 1 to 4, over lcScanMax so that
// least-conn uses its index.
func bigPool(t testing.TB, n int) []*Backend {
	t.Helper()
	bs := make([]*Backend, n)
	for i := range bs {
		b, err := NewBackend(fmt.Sprintf("10.0.%d.%d:80", i/250, i%250+1), 1+i%4)
		if err != nil {
			t.Fatal(err)
		}
		bs[i] = b
	}
	return bs
}

func minLoad(bs []*Backend) uint64 {
	m := lcLoad(bs[0])
	for _, b := range bs[1:] {
		m = min(m, lcLoad(b))
	}
	return m
}

// TestLeastConnIndexExact: through a random mix of opened and closed
// connections, every pick from the index is a least-loaded backend.
func TestLeastConnIndexExact(t *testing.T) {
	bs := bigPool(t, 200)
	l := NewLeastConn()
	r := rand.New(rand.NewPCG(3, 4))
	for step := range 20000 {
		b := l.Pick(netip.AddrPort{}, bs)
		if got, want := lcLoad(b), minLoad(bs); got != want {
			t.Fatalf("step %d: picked %v with load %d, least is %d", step, b, got, want)
		}
		b.addActive(1) // the connection opens
		if c := bs[r.IntN(len(bs))]; r.IntN(2) == 0 && c.Active() > 0 {
			c.addActive(-1) // some other one closes
		}
	}
	if l.index.Load() == nil {
		t.Fatal("least-conn did not build an index for a pool of 200")
	}
}

// TestLeastConnIndexTies: with nothing open, picks from the index follow the
// weights (all backends tie), and are not in list order.
func TestLeastConnIndexTies(t *testing.T) {
	bs := bigPool(t, 100)
	l := NewLeastConn()
	const n = 100000
	counts := map[*Backend]int{}
	first := make([]*Backend, 0, 10)
	for i := range n {
		b := l.Pick(netip.AddrPort{}, bs)
		counts[b]++
		if i >= 2 && len(first) < 10 { // the index exists from the second pick
			first = append(first, b)
		}
	}
	// Shares of weight classes 1..4 (25 backends each, total weight 250):
	// within 2% of all picks; the standard deviation of a class count is
	// about 0.15% of n here.
	class := make([]int, 4)
	for b, c := range counts {
		class[b.Weight()-1] += c
	}
	for w, c := range class {
		want := float64(n) * float64(25*(w+1)) / 250
		if d := float64(c) - want; d > 0.02*n || d < -0.02*n {
			t.Errorf("weight %d backends got %d picks, want about %.0f", w+1, c, want)
		}
	}
	inOrder := true
	for i := 1; i < len(first); i++ {
		inOrder = inOrder && first[i] == bs[i]
	}
	if inOrder {
		t.Error("ties were broken in list order")
	}
}

// TestLeastConnIndexConcurrent: picks and count changes from many
// goroutines leave the index agreeing with the counts.
func TestLeastConnIndexConcurrent(t *testing.T) {
	bs := bigPool(t, 64)
	l := NewLeastConn()
	l.Pick(netip.AddrPort{}, bs)
	l.Pick(netip.AddrPort{}, bs)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				b := l.Pick(netip.AddrPort{}, bs)
				b.addActive(1)
				b.addActive(-1)
				b.addActive(1)
			}
		})
	}
	wg.Wait()
	x := l.index.Load()
	x.mu.Lock()
	defer x.mu.Unlock()
	for at, n := range x.heap {
		if want := lcLoad(bs[n.i]); n.load != want {
			t.Errorf("index has load %d for %v, its count gives %d", n.load, bs[n.i], want)
		}
		if x.at[n.i] != int32(at) {
			t.Errorf("position of %v is %d, recorded %d", bs[n.i], at, x.at[n.i])
		}
		if at > 0 && x.less(at, (at-1)/2) {
			t.Errorf("heap order broken at %d", at)
		}
	}
}
