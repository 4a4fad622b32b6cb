package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// udpBackend is a UDP backend that answers each datagram with its name, a
// space and the datagram. A datagram "hold" is not answered: its sender is
// kept, and release answers it later with "late".
type udpBackend struct {
	name, addr string
	pc         *net.UDPConn
	mu         sync.Mutex
	held       []netip.AddrPort
}

func startUDPBackend(t testing.TB, name string) *udpBackend {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	b := &udpBackend{name: name, addr: pc.LocalAddr().String(), pc: pc}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if strings.Contains(err.Error(), "closed") {
					return
				}
				continue
			}
			if string(buf[:n]) == "hold" {
				b.mu.Lock()
				b.held = append(b.held, from)
				b.mu.Unlock()
				continue
			}
			pc.WriteToUDPAddrPort(fmt.Appendf(nil, "%s %s", name, buf[:n]), from)
		}
	}()
	return b
}

// release answers the held datagrams with "late" and reports how many
// there were.
func (b *udpBackend) release() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, to := range b.held {
		b.pc.WriteToUDPAddrPort([]byte(b.name+" late"), to)
	}
	n := len(b.held)
	b.held = nil
	return n
}

// udpClient is one client address (one session) talking to addr.
type udpClient struct {
	t testing.TB
	c *net.UDPConn
}

func newUDPClient(t testing.TB, addr string) *udpClient {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, c: c}
}

