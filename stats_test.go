package tcplb

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/tcplb/tcplb/internal/proxyproto"
)

func TestBalancerStats(t *testing.T) {
	live := startBackend(t, echo)
	p := limitedPool(t, 1, live)
	tl := startLB(t, &Balancer{Pool: p})

	for range 3 { // three served connections
		c := dial(t, tl.addr)
		io.WriteString(c, "hello")
		c.CloseWrite()
		if got, err := io.ReadAll(c); err != nil || string(got) != "hello" {
			t.Fatalf("echo = %q, %v", got, err)
		}
		c.Close()
	}
	tl.waitAccessLog(t, 3)
	h := dial(t, tl.addr) // held open: the backend's one slot
	io.WriteString(h, "x")
	if _, err := io.ReadFull(h, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	whoAnswers(t, tl.addr) // rejected: the only backend is full
	tl.waitAccessLog(t, 4)

	s := tl.Stats()
	if s.Accepted != 5 || s.Active != 1 {
		t.Errorf("Accepted, Active = %d, %d; want 5, 1", s.Accepted, s.Active)
	}
	if s.Rejected[EndFull] != 1 || s.Rejected[EndNoBackend] != 0 || s.Rejected[EndConnectFailed] != 0 || len(s.Rejected) != len(rejectReasons) {
		t.Errorf("Rejected = %v, want 1 backends full and the other reasons present at 0", s.Rejected)
	}
	if s.Durations.Count != 3 || s.Durations.Sum <= 0 || s.Durations.Buckets[len(s.Durations.Buckets)-1] != 3 {
		t.Errorf("Durations = %+v, want 3 observations", s.Durations)
	}
	ct := p.Backends()[0].ConnectTimes()
	if ct.Count != 4 || len(ct.Bounds) != len(ct.Buckets) || ct.Bounds[0] != 100*time.Microsecond {
		t.Errorf("ConnectTimes = %+v, want 4 dials over the connect buckets", ct)
	}
	for i := 1; i < len(ct.Buckets); i++ {
		if ct.Buckets[i] < ct.Buckets[i-1] {
			t.Fatalf("ConnectTimes buckets not cumulative: %v", ct.Buckets)
		}
	}
}

func TestBalancerStatsConnectFailedAndNoBackend(t *testing.T) {
	tl := startLB(t, &Balancer{}, deadAddr(t))
	whoAnswers(t, tl.addr)
	tl.waitAccessLog(t, 1)
	tl.Pool.SetBackends(nil)
	whoAnswers(t, tl.addr)
	tl.waitAccessLog(t, 2)
	if r := tl.Stats().Rejected; r[EndConnectFailed] != 1 || r[EndNoBackend] != 1 {
		t.Errorf("Rejected = %v, want 1 connect failure and 1 no backend", r)
	}
}

func TestConnections(t *testing.T) {
	tl := startLB(t, &Balancer{}, startBackend(t, greeter("a")))
	first := hold(t, tl.addr)
	io.WriteString(first.c, "12345\n")
	if _, err := first.r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	hold(t, tl.addr)
	all := tl.Connections(0)
	if len(all) != 2 {
		t.Fatalf("Connections(0) = %v, want 2", all)
	}
	c := all[0]
	if c.Client != first.c.LocalAddr().String() || c.Backend != tl.Pool.Backends()[0].Addr() || c.ClientBytes != 6 || c.BackendBytes != 8 || c.Start.IsZero() {
		t.Errorf("oldest connection = %+v, want client %s, 6 bytes up and 8 down (greeting + echo)", c, first.c.LocalAddr())
	}
	if got := tl.Connections(1); len(got) != 1 || got[0].Client != c.Client {
		t.Errorf("Connections(1) = %v, want just the oldest", got)
	}
}

func TestHistogramBuckets(t *testing.T) {
	h := histogram{bounds: []time.Duration{time.Millisecond, time.Second}}
	for _, d := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, time.Second, time.Hour} {
		h.observe(d)
	}
	s := h.snapshot()
	if s.Buckets[0] != 2 || s.Buckets[1] != 4 || s.Count != 5 || s.Sum != time.Hour+time.Second+3*time.Millisecond {
		t.Errorf("snapshot = %+v, want buckets [2 4] (le 1ms, le 1s), count 5", s)
	}
}

func TestProxyErrorReasonsCoverParser(t *testing.T) {
	for _, r := range proxyproto.Reasons() {
		if !slices.Contains(proxyErrorReasons[:], r) {
			t.Errorf("parser reason %q is not counted by BalancerStats.ProxyErrors", r)
		}
	}
}
