package tcplb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const udpTestDeadline = 5 * time.Second

// udpEcho starts a UDP backend on host that answers each datagram with
// its name, a space and the datagram.
func udpEcho(t *testing.T, host, name string) string {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(host), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 70000)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte(name+" "), buf[:n]...), from)
		}
	}()
	return c.LocalAddr().String()
}

// udpDead returns a UDP address on host where nothing listens.
func udpDead(t *testing.T, host string) string {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(host), 0)))
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// serveUDP starts u on a new socket on host and returns its address.
func serveUDP(t *testing.T, host string, u *UDPBalancer) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(host), 0)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- u.Serve(pc) }()
	t.Cleanup(func() {
		u.Close()
		if err := <-done; !errors.Is(err, ErrUDPBalancerClosed) {
			t.Errorf("Serve = %v, want ErrUDPBalancerClosed", err)
		}
	})
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func udpPool(t *testing.T, strategy string, addrs ...string) *Pool {
	t.Helper()
	s, err := NewStrategy(strategy)
	if err != nil {
		t.Fatal(err)
	}
	var bs []*Backend
	for _, a := range addrs {
		b, err := NewBackend(a, 1)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	return NewPool("udp", s, bs...)
}

// udpClient is a client socket that checks where replies come from.
type udpClient struct {
	t  *testing.T
	c  *net.UDPConn
	lb netip.AddrPort
}

func newUDPClient(t *testing.T, lb netip.AddrPort) *udpClient {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lb.Addr(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, c: c, lb: lb}
}

// ask sends msg and returns the reply, which must come from the
// balancer's address.
func (c *udpClient) ask(msg string) string {
	c.t.Helper()
	if _, err := c.c.WriteToUDPAddrPort([]byte(msg), c.lb); err != nil {
		c.t.Fatal(err)
	}
	c.c.SetReadDeadline(time.Now().Add(udpTestDeadline))
	buf := make([]byte, 70000)
	n, from, err := c.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		c.t.Fatalf("no reply to %q: %v", msg, err)
	}
	if got := netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); got != c.lb {
		c.t.Fatalf("reply from %v, want the balancer's address %v", got, c.lb)
	}
	return string(buf[:n])
}

// backendOf returns the backend name a reply carries.
func backendOf(reply string) string { name, _, _ := strings.Cut(reply, " "); return name }

// waitUDP waits until cond holds, failing the test at the deadline.
func waitUDP(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(udpTestDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUDPSessions: a client's datagrams stay on one backend and the
// replies come from the balancer's address; new clients go round robin;
// on IPv4 and IPv6.
func TestUDPSessions(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			u := &UDPBalancer{Pool: udpPool(t, "round-robin", udpEcho(t, host, "a"), udpEcho(t, host, "b"), udpEcho(t, host, "c"))}
			lb := serveUDP(t, host, u)
			seen := map[string]bool{}
			for i := range 3 {
				c := newUDPClient(t, lb)
				first := backendOf(c.ask("hello"))
				for j := range 20 {
					msg := fmt.Sprintf("client %d datagram %d", i, j)
					reply := c.ask(msg)
					if reply != first+" "+msg {
						t.Fatalf("reply %q, want %q from the session's backend", reply, first+" "+msg)
					}
				}
				seen[first] = true
			}
			if len(seen) != 3 {
				t.Errorf("3 clients reached backends %v, want all three (round robin)", seen)
			}
			// A reply is counted just after it is sent: the client may
			// read the last one first.
			waitUDP(t, "the last reply to be counted", func() bool { return u.Stats().DatagramsOut == 63 })
			s := u.Stats()
			if s.Total != 3 || s.Active != 3 || s.DatagramsIn != 63 || s.DatagramsOut != 63 {
				t.Errorf("Stats() = %+v, want 3 sessions open and 63 datagrams each way", s)
			}
		})
	}
}

// TestUDPHashKeepsClientIP: with hash, every session of one client IP
// goes to the same backend.
func TestUDPHashKeepsClientIP(t *testing.T) {
	u := &UDPBalancer{Pool: udpPool(t, "hash", udpEcho(t, "127.0.0.1", "a"), udpEcho(t, "127.0.0.1", "b"), udpEcho(t, "127.0.0.1", "c")), Responses: 1}
	lb := serveUDP(t, "127.0.0.1", u)
	want := ""
	for range 10 {
		got := backendOf(newUDPClient(t, lb).ask("q"))
		if want == "" {
			want = got
		}
		if got != want {
			t.Fatalf("a session of the same client IP went to %s, the first to %s", got, want)
		}
	}
}