func (c *udpClient) send(msg string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next reply.
func (c *udpClient) read() string {
	c.t.Helper()
	buf := make([]byte, 65535)
	c.c.SetReadDeadline(time.Now().Add(testDeadline))
	n, err := c.c.Read(buf)
	if err != nil {
		c.t.Fatalf("no reply through %s: %v", c.c.RemoteAddr(), err)
	}
	return string(buf[:n])
}

// ask sends msg and returns the name of the backend that answered.
func (c *udpClient) ask(msg string) string {
	c.t.Helper()
	c.send(msg)
	name, got, _ := strings.Cut(c.read(), " ")
	if got != msg {
		c.t.Fatalf("reply %q from %s, want the datagram %q back", got, name, msg)
	}
	return name
}

// TestUDPFlags runs the README's one-line DNS balancer shape: -protocol
// udp with -udp-responses 1 balances each client's datagrams round robin
// and ends a session at its reply, which the access log says.
func TestUDPFlags(t *testing.T) {
	b1, b2 := startUDPBackend(t, "b1"), startUDPBackend(t, "b2")
	d := startDaemon(t, "-protocol", "udp", "-udp-responses", "1", "-listen", "127.0.0.1:0", "-backends", b1.addr+","+b2.addr)
	rec := d.waitLog(t, "listening", 1)
	if rec["protocol"] != "udp" {
		t.Errorf("listening record %v, want protocol udp", rec)
	}
	addr := rec["addr"].(string)
	var got []string
	for i := range 4 {
		got = append(got, newUDPClient(t, addr).ask(fmt.Sprint("q", i)))
	}
	if strings.Join(got, " ") != "b1 b2 b1 b2" {
		t.Errorf("four clients answered by %v, want b1 b2 b1 b2", got)
	}
	// One client, two queries: each is a session of its own, ended at its
	// reply, so round robin goes on.
	c := newUDPClient(t, addr)
	first, second := c.ask("a"), c.ask("b")
	if first == second {
		t.Errorf("with -udp-responses 1 one client's two queries both went to %s, want two sessions", first)
	}
	rec = d.waitLog(t, "udp session", 6)
	if rec["end"] != "responses" || rec["listener"] != "main" {
		t.Errorf("access log %v, want end responses on listener main", rec)
	}
	d.stop(t)
}

// TestDemoUDP: -demo also serves UDP, on the TCP listener's address, over
// UDP demo backends on the same ports, which answer naming themselves.
func TestDemoUDP(t *testing.T) {
	for _, a := range demoAddrs {
		ua, _ := net.ResolveUDPAddr("udp", a)
		pc, err := net.ListenUDP("udp", ua)
		if err != nil {
			t.Fatalf("demo port %s/udp is busy (%v): stop what uses it, e.g. another tcplb -demo", a, err)
		}
		pc.Close()
	}
	d := startDaemon(t, "-demo", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	rec := d.waitLog(t, "listening", 2)
	if rec["protocol"] != "udp" || rec["listener"] != "main-udp" {
		t.Fatalf("second listening record %v, want the demo's UDP listener main-udp", rec)
	}
	for i := range 3 {
		c := newUDPClient(t, rec["addr"].(string))
		c.send("hi\n")
		want := fmt.Sprintf("demo backend %s got: hi\n", demoAddrs[i])
		if got := c.read(); got != want {
			t.Errorf("client %d got %q, want %q", i, got, want)
		}
	}
	// (Not stopped: SIGINT would wait for these sessions up to the drain
	// timeout, like open TCP connections; TestUDPStop covers stopping.)
}

// TestApplyUDPReload: a reload keeps a UDP listener's socket, balancer and
// sessions and takes its new settings; a reload that fails after binding
// a new UDP socket frees that port; removing the listener closes its
// socket once its sessions have drained.
func TestApplyUDPReload(t *testing.T) {
	b1, b2 := startUDPBackend(t, "b1"), startUDPBackend(t, "b2")
	addr := freeUDPPort(t)
	s := newTestServer(t)
	if err := s.apply(mustParse(t, fmt.Sprintf(`
listeners: [{name: dns, protocol: udp, listen: %q, pool: app}]
pools: [{name: app, backends: [%q]}]
`, addr, b1.addr))); err != nil {
		t.Fatal(err)
	}
	key := "udp " + addr
	l := s.listeners[key]
	if l == nil || l.udp == nil {
		t.Fatalf("listeners = %v, want a UDP listener under %q", s.listeners, key)
	}
	kept := newUDPClient(t, addr)
	if who := kept.ask("1"); who != "b1" {
		t.Fatalf("first session on %s, want b1", who)
	}

	// b2 joins, the listener is renamed and holds one session at most
	// from now on; the open session stays on b1.
	if err := s.apply(mustParse(t, fmt.Sprintf(`
listeners: [{name: renamed, protocol: udp, listen: %q, pool: app, max_sessions: 1}]
pools: [{name: app, backends: [%q, %q]}]
`, addr, b1.addr, b2.addr))); err != nil {
		t.Fatal(err)
	}
	if s.listeners[key] != l || s.listeners[key].pc != l.pc {
		t.Fatal("the kept UDP listener got a new socket or balancer")
	}
	for i := range 3 {
		if who := kept.ask(fmt.Sprint("k", i)); who != "b1" {
			t.Fatalf("the session from before the reload moved to %s, want b1", who)
		}
	}
	// A second client is beyond max_sessions: dropped and counted.
	newUDPClient(t, addr).send("x")
	waitFor(t, "a max_sessions drop", func() bool { return l.udp.Stats().Dropped["max_sessions"] == 1 })

	// A reload that binds a new UDP socket, then fails on a TCP port in
	// use: nothing changes, and the new UDP port is free again.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	other := freeUDPPort(t)
	err = s.apply(mustParse(t, fmt.Sprintf(`
listeners:
  - {name: renamed, protocol: udp, listen: %q, pool: app}
  - {name: other, protocol: udp, listen: %q, pool: app}
  - {name: clash, listen: %q, pool: tcp}
pools:
  - {name: app, backends: [%q]}
  - {name: tcp, backends: [127.0.0.1:1]}
`, addr, other, taken.Addr(), b1.addr)))
	if err == nil || !strings.Contains(err.Error(), "listener clash") {
		t.Fatalf("apply with a taken port = %v, want an error naming listener clash", err)
	}
	ua, _ := net.ResolveUDPAddr("udp", other)
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatalf("after the failed reload, %s is still bound: %v", other, err)
	}
	pc.Close()

	// Removing the listener: its socket closes once its open session has
	// ended at the drain timeout.
	if err := s.apply(mustParse(t, fmt.Sprintf(`
listeners: [{name: web, listen: %q, pool: tcp}]
pools: [{name: tcp, backends: [127.0.0.1:1]}]
timeouts: {drain: 100ms}
`, freePort(t)))); err != nil {
		t.Fatal(err)
	}
	ua, _ = net.ResolveUDPAddr("udp", addr)
	deadline := time.Now().Add(testDeadline)
	for {
		pc, err := net.ListenUDP("udp", ua)
		if err == nil {
			pc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the removed UDP listener's socket %s is still bound after %v: %v", addr, testDeadline, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor waits up to testDeadline for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, testDeadline)
		}
		time.Sleep(time.Millisecond)
	}
}

// freeUDPPort returns a loopback UDP address that was free a moment ago.
func freeUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// TestUDPStop: on SIGINT a UDP listener's open sessions go on until the
// drain timeout, as TCP connections do, then end ("shutdown") and the
// process exits 0.
func TestUDPStop(t *testing.T) {
	b1 := startUDPBackend(t, "b1")
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners: [{protocol: udp, listen: 127.0.0.1:0, pool: app}]
pools: [{name: app, backends: [%q]}]
timeouts: {drain: 300ms}
`, b1.addr))
	d := startDaemon(t, "-config", cfg)
	c := newUDPClient(t, d.listenAddr(t, 1))
	c.ask("1")
	d.stop(t)
	if rec := d.waitLog(t, "udp session", 1); rec["end"] != "shutdown" || rec["listener"] != "127.0.0.1:0/udp" {
		t.Errorf("access log %v, want end shutdown on listener 127.0.0.1:0/udp (the default name)", rec)
	}
}

// TestUDPAdmin: the daemon's admin listener shows UDP listeners: their
// metrics, and the API's listeners with protocol udp.
func TestUDPAdmin(t *testing.T) {
	b1 := startUDPBackend(t, "b1")
	d := startDaemon(t, "-protocol", "udp", "-listen", "127.0.0.1:0", "-backends", b1.addr, "-admin", "127.0.0.1:0")
	addr := d.listenAddr(t, 1)
	admin := d.waitLog(t, "admin listening", 1)["addr"].(string)
	c := newUDPClient(t, addr)
	c.ask("1")
	c.ask("2")
	body := get(t, "http://"+admin+"/metrics")
	for _, want := range []string{`tcplb_udp_sessions_total{listener="main"} 1`, `tcplb_udp_datagrams_total{direction="in",listener="main"} 2`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var pools struct {
		Listeners []struct {
			Name, Protocol string
			Active         int
		}
	}
	getJSON(t, "http://"+admin+"/api/v1/pools", &pools)
	if len(pools.Listeners) != 1 || pools.Listeners[0].Protocol != "udp" || pools.Listeners[0].Active != 1 {
		t.Errorf("API listeners = %+v, want main, udp, 1 session", pools.Listeners)
	}
}

// TestUDPProxyProtocolConfig: a UDP listener's pool with proxy_protocol
// v2 puts a PROXY v2 header (transport UDP) in front of each datagram.
func TestUDPProxyProtocolConfig(t *testing.T) {
	b1 := startUDPBackend(t, "b1")
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners: [{protocol: udp, listen: 127.0.0.1:0, pool: app}]
pools: [{name: app, proxy_protocol: v2, backends: [%q]}]
`, b1.addr))
	d := startDaemon(t, "-config", cfg)
	c := newUDPClient(t, d.listenAddr(t, 1))
	c.send("hi")
	got := c.read()
	// "b1 ", the 12-byte signature, version/command 0x21, UDP over IPv4
	// 0x12, then addresses and ports (12 bytes), then the datagram.
	if !strings.HasPrefix(got, "b1 \r\n\r\n\x00\r\nQUIT\n\x21\x12\x00\x0c") || !strings.HasSuffix(got, "hi") || len(got) != 3+16+12+2 {
		t.Errorf("backend got %q, want a PROXY v2 UDP header before the datagram", got)
	}
}

