package tcplb

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// held is a client connection through the balancer that has been answered
// by a greeter backend, so it holds its slot.
type held struct {
	c   *net.TCPConn
	r   *bufio.Reader
	who string
}

func hold(t *testing.T, addr string) *held {
	t.Helper()
	c := dial(t, addr)
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("no greeting: %v", err)
	}
	return &held{c: c, r: r, who: strings.TrimSuffix(line, "\n")}
}

// pendingGreeting dials and returns a channel that receives the greeting
// line (or "" on close) once the balancer serves the connection.
func pendingGreeting(t *testing.T, addr string) (*net.TCPConn, chan string) {
	t.Helper()
	c := dial(t, addr)
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- strings.TrimSuffix(line, "\n")
	}()
	return c, got
}

func limitedPool(t *testing.T, limit int64, addrs ...string) *Pool {
	p, _ := newTestPool(t, PoolOptions{}, addrs...)
	for _, b := range p.Backends() {
		b.SetMaxConns(limit)
	}
	return p
}

func TestMaxConnsSkipsFullBackend(t *testing.T) {
	p := limitedPool(t, 1, startBackend(t, greeter("a")), startBackend(t, greeter("b")))
	tl := startLB(t, &Balancer{Pool: p})
	h1, h2 := hold(t, tl.addr), hold(t, tl.addr)
	if h1.who == h2.who {
		t.Fatalf("two held connections both on %s, want one per backend (max_conns 1)", h1.who)
	}
	// No queue: a third client is closed at once.
	if who := whoAnswers(t, tl.addr); who != "" {
		t.Fatalf("third connection answered by %q, want closed (every backend full)", who)
	}
	if rec := tl.waitAccessLog(t, 1)[0]; rec["end"] != string(EndFull) {
		t.Errorf("end = %v, want %q", rec["end"], EndFull)
	}
	for _, b := range p.Backends() {
		if b.Active() != 1 {
			t.Errorf("%v: %d active, want 1", b, b.Active())
		}
	}
}

func TestQueueWaitsForFreedSlotInArrivalOrder(t *testing.T) {
	p := limitedPool(t, 1, startBackend(t, greeter("a")), startBackend(t, greeter("b")))
	tl := startLB(t, &Balancer{Pool: p, QueueTimeout: testDeadline})
	h1, h2 := hold(t, tl.addr), hold(t, tl.addr)

	_, third := pendingGreeting(t, tl.addr)
	waitFor(t, "the third client to queue", func() bool { return p.queue.n.Load() == 1 })
	_, fourth := pendingGreeting(t, tl.addr)
	waitFor(t, "the fourth client to queue", func() bool { return p.queue.n.Load() == 2 })

	h1.c.Close()
	if who := <-third; who != h1.who {
		t.Fatalf("third client served by %q, want %q, whose slot was freed", who, h1.who)
	}
	// The third, served, let the fourth look too; it found no room and
	// went back to the head of the queue.
	waitFor(t, "the fourth client to wait again", func() bool { return p.queue.n.Load() == 1 })
	select {
	case who := <-fourth:
		t.Fatalf("fourth client served by %q before a second slot was freed", who)
	default:
	}
	h2.c.Close()
	if who := <-fourth; who != h2.who {
		t.Fatalf("fourth client served by %q, want %q", who, h2.who)
	}
}

func TestQueueTimeout(t *testing.T) {
	p := limitedPool(t, 1, startBackend(t, greeter("a")))
	tl := startLB(t, &Balancer{Pool: p, QueueTimeout: 50 * time.Millisecond})
	hold(t, tl.addr)
	start := time.Now()
	if who := whoAnswers(t, tl.addr); who != "" {
		t.Fatalf("answered by %q, want closed after the queue timeout", who)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("closed after %v, want after the 50ms queue timeout", waited)
	}
	if rec := tl.waitAccessLog(t, 1)[0]; rec["end"] != string(EndFull) {
		t.Errorf("end = %v, want %q", rec["end"], EndFull)
	}
	if n := p.queue.n.Load(); n != 0 {
		t.Errorf("%d still queued, want 0", n)
	}
}