// TestUDPResponsesEndSession: with Responses 1, the session ends with its
// reply, and the same client's next datagram opens a new one.
func TestUDPResponsesEndSession(t *testing.T) {
	u := &UDPBalancer{Pool: udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "a"), udpEcho(t, "127.0.0.1", "b")), Responses: 1}
	lb := serveUDP(t, "127.0.0.1", u)
	c := newUDPClient(t, lb)
	first := backendOf(c.ask("1"))
	waitUDP(t, "the session to end after its reply", func() bool { return u.Stats().Active == 0 })
	second := backendOf(c.ask("2"))
	if first == second {
		t.Errorf("both queries went to %s; the second should open a new session (round robin: the other backend)", first)
	}
	if s := u.Stats(); s.Total != 2 {
		t.Errorf("Total = %d, want 2 sessions", s.Total)
	}
	// Both sessions, ended, are in the duration histogram; on loopback
	// they lasted well under a second.
	waitUDP(t, "the second session to end", func() bool { return u.Stats().Active == 0 })
	if h := u.Stats().Durations; h.Count != 2 || h.Bounds[3] != time.Second || h.Buckets[3] != 2 {
		t.Errorf("Durations = %+v, want 2 sessions of at most 1s", h)
	}
}

// TestUDPIdleTimeout: a quiet session ends after the idle timeout, a busy
// one does not.
func TestUDPIdleTimeout(t *testing.T) {
	u := &UDPBalancer{Pool: udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "a")), IdleTimeout: 300 * time.Millisecond}
	lb := serveUDP(t, "127.0.0.1", u)
	busy, quiet := newUDPClient(t, lb), newUDPClient(t, lb)
	busy.ask("x")
	quietAt := time.Now()
	quiet.ask("x")
	for time.Since(quietAt) < 600*time.Millisecond {
		busy.ask("x") // every exchange keeps the busy session alive
		time.Sleep(50 * time.Millisecond)
	}
	waitUDP(t, "the quiet session to end", func() bool { return u.Stats().Active == 1 })
	if s := u.Stats(); s.Total != 2 {
		t.Errorf("Total = %d, want 2: the busy session must not have been replaced", s.Total)
	}
}

// TestUDPLimits: max_sessions, the datagram size limit and deny drop
// datagrams and count them; the process keeps serving.
func TestUDPLimits(t *testing.T) {
	u := &UDPBalancer{
		Pool:        udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "a")),
		MaxSessions: 1,
		MaxDatagram: 100,
		Deny:        []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
	}
	lb := serveUDP(t, "127.0.0.1", u)
	c1, c2 := newUDPClient(t, lb), newUDPClient(t, lb)
	c1.ask("first")
	c2.c.WriteToUDPAddrPort([]byte("over the limit"), lb)
	waitUDP(t, "a max_sessions drop", func() bool { return u.Stats().Dropped["max_sessions"] == 1 })

	c1.c.WriteToUDPAddrPort(bytes.Repeat([]byte("x"), 101), lb)
	waitUDP(t, "a too_large drop", func() bool { return u.Stats().Dropped["too_large"] == 1 })
	if got := c1.ask(strings.Repeat("y", 100)); got != "a "+strings.Repeat("y", 100) {
		t.Errorf("a 100-byte datagram (the limit) got %q", got)
	}

	d, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")})
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	defer d.Close()
	d.WriteToUDPAddrPort([]byte("denied"), lb)
	waitUDP(t, "a denied drop", func() bool { return u.Stats().Dropped["denied"] == 1 })
}

// TestUDPUnreachableBackend: a backend that answers with ICMP port
// unreachable ends the session and is ejected by the passive checks; the
// client's next session goes to the live backend.
func TestUDPUnreachableBackend(t *testing.T) {
	dead := udpDead(t, "127.0.0.1")
	p := udpPool(t, "round-robin", dead, udpEcho(t, "127.0.0.1", "live"))
	if err := p.SetOptions(PoolOptions{Passive: PassiveCheck{MaxFails: 1}}); err != nil {
		t.Fatal(err)
	}
	u := &UDPBalancer{Pool: p}
	lb := serveUDP(t, "127.0.0.1", u)
	c := newUDPClient(t, lb)
	c.c.WriteToUDPAddrPort([]byte("to the dead one"), lb) // round robin: the first backend
	waitUDP(t, "the dead backend's ejection", func() bool { return p.Backend(dead).State().State == StateEjected })
	if got := c.ask("again"); backendOf(got) != "live" {
		t.Errorf("after the ejection the client got %q, want the live backend", got)
	}
}

