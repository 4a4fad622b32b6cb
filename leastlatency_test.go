package tcplb

import (
	"io"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// setLatencyDecay sets τ for the rest of the test.
func setLatencyDecay(t *testing.T, d time.Duration) {
	latencyDecayMillis.Store(d.Milliseconds())
	t.Cleanup(func() { latencyDecayMillis.Store(0) })
}

func TestPackLatency(t *testing.T) {
	for _, ns := range []float64{1, 999, 123456, 5e7, 3.6e12} {
		for _, at := range []int64{0, 1, 1 << 39, 1<<40 - 1} {
			v, gotAt := unpackLatency(packLatency(ns, at))
			if gotAt != at || math.Abs(v-ns)/ns > 1.0/(1<<16) {
				t.Errorf("unpack(pack(%g, %d)) = %g, %d", ns, at, v, gotAt)
			}
		}
	}
}

func near(got, want float64) bool { return math.Abs(got-want) <= want/(1<<15) }

// The peak EWMA step by step, with τ = 1s and times in milliseconds.
func TestLatencyEWMA(t *testing.T) {
	setLatencyDecay(t, time.Second)
	ms := float64(time.Millisecond)
	b := mustBackends(t, 1)[0]
	if got := b.latencyAt(0); got != 0 {
		t.Fatalf("estimate before any sample = %g, want 0", got)
	}
	steps := []struct {
		at     int64
		sample time.Duration // 0: only read
		want   float64
		why    string
	}{
		{1000, 10 * time.Millisecond, 10 * ms, "the first sample is taken as it is"},
		{2000, 0, 10 * ms / math.E, "a second later it has decayed by e"},
		{2000, 50 * time.Millisecond, 50 * ms, "a higher sample is taken at once"},
		{2000, 5 * time.Millisecond, 50 * ms, "a lower one in the same millisecond changes nothing"},
		{3000, 5 * time.Millisecond, 50*ms/math.E/math.E + 5*ms*(1-1/math.E), "a lower one a second later: decay, then a step of 1-1/e towards it"},
		{3500, 40 * time.Millisecond, 40 * ms, "a sample above the decayed estimate is taken"},
		{9000, 0, 40 * ms * math.Exp(-5.5), "reads decay it towards 0"},
	}
	for _, s := range steps {
		if s.sample > 0 {
			b.observeLatencyAt(s.sample, s.at)
		}
		if got := b.latencyAt(s.at); !near(got, s.want) {
			t.Errorf("at %dms after sample %v: estimate %.0fns, want %.0fns: %s", s.at, s.sample, got, s.want, s.why)
		}
	}
}

// observeLatency from many goroutines at once: no update is lost to a
// race, so the estimate ends at the highest sample of the last
// millisecond or above the lowest sample.
func TestLatencyConcurrent(t *testing.T) {
	b := mustBackends(t, 1)[0]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				b.observeLatency(time.Duration(1+(g*1000+i)%7) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if got := b.Latency(); got < time.Millisecond || got > 7*time.Millisecond {
		t.Errorf("after samples of 1 to 7ms, Latency() = %v", got)
	}
}

// compareLatency decays the older estimate to the newer one's time, which
// leaves the ratio of the two as it is now.
func TestCompareLatency(t *testing.T) {
	setLatencyDecay(t, time.Second)
	a, b := mustBackends(t, 1)[0], mustBackends(t, 1)[0]
	a.observeLatencyAt(50*time.Millisecond, 1000)
	b.observeLatencyAt(1*time.Millisecond, 3000)
	la, lb := compareLatency(a.latency.Load(), b.latency.Load())
	if now := int64(7000); !near(la/lb, a.latencyAt(now)/b.latencyAt(now)) {
		t.Errorf("compareLatency ratio %g, want the ratio now, %g", la/lb, a.latencyAt(now)/b.latencyAt(now))
	}
	if lb2, la2 := compareLatency(b.latency.Load(), a.latency.Load()); lb2 != lb || la2 != la {
		t.Errorf("compareLatency(b, a) = %g, %g, want %g, %g", lb2, la2, lb, la)
	}
	// A backend without a sample is given the other's estimate.
	if x, y := compareLatency(0, b.latency.Load()); x != y {
		t.Errorf("compareLatency(none, b) = %g, %g, want equal", x, y)
	}
	if x, y := compareLatency(0, 0); x != 1 || y != 1 {
		t.Errorf("compareLatency(none, none) = %g, %g, want 1, 1", x, y)
	}
}

func TestLeastLatencyScores(t *testing.T) {
	now := latencyNow()
	t.Run("slow avoided", func(t *testing.T) {
		bs := mustBackends(t, 1, 1, 1)
		for i, d := range []time.Duration{time.Millisecond, 50 * time.Millisecond, time.Millisecond} {
			bs[i].observeLatencyAt(d, now)
		}
		l := &LeastLatency{twoChoices{src: seeded()}}
		for range 1000 {
			if b := l.Pick(netip.AddrPort{}, bs); b == bs[1] {
				t.Fatal("picked the 50ms backend over 1ms ones with no load")
			}
		}
		// Load counts: at 1ms·(1+60) a fast backend scores worse than
		// 50ms·1.
		bs[0].active.Store(60)
		bs[2].active.Store(60)
		picked := 0
		for range 1000 {
			if l.Pick(netip.AddrPort{}, bs) == bs[1] {
				picked++
			}
		}
		if picked < 500 {
			t.Errorf("fast backends at 60 open connections: the idle 50ms one got %d of 1000 picks, want those it was drawn in", picked)
		}
	})
	t.Run("new backend", func(t *testing.T) {
		bs := mustBackends(t, 1, 1)
		bs[0].observeLatencyAt(time.Millisecond, now)
		l := &LeastLatency{twoChoices{src: seeded()}}
		counts := map[*Backend]int{}
		for range 1000 {
			counts[l.Pick(netip.AddrPort{}, bs)]++
		}
		// No sample: compared by load alone, a tie here.
		if counts[bs[1]] < 400 {
			t.Errorf("backend without a sample got %d of 1000 picks against an idle one, want about half", counts[bs[1]])
		}
		// Not flooded before its first answer.
		bs[1].active.Store(1)
		for range 100 {
			if l.Pick(netip.AddrPort{}, bs) == bs[1] {
				t.Fatal("backend without a sample picked with 1 open connection against an idle one")
			}
		}
	})
}

// Three backends on 127.0.0.1, one of which waits 50ms before its first
// byte; connections are made one after another through a balancer with
// least-latency and τ shortened to 200ms.
//
// The slow backend gets its first connection like the others, since no
// one has a sample; after its first answer its estimate is 50ms and it
// loses every comparison with a fast backend (about 1ms, more under the
// race detector) until the estimate has decayed below theirs, which takes
// τ·ln(50) ≈ 0.8s. Over 300 connections (well under a second of fast
// ones) it can thus get only a few; the bound, 10% against a fair share
// of 33%, leaves room for slow machines and still fails if latency is
// ignored.
//
// Then it turns fast. It gets no traffic until its estimate decays, then
// one probe, whose fast answer brings the estimate down at once (the
// probe comes about 4τ after the last update, so the step towards the
// sample is nearly all the way), and from then on its share: it must be
// given 20 connections within the test deadline, and is in about a second.
func TestLeastLatencySlowBackend(t *testing.T) {
	setLatencyDecay(t, 200*time.Millisecond)
	var slow atomic.Bool
	slow.Store(true)
	var bs []*Backend
	for i := range 3 {
		addr := startBackend(t, func(c *net.TCPConn) {
			if i == 0 && slow.Load() {
				time.Sleep(50 * time.Millisecond) // the backend under test is slow to answer
			}
			io.WriteString(c, "hello\n")
		})
		b, err := NewBackend(addr, 1)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	tl := startLB(t, &Balancer{Pool: NewPool("ll", NewLeastLatency(), bs...)})
	connect := func() {
		t.Helper()
		c := dial(t, tl.addr)
		if reply, err := io.ReadAll(c); err != nil || string(reply) != "hello\n" {
			t.Fatalf("reply %q, %v", reply, err)
		}
		c.Close()
	}
	totals := func() (n [3]uint64) {
		for i, b := range bs {
			n[i] = b.Stats().Total
		}
		return n
	}

	const phase1 = 300
	start := time.Now()
	for range phase1 {
		connect()
	}
	got := totals()
	t.Logf("slow backend: %d of %d connections in %v (the fast ones: %d, %d); estimates %v, %v, %v",
		got[0], phase1, time.Since(start).Round(time.Millisecond), got[1], got[2], bs[0].Latency(), bs[1].Latency(), bs[2].Latency())
	if got[0] > phase1/10 {
		t.Errorf("slow backend got %d of %d connections, want at most %d", got[0], phase1, phase1/10)
	}

	slow.Store(false)
	start = time.Now()
	before := got[0]
	deadline := start.Add(testDeadline)
	n := 0
	for totals()[0] < before+20 {
		if time.Now().After(deadline) {
			t.Fatalf("once fast, the slow backend got %d connections in %v (%d made), want 20", totals()[0]-before, testDeadline, n)
		}
		connect()
		n++
	}
	t.Logf("once fast, it got 20 connections after %v (%d made)", time.Since(start).Round(time.Millisecond), n)
}
