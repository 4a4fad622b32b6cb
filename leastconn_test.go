package tcplb

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLeastConnPicksLeast(t *testing.T) {
	for _, tt := range []struct {
		weights []int
		active  []int64
		want    int
	}{
		{[]int{1, 1, 1}, []int64{3, 1, 2}, 1},
		{[]int{1, 1, 1}, []int64{0, 5, 5}, 0},
		{[]int{1, 1, 1}, []int64{5, 5, 0}, 2},
		{[]int{1, 2}, []int64{1, 1}, 1},             // 1/2 < 1/1
		{[]int{1, 3}, []int64{1, 4}, 0},             // 1/1 < 4/3
		{[]int{256, 1}, []int64{300, 1}, 1},         // 300/256 > 1/1
		{[]int{256, 1}, []int64{200, 1}, 0},         // 200/256 < 1/1
		{[]int{1, 1, 2, 1}, []int64{4, 3, 5, 3}, 2}, // 2.5 beats 3
	} {
		bs := mustBackends(t, tt.weights...)
		for i, a := range tt.active {
			bs[i].active.Store(a)
		}
		l := &LeastConn{src: seeded()}
		for range 100 {
			if got := l.Pick(netip.AddrPort{}, bs); got != bs[tt.want] {
				t.Fatalf("weights %v, active %v: Pick = %v, want %v", tt.weights, tt.active, got, bs[tt.want])
			}
		}
	}
}

// Ties go to each tied backend in proportion to its weight.
func TestLeastConnTies(t *testing.T) {
	const n = 100000
	t.Run("all tied", func(t *testing.T) {
		bs := mustBackends(t, 1, 2, 3, 4, 10)
		l := &LeastConn{src: seeded()}
		counts := map[*Backend]int{}
		for range n {
			counts[l.Pick(netip.AddrPort{}, bs)]++
		}
		checkShares(t, bs, counts, n)
	})
	t.Run("some tied", func(t *testing.T) {
		bs := mustBackends(t, 1, 1, 3, 1)
		bs[1].active.Store(1)
		bs[3].active.Store(1)
		l := &LeastConn{src: seeded()}
		counts := map[*Backend]int{}
		for range n {
			counts[l.Pick(netip.AddrPort{}, bs)]++
		}
		if counts[bs[1]]+counts[bs[3]] > 0 {
			t.Fatalf("busier backends picked: %v", counts)
		}
		tied := []*Backend{bs[0], bs[2]}
		checkShares(t, tied, counts, n)
	})
}

// Connections held open through a balancer: each new one goes to the
// backend with the fewest for its weight, so 60 connections over weights
// 1, 2 and 3 end at exactly 10, 20 and 30 (greedily adding to a least
// loaded backend never leaves one over k·weight after k·total picks), and
// after some close, the next ones fill the gap.
func TestLeastConnHeldConnections(t *testing.T) {
	var bs []*Backend
	for i := range 3 {
		addr := startBackend(t, func(c *net.TCPConn) {
			fmt.Fprintf(c, "%s\n", c.LocalAddr()) // tell the client where it landed
			io.Copy(io.Discard, c)                // hold the connection until the client closes
		})
		b, err := NewBackend(addr, i+1)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	tl := startLB(t, &Balancer{Pool: NewPool("lc", NewLeastConn(), bs...)})

	conns := map[string][]net.Conn{} // backend address → client connections
	open := func() string {
		t.Helper()
		c := dial(t, tl.addr)
		// The greeting arrives after the balancer has counted the
		// connection, so the next pick sees it.
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("reading greeting: %v", err)
		}
		addr := strings.TrimSpace(line)
		conns[addr] = append(conns[addr], c)
		return addr
	}
	for range 60 {
		open()
	}
	for i, b := range bs {
		if got, want := len(conns[b.Addr()]), 10*(i+1); got != want || b.Active() != int64(want) {
			t.Errorf("%v (weight %d): %d connections, Active %d, want %d", b, b.Weight(), got, b.Active(), want)
		}
	}

	// Close 5 of the weight-3 backend's: the next 5 go there.
	heavy := bs[2]
	for _, c := range conns[heavy.Addr()][:5] {
		c.Close()
	}
	deadline := time.Now().Add(testDeadline)
	for heavy.Active() != 25 {
		if time.Now().After(deadline) {
			t.Fatalf("Active of %v = %d after closing 5 of 30, want 25", heavy, heavy.Active())
		}
		time.Sleep(time.Millisecond) // polling a counter; there is no event to wait on
	}
	for i := range 5 {
		if got := open(); got != heavy.Addr() {
			t.Errorf("connection %d after closing 5 on %v went to %v", i, heavy, got)
		}
	}
}