// udpLog collects a UDPBalancer's access log records.
type udpLog struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (l *udpLog) Write(p []byte) (int, error) {
	var rec map[string]any
	if err := json.Unmarshal(p, &rec); err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.recs = append(l.recs, rec)
	l.mu.Unlock()
	return len(p), nil
}

func (l *udpLog) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// wait waits for n records and returns them.
func (l *udpLog) wait(t *testing.T, n int) []map[string]any {
	t.Helper()
	waitUDP(t, fmt.Sprintf("%d access log records", n), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.recs) >= n
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs)
}

// TestUDPDrainEndsSessions: a drained backend's session goes on until the
// drain timeout, then ends ("drained"); the client's next datagram opens
// a session on another backend.
func TestUDPDrainEndsSessions(t *testing.T) {
	a, b := udpEcho(t, "127.0.0.1", "a"), udpEcho(t, "127.0.0.1", "b")
	p := udpPool(t, "round-robin", a, b)
	if err := p.SetOptions(PoolOptions{DrainTimeout: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var log udpLog
	u := &UDPBalancer{Pool: p, AccessLog: log.logger()}
	lb := serveUDP(t, "127.0.0.1", u)
	c := newUDPClient(t, lb)
	if got := backendOf(c.ask("1")); got != "a" {
		t.Fatalf("first session on %s, want a", got)
	}
	p.Drain(a)
	if got := backendOf(c.ask("2")); got != "a" {
		t.Fatalf("while a drains its session went to %s, want a still", got)
	}
	rec := log.wait(t, 1)[0]
	if rec["end"] != string(EndDrained) || rec["backend"] != a {
		t.Errorf("access log = %v, want end %q on %s", rec, EndDrained, a)
	}
	if got := backendOf(c.ask("3")); got != "b" {
		t.Errorf("after the drain the client went to %s, want b", got)
	}
}

// TestUDPBackendDownReopens: when a session's backend is ejected, the
// client's next datagram ends that session ("backend down") and goes to an
// available backend in a new one.
func TestUDPBackendDownReopens(t *testing.T) {
	a, b := udpEcho(t, "127.0.0.1", "a"), udpEcho(t, "127.0.0.1", "b")
	p := udpPool(t, "round-robin", a, b)
	if err := p.SetOptions(PoolOptions{Passive: PassiveCheck{MaxFails: 1}}); err != nil {
		t.Fatal(err)
	}
	var log udpLog
	u := &UDPBalancer{Pool: p, AccessLog: log.logger()}
	lb := serveUDP(t, "127.0.0.1", u)
	c := newUDPClient(t, lb)
	if got := backendOf(c.ask("1")); got != "a" {
		t.Fatalf("first session on %s, want a", got)
	}
	p.passiveFailure(p.Backend(a), "test")
	if s := p.Backend(a).State().State; s != StateEjected {
		t.Fatalf("a is %v, want ejected", s)
	}
	if got := backendOf(c.ask("2")); got != "b" {
		t.Errorf("after a's ejection the session's datagram went to %s, want b", got)
	}
	if rec := log.wait(t, 1)[0]; rec["end"] != string(EndBackendDown) || rec["backend"] != a {
		t.Errorf("access log = %v, want end %q on %s", rec, EndBackendDown, a)
	}
	if s := u.Stats(); s.Total != 2 || s.Active != 1 {
		t.Errorf("Stats() = %+v, want 2 sessions, 1 open", s)
	}
}

// TestUDPReload: Reload gives new sessions the new pool and limits; an
// open session keeps its backend; settings Serve would refuse change
// nothing.
func TestUDPReload(t *testing.T) {
	u := &UDPBalancer{Pool: udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "old"))}
	// Before Serve, Reload sets what Serve starts with.
	if err := u.Reload(&UDPBalancer{Pool: udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "old"))}); err != nil {
		t.Fatal(err)
	}
	u.Pool = nil // Serve must take the reloaded pool, not this field
	lb := serveUDP(t, "127.0.0.1", u)
	kept := newUDPClient(t, lb)
	kept.ask("1")

	next := &UDPBalancer{Name: "dns", Pool: udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "new")), Responses: 1}
	if err := u.Reload(&UDPBalancer{Pool: next.Pool, IdleTimeout: -1}); err == nil {
		t.Error("Reload with a negative idle timeout succeeded")
	}
	if err := u.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := backendOf(kept.ask("2")); got != "old" {
		t.Fatalf("the open session went to %s after the reload, want its backend (old)", got)
	}
	// Responses 1 now applies to every session, the kept one too: its
	// reply ended it, and the client's next datagram opens a session on
	// the new pool.
	waitUDP(t, "the kept session to end after its reply", func() bool { return u.Stats().Active == 0 })
	if got := backendOf(kept.ask("3")); got != "new" {
		t.Errorf("the client's next session went to %s, want the new pool's backend", got)
	}
	if got := backendOf(newUDPClient(t, lb).ask("q")); got != "new" {
		t.Errorf("a new client went to %s, want the new pool's backend", got)
	}
}