// TestUDPPerSourceConfig: rate_per_source on a UDP listener counts
// datagrams: beyond the burst they are dropped, and /metrics says so.
func TestUDPPerSourceConfig(t *testing.T) {
	b1 := startUDPBackend(t, "b1")
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners: [{protocol: udp, listen: 127.0.0.1:0, pool: app, rate_per_source: 0.001, burst_per_source: 2, max_sessions_per_source: 5}]
pools: [{name: app, backends: [%q]}]
admin: {listen: 127.0.0.1:0}
`, b1.addr))
	d := startDaemon(t, "-config", cfg)
	addr := d.listenAddr(t, 1)
	admin := d.waitLog(t, "admin listening", 1)["addr"].(string)
	c := newUDPClient(t, addr)
	c.ask("1")
	c.ask("2")
	c.send("3") // no token left
	want := `tcplb_udp_dropped_datagrams_total{listener="127.0.0.1:0/udp",reason="rate"} 1`
	waitFor(t, "the rate drop in /metrics", func() bool { return strings.Contains(get(t, "http://"+admin+"/metrics"), want) })
}

// TestUDPUnansweredConfig: passive.udp_unanswered reaches the pool: a
// backend that reads datagrams and never answers is ejected once a
// session of 2 unanswered datagrams goes idle.
func TestUDPUnansweredConfig(t *testing.T) {
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go io.Copy(io.Discard, silent)
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners: [{protocol: udp, listen: 127.0.0.1:0, pool: app}]
pools: [{name: app, passive: {max_fails: 1, max_ejection_percent: 100, udp_unanswered: 2}, backends: [%q]}]
timeouts: {udp_idle: 100ms}
`, silent.LocalAddr().String()))
	d := startDaemon(t, "-config", cfg)
	c := newUDPClient(t, d.listenAddr(t, 1))
	c.send("1")
	c.send("2")
	rec := d.waitLog(t, "backend ejected", 1)
	if why, _ := rec["why"].(string); !strings.Contains(why, "2 datagrams without a reply") {
		t.Errorf("ejection log %v, want the unanswered datagrams as the reason", rec)
	}
}
