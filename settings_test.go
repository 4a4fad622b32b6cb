package tcplb

import (
	"io"
	"net/netip"
	"testing"
	"time"
)

func TestSetPoolWhileServing(t *testing.T) {
	tl := startLB(t, &Balancer{}, startBackend(t, greeter("a")))
	old := hold(t, tl.addr)
	bb, _ := NewBackend(startBackend(t, greeter("b")), 1)
	pb := NewPool("second", nil, bb)
	defer pb.Close()
	tl.SetPool(pb)
	tl.SetName("renamed")
	if tl.CurrentPool() != pb {
		t.Fatal("CurrentPool() is not the pool just set")
	}
	for range 3 {
		if who := whoAnswers(t, tl.addr); who != "b" {
			t.Fatalf("after SetPool, answered by %q, want b", who)
		}
	}
	io.WriteString(old.c, "still a\n")
	if line, err := old.r.ReadString('\n'); err != nil || line != "still a\n" {
		t.Fatalf("connection opened before SetPool: %q, %v; want it still served by a", line, err)
	}
	old.c.Close()
	recs := tl.waitAccessLog(t, 4)
	pools := map[string]int{}
	for _, r := range recs {
		pools[r["listener"].(string)+"/"+r["pool"].(string)]++
	}
	if pools["main/test"] != 1 || pools["renamed/second"] != 3 {
		t.Errorf("access log listener/pool = %v, want 1 main/test (the connection from before) and 3 renamed/second", pools)
	}
	if a := tl.Pool.Backends()[0]; a.Stats().Total != 1 || a.Active() != 0 {
		t.Errorf("old pool's backend: %+v, want 1 connection, closed", a.Stats())
	}
	// Drains of the new pool reach the balancer's connections.
	held := hold(t, tl.addr)
	pb.SetOptions(PoolOptions{DrainTimeout: time.Millisecond})
	pb.Drain(pb.Backends()[0].Addr())
	if _, err := io.ReadAll(held.c); err != nil {
		t.Fatalf("connection to a drained backend of the new pool: %v, want closed at the drain timeout", err)
	}
}

func TestSetTimeoutsAppliesToNewConnections(t *testing.T) {
	tl := startLB(t, &Balancer{IdleTimeout: -1}, startBackend(t, greeter("a")))
	before := hold(t, tl.addr)
	tl.SetTimeouts(0, 50*time.Millisecond, 0)
	after := hold(t, tl.addr)
	start := time.Now()
	if _, err := io.ReadAll(after.c); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("idle connection closed after %v, want about 50ms", d)
	}
	if rec := tl.waitAccessLog(t, 1)[0]; rec["end"] != string(EndIdle) {
		t.Errorf("end = %v, want idle timeout", rec["end"])
	}
	// The connection accepted before keeps no idle timeout.
	io.WriteString(before.c, "x\n")
	if line, err := before.r.ReadString('\n'); err != nil || line != "x\n" {
		t.Fatalf("connection accepted before SetTimeouts: %q, %v", line, err)
	}
}

func TestSetStrategy(t *testing.T) {
	p, _ := newTestPool(t, PoolOptions{}, "127.0.0.1:1", "127.0.0.1:2")
	last := p.Backends()[1]
	p.SetStrategy(StrategyFunc(func(_ netip.AddrPort, bs []*Backend) *Backend { return bs[len(bs)-1] }))
	for range 3 {
		if got := p.Strategy().Pick(netip.AddrPort{}, p.Available()); got != last {
			t.Fatalf("Pick = %v after SetStrategy, want %v", got, last)
		}
	}
	p.SetStrategy(nil)
	if _, ok := p.Strategy().(*RoundRobin); !ok {
		t.Errorf("SetStrategy(nil): strategy %T, want round robin", p.Strategy())
	}
}