// TestUDPStopAcceptingAndShutdown: after StopAccepting no datagram is read
// from the listening socket (no session opens), yet a reply the backend
// sends later still reaches the open session's client from the
// balancer's address; Shutdown waits for the sessions to end, or ends
// them when its context is done.
func TestUDPStopAcceptingAndShutdown(t *testing.T) {
	for _, wait := range []bool{true, false} {
		t.Run(fmt.Sprintf("sessions end by themselves %v", wait), func(t *testing.T) {
			bc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { bc.Close() })
			sessions := make(chan netip.AddrPort, 10)
			go func() {
				buf := make([]byte, 2048)
				for {
					n, from, err := bc.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					sessions <- from
					bc.WriteToUDPAddrPort(append([]byte("a "), buf[:n]...), from)
				}
			}()
			idle := time.Hour
			if wait {
				idle = 300 * time.Millisecond
			}
			u := &UDPBalancer{Pool: udpPool(t, "round-robin", bc.LocalAddr().String()), IdleTimeout: idle}
			pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			lb := netip.MustParseAddrPort(pc.LocalAddr().String())
			served := make(chan error, 1)
			go func() { served <- u.Serve(pc) }()

			c := newUDPClient(t, lb)
			c.ask("1")
			session := <-sessions
			u.StopAccepting()
			select {
			case err := <-served:
				if !errors.Is(err, ErrUDPBalancerClosed) {
					t.Errorf("Serve = %v, want ErrUDPBalancerClosed", err)
				}
			case <-time.After(udpTestDeadline):
				t.Fatal("Serve did not return after StopAccepting")
			}
			if _, err := bc.WriteToUDPAddrPort([]byte("late"), session); err != nil {
				t.Fatal(err)
			}
			c.c.SetReadDeadline(time.Now().Add(udpTestDeadline))
			buf := make([]byte, 2048)
			n, from, err := c.c.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "late" || netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != lb {
				t.Fatalf("after StopAccepting the client read %q from %v (%v), want the backend's late reply from %v", buf[:n], from, err, lb)
			}
			// A new client's datagram waits in the socket for whoever reads
			// it next; this balancer opens no session for it.
			if _, err := newUDPClient(t, lb).c.WriteToUDPAddrPort([]byte("new"), lb); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err = u.Shutdown(ctx)
			if wait && err != nil {
				t.Errorf("Shutdown = %v, want nil once the idle session ended", err)
			}
			if !wait && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown = %v, want the context's deadline", err)
			}
			if s := u.Stats(); s.Total != 1 || s.Active != 0 {
				t.Errorf("Stats() = %+v, want the one session, ended", s)
			}
			if _, err := pc.WriteToUDPAddrPort([]byte("x"), lb); !errors.Is(err, net.ErrClosed) {
				t.Errorf("writing to the listening socket after Shutdown: %v, want it closed", err)
			}
		})
	}
}