func TestRampShares(t *testing.T) {
	b := &Backend{}
	start := time.Now()
	b.rampStart.Store(monoNanos(start))
	for _, tc := range []struct {
		at   time.Duration
		want float64
	}{{0, minRamp}, {time.Second, minRamp}, {5 * time.Second, 0.25}, {10 * time.Second, 0.5}, {19 * time.Second, 0.95}} {
		if got := b.ramp(start.Add(tc.at), 20*time.Second); got != tc.want {
			t.Errorf("ramp at %v of 20s = %v, want %v", tc.at, got, tc.want)
		}
	}
	if got := b.ramp(start.Add(20*time.Second), 20*time.Second); got != 1 || b.rampStart.Load() != 0 {
		t.Errorf("ramp at the end = %v (start %d), want 1 and the ramp over", got, b.rampStart.Load())
	}
}

func TestSlowStartRamps(t *testing.T) {
	const slowStart = 600 * time.Millisecond
	p, _ := newTestPool(t, PoolOptions{SlowStart: slowStart}, startBackend(t, greeter("old")))
	tl := startLB(t, &Balancer{Pool: p})
	nb, _ := NewBackend(startBackend(t, greeter("new")), 1)
	added := time.Now()
	p.SetBackends(append(p.Backends(), nb))

	// Shares of the new backend in each third of the ramp, and after it.
	var n, hits [4]int
	for {
		phase := int(time.Since(added) / (slowStart / 3))
		if phase > 3 {
			break
		}
		who := whoAnswers(t, tl.addr)
		n[phase]++
		if who == "new" {
			hits[phase]++
		}
	}
	share := func(i int) float64 { return float64(hits[i]) / float64(max(n[i], 1)) }
	t.Logf("new backend's share by thirds of the ramp, then after: %.2f %.2f %.2f %.2f (of %v connections)", share(0), share(1), share(2), share(3), n)
	// Round robin over two: full share is 0.5. In the first third the
	// ramp is at most 1/3, so the share is at most about 1/3·0.5.
	if share(0) > 0.25 || share(0) >= share(2) || share(3) < 0.4 {
		t.Errorf("shares %.2f, %.2f, %.2f, %.2f: want low at first, rising, and about 0.5 after the ramp", share(0), share(1), share(2), share(3))
	}
}

func TestSlowStartOnlyBackendStillServes(t *testing.T) {
	p, _ := newTestPool(t, PoolOptions{SlowStart: time.Hour}, startBackend(t, greeter("x")))
	tl := startLB(t, &Balancer{Pool: p})
	nb, _ := NewBackend(startBackend(t, greeter("only")), 1)
	p.SetBackends([]*Backend{nb})
	for range 5 {
		if who := whoAnswers(t, tl.addr); who != "only" {
			t.Fatalf("answered by %q, want the only backend even while it ramps", who)
		}
	}
}

func TestDrainFinishesOpenConnections(t *testing.T) {
	p, _ := newTestPool(t, PoolOptions{DrainTimeout: testDeadline}, startBackend(t, greeter("a")), startBackend(t, greeter("b")))
	tl := startLB(t, &Balancer{Pool: p})
	h := hold(t, tl.addr)
	other := map[string]string{"a": "b", "b": "a"}[h.who]
	addr := ""
	for _, b := range p.Backends() {
		if b.Active() == 1 {
			addr = b.Addr()
		}
	}
	if err := p.Drain(addr); err != nil {
		t.Fatal(err)
	}
	if st := p.Backend(addr).State(); st.State != StateDraining {
		t.Fatalf("State() = %+v, want draining", st)
	}
	for range 4 {
		if who := whoAnswers(t, tl.addr); who != other {
			t.Fatalf("new connection to %q while %s drains, want %s", who, h.who, other)
		}
	}
	// The open connection still works.
	io.WriteString(h.c, "still here\n")
	if line, err := h.r.ReadString('\n'); err != nil || line != "still here\n" {
		t.Fatalf("echo on the draining backend = %q, %v", line, err)
	}
	if err := p.Enable(addr); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 4 {
		seen[whoAnswers(t, tl.addr)] = true
	}
	if !seen[h.who] || !seen[other] {
		t.Errorf("after Enable, connections reached %v, want both backends", seen)
	}
}