// TestUDPProxyV2: with the pool's SendProxy ProxyV2 every datagram to
// the backend starts with a PROXY v2 header of transport UDP, carrying the
// client's address and the listener's, on IPv4 and IPv6; a pool sending
// v1 is refused.
func TestUDPProxyV2(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			p := udpPool(t, "round-robin", udpEcho(t, host, "b"))
			if err := p.SetOptions(PoolOptions{SendProxy: ProxyV2}); err != nil {
				t.Fatal(err)
			}
			lb := serveUDP(t, host, &UDPBalancer{Pool: p})
			c := newUDPClient(t, lb)
			client := netip.MustParseAddrPort(c.c.LocalAddr().String())
			// The header, written out as the spec lays it: signature,
			// version 2 and PROXY, family and transport (0x12 UDP over
			// IPv4, 0x22 over IPv6), address length, addresses, ports.
			want := []byte("\r\n\r\n\x00\r\nQUIT\n\x21")
			if client.Addr().Is4() {
				want = append(want, 0x12, 0, 12)
			} else {
				want = append(want, 0x22, 0, 36)
			}
			want = append(want, client.Addr().AsSlice()...)
			want = append(want, lb.Addr().AsSlice()...)
			want = append(want, byte(client.Port()>>8), byte(client.Port()), byte(lb.Port()>>8), byte(lb.Port()))
			for _, msg := range []string{"hi", "again"} {
				if got, want := c.ask(msg), "b "+string(want)+msg; got != want {
					t.Errorf("backend got %q, want %q", got[2:], want[2:])
				}
			}
		})
	}
	p := udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "b"))
	if err := p.SetOptions(PoolOptions{SendProxy: ProxyV1}); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := (&UDPBalancer{Pool: p}).Serve(pc); err == nil || !strings.Contains(err.Error(), "PROXY v1, which has no UDP form") {
		t.Errorf("Serve with a v1 pool = %v, want the error saying v1 has no UDP form", err)
	}
}

// TestUDPPerSourceLimits: MaxSessionsPerSource bounds one client IP's
// sessions (a new port beyond it is dropped, "source_sessions", and gets
// in once a session ends); RatePerSource bounds its datagrams (beyond the
// burst they are dropped, "rate", and its session stays).
func TestUDPPerSourceLimits(t *testing.T) {
	t.Run("sessions", func(t *testing.T) {
		u := &UDPBalancer{Pool: udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "a")), MaxSessionsPerSource: 2, IdleTimeout: time.Second}
		lb := serveUDP(t, "127.0.0.1", u)
		c1, c2, c3 := newUDPClient(t, lb), newUDPClient(t, lb), newUDPClient(t, lb)
		c1.ask("1")
		c2.ask("2")
		if _, err := c3.c.WriteToUDPAddrPort([]byte("3"), lb); err != nil {
			t.Fatal(err)
		}
		waitUDP(t, "a source_sessions drop", func() bool { return u.Stats().Dropped["source_sessions"] == 1 })
		if s := u.Stats(); s.Active != 2 || s.Total != 2 {
			t.Errorf("Stats = %+v, want 2 sessions", s)
		}
		// The sessions end (idle): the third port gets in.
		waitUDP(t, "the sessions to end", func() bool { return u.Stats().Active == 0 })
		c3.ask("3")
	})
	t.Run("rate", func(t *testing.T) {
		// A rate so low that no token comes back during the test: the
		// burst of 3 is all the source gets.
		u := &UDPBalancer{Pool: udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "a")), RatePerSource: 0.001, BurstPerSource: 3, MaxSessionsPerSource: 5}
		lb := serveUDP(t, "127.0.0.1", u)
		c := newUDPClient(t, lb)
		for i := range 3 {
			c.ask(fmt.Sprint(i))
		}
		for i := range 2 {
			if _, err := c.c.WriteToUDPAddrPort([]byte(fmt.Sprint("over", i)), lb); err != nil {
				t.Fatal(err)
			}
		}
		waitUDP(t, "two rate drops", func() bool { return u.Stats().Dropped["rate"] == 2 })
		if s := u.Stats(); s.Active != 1 || s.DatagramsIn != 3 {
			t.Errorf("Stats = %+v, want the session open with its 3 datagrams", s)
		}
		// Another source is not limited by this one's bucket.
		other := newUDPClientFrom(t, "127.0.0.2", lb)
		other.ask("x")
	})
	if err := (&UDPBalancer{Pool: udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "a")), RatePerSource: -1}).Reload(&UDPBalancer{Pool: udpPool(t, "round-robin"), RatePerSource: -1}); err == nil {
		t.Error("a negative RatePerSource was taken")
	}
}

// newUDPClientFrom is newUDPClient on the source address src.
func newUDPClientFrom(t *testing.T, src string, lb netip.AddrPort) *udpClient {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, c: c, lb: lb}
}

// TestUDPBackendDatagrams: each backend counts the datagrams its sessions
// passed each way (in: replies from it; out: to it), beside its bytes;
// dropped datagrams are not counted, and a backend no UDP session used
// reports none.
func TestUDPBackendDatagrams(t *testing.T) {
	u := &UDPBalancer{Pool: udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "a"), udpEcho(t, "127.0.0.1", "b")), MaxDatagram: 10}
	lb := serveUDP(t, "127.0.0.1", u)
	sent := map[string]int{}
	for i, n := range []int{3, 2} {
		c := newUDPClient(t, lb)
		for range n {
			sent[backendOf(c.ask(fmt.Sprint(i)))]++
		}
		c.c.WriteToUDPAddrPort(make([]byte, 11), lb) // too large: dropped before the backend
	}
	if sent["a"] != 3 || sent["b"] != 2 {
		t.Fatalf("sessions reached %v, want 3 datagrams to a and 2 to b (round robin)", sent)
	}
	waitUDP(t, "the drops and the last reply's count", func() bool {
		s := u.Stats()
		return s.Dropped["too_large"] == 2 && s.DatagramsOut == 5
	})
	for i, want := range []uint64{3, 2} {
		b := u.Pool.Backends()[i]
		in, out := b.Datagrams()
		if in != want || out != want {
			t.Errorf("%s: Datagrams() = %d in, %d out; want %d each way", b.Addr(), in, out, want)
		}
		// A datagram of "0" or "1" is 1 byte to the backend, its reply
		// ("a 0") 3 bytes back.
		if s := b.Stats(); s.BytesOut != want || s.BytesIn != 3*want {
			t.Errorf("%s: bytes %d in, %d out; want %d, %d", b.Addr(), s.BytesIn, s.BytesOut, 3*want, want)
		}
	}
	tcp, err := NewBackend("127.0.0.1:1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if in, out := tcp.Datagrams(); in != 0 || out != 0 {
		t.Errorf("a backend no UDP session used: Datagrams() = %d, %d; want 0, 0", in, out)
	}
}

// udpSilent starts a UDP backend on host that reads every datagram and
// never answers (so no ICMP error comes back either).
func udpSilent(t *testing.T, host string) string {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(host), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go io.Copy(io.Discard, c)
	return c.LocalAddr().String()
}

// TestUDPUnansweredFailure: with PassiveCheck.UDPUnanswered 2, a session
// that goes idle after 2 datagrams without a reply counts against its
// backend (here ejecting it, MaxFails 1); one unanswered datagram, or
// answered ones, do not.
func TestUDPUnansweredFailure(t *testing.T) {
	silent, live := udpSilent(t, "127.0.0.1"), udpEcho(t, "127.0.0.1", "live")
	p := udpPool(t, "round-robin", silent, live)
	if err := p.SetOptions(PoolOptions{Passive: PassiveCheck{MaxFails: 1, UDPUnanswered: -1}}); err == nil {
		t.Error("SetOptions with UDPUnanswered -1 succeeded")
	}
	if err := p.SetOptions(PoolOptions{Passive: PassiveCheck{MaxFails: 1, UDPUnanswered: 2}}); err != nil {
		t.Fatal(err)
	}
	var log udpLog
	u := &UDPBalancer{Pool: p, IdleTimeout: 100 * time.Millisecond, AccessLog: log.logger()}
	lb := serveUDP(t, "127.0.0.1", u)

	// Round robin: the first session goes to the silent backend, with one
	// datagram; the second to the live one.
	newUDPClient(t, lb).c.WriteToUDPAddrPort([]byte("one"), lb)
	if got := backendOf(newUDPClient(t, lb).ask("hello")); got != "live" {
		t.Fatalf("second session on %s, want live", got)
	}
	for _, rec := range log.wait(t, 2) {
		if rec["end"] != string(EndIdle) {
			t.Fatalf("access log %v, want the sessions ended idle", rec)
		}
	}
	if s := p.Backend(silent).State().State; s != StateUp {
		t.Fatalf("after one unanswered datagram the silent backend is %v, want up", s)
	}
	if s := p.Backend(live).State().State; s != StateUp {
		t.Fatalf("after an answered session the live backend is %v, want up", s)
	}

	// The third session, on the silent backend again, sends two.
	c := newUDPClient(t, lb)
	c.c.WriteToUDPAddrPort([]byte("one"), lb)
	c.c.WriteToUDPAddrPort([]byte("two"), lb)
	waitUDP(t, "the silent backend's ejection", func() bool { return p.Backend(silent).State().State == StateEjected })
	if rec := log.wait(t, 3)[2]; rec["backend"] != silent || rec["client_datagrams"] != float64(2) {
		t.Errorf("access log %v, want the silent backend's session of 2 datagrams", rec)
	}
}