func TestDrainTimeoutClosesConnections(t *testing.T) {
	a, b := startBackend(t, greeter("a")), startBackend(t, greeter("b"))
	p, _ := newTestPool(t, PoolOptions{DrainTimeout: 50 * time.Millisecond}, a, b)
	tl := startLB(t, &Balancer{Pool: p})
	h1, h2 := hold(t, tl.addr), hold(t, tl.addr)
	// Remove a: its connection is closed at the drain timeout; b's stays.
	p.SetBackends([]*Backend{p.Backend(b)})
	onA, onB := h1, h2
	if h1.who == "b" {
		onA, onB = h2, h1
	}
	if _, err := io.ReadAll(onA.c); err != nil {
		t.Fatalf("connection on the removed backend: %v, want closed by the drain timeout", err)
	}
	if rec := tl.waitAccessLog(t, 1)[0]; rec["end"] != string(EndDrained) || rec["backend"] != a {
		t.Errorf("access log = %v, want end %q on %s", rec, EndDrained, a)
	}
	io.WriteString(onB.c, "ok\n")
	if line, err := onB.r.ReadString('\n'); err != nil || line != "ok\n" {
		t.Fatalf("connection on the kept backend = %q, %v; want it untouched", line, err)
	}
}

func TestHealthStateSurvivesSetBackends(t *testing.T) {
	p, _ := newTestPool(t, PoolOptions{DrainTimeout: time.Hour}, "127.0.0.1:1", "127.0.0.1:2")
	b := p.Backend("127.0.0.1:1")
	if err := p.Drain(b.Addr()); err != nil {
		t.Fatal(err)
	}
	before := b.State()
	b.total.Add(7)
	nb, _ := NewBackend("127.0.0.1:3", 1)
	p.SetBackends([]*Backend{b, p.Backend("127.0.0.1:2"), nb}) // a reload that keeps 1 and 2 and adds 3
	if after := b.State(); after != before || b.Stats().Total != 7 {
		t.Errorf("after SetBackends: %+v, total %d; want the state %+v and the counters kept", after, b.Stats().Total, before)
	}
	if got := len(p.Available()); got != 2 {
		t.Errorf("Available() has %d backends, want 2 (the drained one left out)", got)
	}
}

func TestSetWeight(t *testing.T) {
	p, _ := newTestPool(t, PoolOptions{}, "127.0.0.1:1")
	before := p.Available()
	if err := p.SetWeight("127.0.0.1:1", 5); err != nil {
		t.Fatal(err)
	}
	if w := p.Backend("127.0.0.1:1").Weight(); w != 5 {
		t.Errorf("Weight() = %d, want 5", w)
	}
	if sameSlice(before, p.Available()) {
		t.Error("SetWeight did not publish a new snapshot: cached strategy tables would not see it")
	}
	for _, w := range []int{0, MaxWeight + 1} {
		if err := p.SetWeight("127.0.0.1:1", w); err == nil {
			t.Errorf("SetWeight(%d) = nil, want an error", w)
		}
	}
}

func TestSync(t *testing.T) {
	p, _ := newTestPool(t, PoolOptions{DrainTimeout: time.Hour}, "127.0.0.1:1", "127.0.0.1:2")
	kept := p.Backend("127.0.0.1:2")
	kept.total.Add(5)
	err := p.Sync([]BackendSpec{{Addr: "127.0.0.1:2", Weight: 4, MaxConns: 10}, {Addr: "[::1]:3"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Backend("127.0.0.1:2") != kept || kept.Stats().Total != 5 || kept.Weight() != 4 || kept.MaxConns() != 10 {
		t.Errorf("kept backend: same %v, %+v, weight %d, max %d; want the same *Backend, its counters, weight 4, max_conns 10",
			p.Backend("127.0.0.1:2") == kept, kept.Stats(), kept.Weight(), kept.MaxConns())
	}
	if b := p.Backend("[::1]:3"); b == nil || b.Weight() != 1 {
		t.Errorf("new backend %v, want [::1]:3 with weight 1", b)
	}
	if p.Backend("127.0.0.1:1") != nil || len(p.Backends()) != 2 {
		t.Errorf("backends %v, want 127.0.0.1:1 gone", p.Backends())
	}
	for _, bad := range [][]BackendSpec{
		{{Addr: "x"}},
		{{Addr: "127.0.0.1:5", Weight: 999}},
		{{Addr: "127.0.0.1:5"}, {Addr: "127.0.0.1:5"}},
	} {
		before := p.Backends()
		if err := p.Sync(bad); err == nil || !sameSlice(before, p.Backends()) {
			t.Errorf("Sync(%v) = %v and changed the backends, want an error and no change", bad, err)
		}
	}
}