// TestUDPHundredThousand: 100,000 datagrams from 8 clients over two
// backends, each client keeping at most 16 unanswered (the bound on the
// rate), all answered: zero loss on loopback.
func TestUDPHundredThousand(t *testing.T) {
	const clients, each, window = 8, 12500, 16
	p := udpPool(t, "round-robin", udpEcho(t, "127.0.0.1", "a"), udpEcho(t, "127.0.0.1", "b"))
	u := &UDPBalancer{Pool: p}
	lb := serveUDP(t, "127.0.0.1", u)
	errs := make(chan error, clients)
	for i := range clients {
		c := newUDPClient(t, lb)
		go func() {
			errs <- func() error {
				buf := make([]byte, 100)
				sent, got := 0, 0
				for got < each {
					for sent < each && sent-got < window {
						if _, err := c.c.WriteToUDPAddrPort(fmt.Appendf(nil, "%d %d", i, sent), lb); err != nil {
							return err
						}
						sent++
					}
					c.c.SetReadDeadline(time.Now().Add(udpTestDeadline))
					if _, _, err := c.c.ReadFromUDPAddrPort(buf); err != nil {
						return fmt.Errorf("client %d: %d of %d sent datagrams answered, then: %v", i, got, sent, err)
					}
					got++
				}
				return nil
			}()
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if s := u.Stats(); s.DatagramsIn != clients*each || s.DatagramsOut != clients*each {
		t.Errorf("Stats() = %d datagrams in, %d out; want %d each way", s.DatagramsIn, s.DatagramsOut, clients*each)
	}
}

// TestUDPHostNameBackend: a backend given by host name is looked up for
// each session (off the event loop), and a name that does not resolve
// fails the session's dial and counts against the backend.
func TestUDPHostNameBackend(t *testing.T) {
	ips, err := net.DefaultResolver.LookupNetIP(t.Context(), "ip", "localhost")
	if err != nil || len(ips) == 0 {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	echo := udpEcho(t, ips[0].Unmap().String(), "named")
	_, port, _ := net.SplitHostPort(echo)
	bad := "no-such-host.invalid:53"
	p := udpPool(t, "round-robin", net.JoinHostPort("localhost", port), bad)
	if err := p.SetOptions(PoolOptions{Passive: PassiveCheck{MaxFails: 1, MaxEjectionPercent: 100}}); err != nil {
		t.Fatal(err)
	}
	var log, events udpLog
	u := &UDPBalancer{Pool: p, AccessLog: log.logger(), Logger: events.logger()}
	lb := serveUDP(t, "127.0.0.1", u)
	if got := backendOf(newUDPClient(t, lb).ask("hi")); got != "named" {
		t.Fatalf("through localhost:%s: answered by %s", port, got)
	}
	newUDPClient(t, lb).c.WriteToUDPAddrPort([]byte("to the bad name"), lb) // round robin: the unresolvable one
	rec := log.wait(t, 1)[0]
	if rec["end"] != string(EndConnectFailed) || rec["backend"] != bad {
		t.Errorf("access log %v, want the bad name's session ended %q", rec, EndConnectFailed)
	}
	waitUDP(t, "the unresolvable backend's ejection", func() bool { return p.Backend(bad).State().State == StateEjected })
	if rec := events.wait(t, 1)[0]; rec["msg"] != "backend connect failed" || rec["backend"] != bad || rec["err"] == nil {
		t.Errorf("log %v, want the failed lookup logged with its backend and error", rec)
	}
}
