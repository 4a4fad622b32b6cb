package tcplb

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcplb/tcplb/internal/proxyproto"
)

// proxyAware is a backend that reads a PROXY header (if one comes first),
// then greets with "src dst" as the header told them ("none" without one),
// then echoes.
func proxyAware(c *net.TCPConn) {
	buf := make([]byte, proxyproto.MaxHeaderLen)
	h, rest, err := proxyproto.Read(c, buf)
	switch {
	case err != nil:
		fmt.Fprintf(c, "none %q\n", rest)
	case h.Local:
		io.WriteString(c, "local\n")
	default:
		fmt.Fprintf(c, "%s %s v%d\n", h.Source, h.Dest, h.Version)
	}
	if err == nil {
		c.Write(rest)
	}
	echo(c)
}

// sendProxyPool is a pool of one proxyAware backend sending version v.
func sendProxyPool(t *testing.T, v ProxyVersion, network string) *Pool {
	t.Helper()
	addr := startBackend(t, proxyAware)
	if network == "tcp6" {
		addr = startBackend6(t, proxyAware)
	}
	p, _ := newTestPool(t, PoolOptions{SendProxy: v}, addr)
	return p
}

func startBackend6(t *testing.T, serve func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(testDeadline))
				serve(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// startEdgeLB serves a balancer with edge on network's loopback.
func startEdgeLB(t *testing.T, lb *Balancer, network string) *testLB {
	t.Helper()
	if network == "tcp6" {
		ln, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		tl := &testLB{Balancer: lb, addr: ln.Addr().String(), log: &logBuffer{}, done: make(chan error, 1)}
		go func() { tl.done <- lb.Serve(ln) }()
		t.Cleanup(func() { lb.Close() })
		return tl
	}
	return startLB(t, lb)
}

// firstLine reads one line from c; a connection read with it must not be
// read otherwise (it buffers).
func firstLine(t *testing.T, c net.Conn) string {
	t.Helper()
	return readLine(lineReader(c))
}

var (
	readersMu sync.Mutex
	readers   = map[net.Conn]*bufio.Reader{}
)

func lineReader(c net.Conn) *bufio.Reader {
	readersMu.Lock()
	defer readersMu.Unlock()
	r := readers[c]
	if r == nil {
		r = bufio.NewReader(c)
		readers[c] = r
	}
	return r
}

func readLine(r *bufio.Reader) string {
	line, err := r.ReadString('\n')
	if err != nil {
		return "closed: " + err.Error()
	}
	return strings.TrimSuffix(line, "\n")
}

// waitRejected waits until the balancer has counted n rejections for why.
func waitRejected(t *testing.T, tl *testLB, why End, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d rejections %q", n, why), func() bool { return tl.Stats().Rejected[why] >= n })
	if got := tl.Stats().Rejected[why]; got != n {
		t.Errorf("rejections %q = %d, want %d", why, got, n)
	}
}

func TestSendProxyHeader(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		for _, v := range []ProxyVersion{ProxyV1, ProxyV2} {
			t.Run(fmt.Sprintf("%s/v%d", network, v), func(t *testing.T) {
				tl := startEdgeLB(t, &Balancer{Pool: sendProxyPool(t, v, network)}, network)
				c := dial(t, tl.addr)
				io.WriteString(c, "hello\n") // sent with or after the header: must follow it
				want := fmt.Sprintf("%s %s v%d", c.LocalAddr(), c.RemoteAddr(), v)
				if got := firstLine(t, c); got != want {
					t.Fatalf("backend saw %q, want %q", got, want)
				}
				if got := firstLine(t, c); got != "hello" {
					t.Errorf("client bytes after the header: %q, want hello", got)
				}
			})
		}
	}
}

// upstreamDial connects to addr from 127.0.0.1 and sends raw first.
func upstreamDial(t *testing.T, addr string, raw []byte) *net.TCPConn {
	t.Helper()
	c := dial(t, addr)
	if len(raw) > 0 {
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func TestAcceptProxyThenSend(t *testing.T) {
	claimed := netip.MustParseAddrPort("203.0.113.7:4567")
	claimedDst := netip.MustParseAddrPort("198.51.100.1:443")
	claimed6 := netip.MustParseAddrPort("[2001:db8::7]:4567")
	claimedDst6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	for _, tc := range []struct {
		name      string
		header    []byte
		send      ProxyVersion
		want      string
		wantStats string
	}{
		{"v2 in, v1 out", proxyproto.AppendV2(nil, claimed, claimedDst), ProxyV1, "203.0.113.7:4567 198.51.100.1:443 v1", ""},
		{"v1 in, v2 out", proxyproto.AppendV1(nil, claimed, claimedDst), ProxyV2, "203.0.113.7:4567 198.51.100.1:443 v2", ""},
		{"v2 IPv6 in, v2 out", proxyproto.AppendV2(nil, claimed6, claimedDst6), ProxyV2, "[2001:db8::7]:4567 [2001:db8::1]:443 v2", ""},
		{"LOCAL keeps the peer", proxyproto.AppendV2Local(nil), ProxyV2, "127.0.0.1:", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := &Balancer{Pool: sendProxyPool(t, tc.send, "tcp4"), Edge: Edge{ProxyProtocol: &ProxyAccept{Trusted: loopback}}}
			tl := startLB(t, lb)
			c := upstreamDial(t, tl.addr, append(tc.header, "data\n"...))
			if got := firstLine(t, c); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("backend saw %q, want %q", got, tc.want)
			}
			if got := firstLine(t, c); got != "data" {
				t.Errorf("client data after the header = %q, want data", got)
			}
			c.Close()
			rec := tl.waitAccessLog(t, 1)[0]
			if want := strings.Fields(tc.want)[0]; !strings.HasPrefix(rec["client"].(string), want) {
				t.Errorf("access log client = %v, want %s (what the header said)", rec["client"], want)
			}
		})
	}
}

func TestProxyHeaderRefused(t *testing.T) {
	good := proxyproto.AppendV2(nil, netip.MustParseAddrPort("203.0.113.7:1"), netip.MustParseAddrPort("198.51.100.1:2"))
	for _, tc := range []struct {
		name   string
		send   []byte
		reason string
	}{
		{"no header", []byte("GET / HTTP/1.1\r\n\r\n"), proxyproto.ReasonNotProxy},
		{"malformed v1", []byte("PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n"), proxyproto.ReasonMalformed},
		{"v1 too long", []byte("PROXY TCP4 " + strings.Repeat("1", 120)), proxyproto.ReasonTooLong},
		{"v2 bad version", append([]byte(good[:12:12]), 0x11, 0x11, 0, 12), proxyproto.ReasonVersion},
		{"truncated v2", good[:20], proxyproto.ReasonTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := &Balancer{Pool: sendProxyPool(t, ProxyNone, "tcp4"), Edge: Edge{ProxyProtocol: &ProxyAccept{Trusted: loopback, Timeout: time.Second}}}
			tl := startLB(t, lb)
			c := upstreamDial(t, tl.addr, tc.send)
			if tc.name == "truncated v2" {
				c.CloseWrite()
			}
			if got := firstLine(t, c); !strings.HasPrefix(got, "closed") {
				t.Fatalf("got %q, want the connection closed", got)
			}
			rec := tl.waitAccessLog(t, 1)[0]
			s := tl.Stats()
			if rec["end"] != string(EndBadProxy) || s.Rejected[EndBadProxy] != 1 || s.ProxyErrors[tc.reason] != 1 {
				t.Errorf("end %v, rejected %v, proxy errors %v; want %q and reason %s counted", rec["end"], s.Rejected[EndBadProxy], s.ProxyErrors, EndBadProxy, tc.reason)
			}
			if tl.Pool.Backends()[0].Stats().Total != 0 {
				t.Error("a backend was dialled for a refused header")
			}
		})
	}
}

func TestProxyHeaderSlowDripTimesOut(t *testing.T) {
	lb := &Balancer{Pool: sendProxyPool(t, ProxyNone, "tcp4"), Edge: Edge{ProxyProtocol: &ProxyAccept{Trusted: loopback, Timeout: 100 * time.Millisecond}}}
	tl := startLB(t, lb)
	c := upstreamDial(t, tl.addr, []byte("PROXY TCP4 1.2."))
	start := time.Now()
	if got := firstLine(t, c); !strings.HasPrefix(got, "closed") {
		t.Fatalf("got %q, want the connection closed at the header deadline", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v, want about 100ms", d)
	}
	tl.waitAccessLog(t, 1)
	if n := tl.Stats().ProxyErrors[proxyproto.ReasonTimeout]; n != 1 {
		t.Errorf("timeout errors = %d, want 1", n)
	}
}

func TestProxyHeaderTrust(t *testing.T) {
	header := proxyproto.AppendV1(nil, netip.MustParseAddrPort("203.0.113.7:1"), netip.MustParseAddrPort("198.51.100.1:2"))
	notUs := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	t.Run("untrusted peer sends a header at once", func(t *testing.T) {
		tl := startLB(t, &Balancer{Pool: sendProxyPool(t, ProxyV2, "tcp4"), Edge: Edge{ProxyProtocol: &ProxyAccept{Trusted: notUs}}})
		c := dial(t, tl.addr)
		c.Write(header)
		firstLine(t, c)
		tl.waitAccessLog(t, 1)
		if n := tl.Stats().ProxyErrors[reasonUntrusted]; n != 1 {
			t.Errorf("untrusted errors = %d, want 1", n)
		}
	})
	t.Run("untrusted peer sends a header later", func(t *testing.T) {
		tl := startLB(t, &Balancer{Pool: sendProxyPool(t, ProxyV2, "tcp4"), Edge: Edge{ProxyProtocol: &ProxyAccept{Trusted: notUs}}})
		c := dial(t, tl.addr)
		// The backend answers first: the balancer has dialled, then sees
		// the header in the first bytes it copies.
		r := lineReader(c)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "127.0.0.1:") {
			t.Fatalf("backend greeting %q, %v; want the peer's real address", line, err)
		}
		c.Write(header)
		if _, err := io.ReadAll(r); err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("after an untrusted header: %v, want the connection closed", err)
		}
		if rec := tl.waitAccessLog(t, 1)[0]; rec["end"] != string(EndBadProxy) {
			t.Errorf("end = %v, want %q", rec["end"], EndBadProxy)
		}
	})
	t.Run("untrusted peer without header is served as itself", func(t *testing.T) {
		tl := startLB(t, &Balancer{Pool: sendProxyPool(t, ProxyV1, "tcp4"), Edge: Edge{ProxyProtocol: &ProxyAccept{Trusted: notUs}}})
		c := dial(t, tl.addr)
		c.Write([]byte("POST / HTTP/1.1\r\n"))
		if got := firstLine(t, c); !strings.HasPrefix(got, c.LocalAddr().String()) {
			t.Errorf("backend saw %q, want the peer %s", got, c.LocalAddr())
		}
	})
	t.Run("optional header omitted by a trusted peer", func(t *testing.T) {
		tl := startLB(t, &Balancer{Pool: sendProxyPool(t, ProxyV1, "tcp4"), Edge: Edge{ProxyProtocol: &ProxyAccept{Trusted: loopback, Optional: true}}})
		c := upstreamDial(t, tl.addr, []byte("plain\n"))
		if got := firstLine(t, c); !strings.HasPrefix(got, c.LocalAddr().String()) {
			t.Fatalf("backend saw %q, want the peer %s", got, c.LocalAddr())
		}
		if got := firstLine(t, c); got != "plain" {
			t.Errorf("first client bytes = %q, want them forwarded", got)
		}
	})
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) (*net.TCPConn, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: testDeadline}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testDeadline))
	return c.(*net.TCPConn), nil
}

func TestAllowDeny(t *testing.T) {
	edge := Edge{
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/29")},
		Deny:  []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")},
	}
	tl := startLB(t, &Balancer{Pool: sendProxyPool(t, ProxyV1, "tcp4"), Edge: edge})
	for src, served := range map[string]bool{"127.0.0.1": true, "127.0.0.2": true, "127.0.0.3": false, "127.0.0.9": false} {
		c, err := dialFrom(t, src, tl.addr)
		if err != nil {
			t.Fatal(err)
		}
		got := firstLine(t, c)
		if served != strings.HasPrefix(got, src+":") {
			t.Errorf("from %s: %q, want served %v", src, got, served)
		}
	}
	waitRejected(t, tl, EndDenied, 2)
	if n := tl.Pool.Backends()[0].Stats().Total; n != 2 {
		t.Errorf("backend dialled %d times, want 2 (denied clients never reach it)", n)
	}
}

func TestPerSourceLimits(t *testing.T) {
	t.Run("connections", func(t *testing.T) {
		tl := startLB(t, &Balancer{Pool: sendProxyPool(t, ProxyV1, "tcp4"), Edge: Edge{MaxConnsPerSource: 2}})
		var held []*net.TCPConn
		for range 2 {
			c, _ := dialFrom(t, "127.0.0.2", tl.addr)
			if got := firstLine(t, c); !strings.HasPrefix(got, "127.0.0.2:") {
				t.Fatalf("connection within the limit: %q", got)
			}
			held = append(held, c)
		}
		c, _ := dialFrom(t, "127.0.0.2", tl.addr)
		if got := firstLine(t, c); !strings.HasPrefix(got, "closed") {
			t.Fatalf("third connection from one source: %q, want closed", got)
		}
		other, _ := dialFrom(t, "127.0.0.3", tl.addr)
		if got := firstLine(t, other); !strings.HasPrefix(got, "127.0.0.3:") {
			t.Fatalf("another source: %q, want served", got)
		}
		held[0].Close()
		waitFor(t, "the source's count to drop", func() bool { return tl.ActiveConns() == 2 })
		c, _ = dialFrom(t, "127.0.0.2", tl.addr)
		if got := firstLine(t, c); !strings.HasPrefix(got, "127.0.0.2:") {
			t.Fatalf("after one closed: %q, want served", got)
		}
		if n := tl.Stats().Rejected[EndSourceLimit]; n != 1 {
			t.Errorf("source limit rejections = %d, want 1", n)
		}
	})
	t.Run("rate", func(t *testing.T) {
		tl := startLB(t, &Balancer{Pool: sendProxyPool(t, ProxyV1, "tcp4"), Edge: Edge{RatePerSource: 0.001, BurstPerSource: 3}})
		served := 0
		for range 5 {
			c, _ := dialFrom(t, "127.0.0.4", tl.addr)
			if strings.HasPrefix(firstLine(t, c), "127.0.0.4:") {
				served++
			}
			c.Close()
		}
		if served != 3 {
			t.Errorf("%d of 5 quick connections served, want the burst of 3", served)
		}
		c, _ := dialFrom(t, "127.0.0.5", tl.addr)
		if got := firstLine(t, c); !strings.HasPrefix(got, "127.0.0.5:") {
			t.Errorf("another source: %q, want served (its own bucket)", got)
		}
		waitRejected(t, tl, EndRateLimited, 2)
	})
}

func TestSourceTableBounded(t *testing.T) {
	st := newSourceTable(100)
	now := time.Now()
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if why := st.acquire(a, 0, 1, 5, now); why != "" {
			t.Fatalf("new source %v refused: %s", a, why)
		}
		st.release(a)
	}
	st.mu.Lock()
	n := len(st.m)
	st.mu.Unlock()
	if n > 100 {
		t.Errorf("after 10000 distinct sources, the table holds %d, want at most 100", n)
	}
	// Sources with open connections are never forgotten.
	held := netip.MustParseAddr("192.0.2.1")
	st.acquire(held, 1, 0, 0, now)
	for i := range 1000 {
		st.acquire(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 0, 0, 0, now)
	}
	if why := st.acquire(held, 1, 0, 0, now); why != EndSourceLimit {
		t.Errorf("held source after a flood: %q, want still at its limit", why)
	}
}

func TestListenerMaxConns(t *testing.T) {
	tl := startLB(t, &Balancer{Pool: sendProxyPool(t, ProxyV1, "tcp4"), Edge: Edge{MaxConns: 1}, QueueTimeout: testDeadline})
	first := dial(t, tl.addr)
	if got := firstLine(t, first); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatal(got)
	}
	second := dial(t, tl.addr)
	got := make(chan string, 1)
	go func() { got <- firstLine(t, second) }()
	waitFor(t, "the second client to queue", func() bool { return tl.slotQueue.n.Load() == 1 })
	first.Close()
	if line := <-got; !strings.HasPrefix(line, "127.0.0.1:") {
		t.Errorf("queued client: %q, want served once the first closed", line)
	}

	noQueue := startLB(t, &Balancer{Pool: sendProxyPool(t, ProxyV1, "tcp4"), Edge: Edge{MaxConns: 1}})
	a := dial(t, noQueue.addr)
	firstLine(t, a)
	if got := firstLine(t, dial(t, noQueue.addr)); !strings.HasPrefix(got, "closed") {
		t.Errorf("beyond max_conns without a queue: %q, want closed", got)
	}
	waitRejected(t, noQueue, EndListenerFull, 1)
}

// tlsBackend is a TLS server for name that answers each connection with
// name, proving the handshake went end to end.
func tlsBackend(t *testing.T, name string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return startBackend(t, func(c *net.TCPConn) {
		s := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if s.Handshake() == nil {
			io.WriteString(s, "served by "+name+"\n")
		}
	})
}

func tlsGet(t *testing.T, addr, serverName string) string {
	t.Helper()
	c := dial(t, addr)
	tc := tls.Client(c, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return "handshake: " + err.Error()
	}
	return firstLine(t, tc)
}

func TestSNIRouting(t *testing.T) {
	a, _ := newTestPool(t, PoolOptions{}, tlsBackend(t, "a.example"))
	b, _ := newTestPool(t, PoolOptions{}, tlsBackend(t, "x.b.example"))
	def, _ := newTestPool(t, PoolOptions{}, tlsBackend(t, "default"))
	routes := []SNIRoute{{"a.example", a}, {"*.b.example", b}}
	tl := startLB(t, &Balancer{Pool: def, Edge: Edge{SNI: &SNIRouting{Routes: routes}}})
	for name, want := range map[string]string{
		"a.example":     "served by a.example",
		"A.Example":     "served by a.example",
		"x.b.example":   "served by x.b.example",
		"b.example":     "served by default",
		"y.x.b.example": "served by default",
		"other.test":    "served by default",
		"":              "served by default",
	} {
		if got := tlsGet(t, tl.addr, name); got != want {
			t.Errorf("server name %q: %q, want %q", name, got, want)
		}
	}
	// Not TLS at all: the default pool gets the bytes.
	c := dial(t, tl.addr)
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	if got := firstLine(t, c); strings.HasPrefix(got, "served") {
		t.Errorf("plain text was answered %q by a TLS backend", got)
	}

	strict := startLB(t, &Balancer{Pool: def, Edge: Edge{SNI: &SNIRouting{Routes: routes, Close: true}}})
	if got := tlsGet(t, strict.addr, "other.test"); !strings.HasPrefix(got, "handshake") {
		t.Errorf("unrouted name with Close: %q, want the connection closed", got)
	}
	if got := tlsGet(t, strict.addr, "a.example"); got != "served by a.example" {
		t.Errorf("routed name with Close: %q", got)
	}
	waitRejected(t, strict, EndNoRoute, 1)
}

func TestEdgeRejectsBadSettings(t *testing.T) {
	p := NewPool("p", nil)
	for _, e := range []Edge{
		{ProxyProtocol: &ProxyAccept{}},
		{MaxConns: -1},
		{RatePerSource: -1},
		{SNI: &SNIRouting{Routes: []SNIRoute{{"a..b", p}}}},
		{SNI: &SNIRouting{Routes: []SNIRoute{{"a.example", nil}}}},
	} {
		lb := &Balancer{Pool: p, Edge: e}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		if err := lb.Serve(ln); err == nil || !strings.Contains(err.Error(), "Edge") {
			t.Errorf("Serve with Edge %+v = %v, want an error naming Edge", e, err)
		}
		ln.Close()
		if err := (&Balancer{Pool: p}).SetEdge(e); err == nil {
			t.Errorf("SetEdge(%+v) = nil, want an error", e)
		}
	}
}

// BenchmarkConnectExchangeCloseProxy is BenchmarkConnectExchangeClose with
// and without a PROXY header sent to the backend. The backend reads a
// header if there is one, in both cases, so the difference is what the
// header costs the balancer.
func BenchmarkConnectExchangeCloseProxy(b *testing.B) {
	for _, engine := range engines() {
		for _, v := range []ProxyVersion{ProxyNone, ProxyV1, ProxyV2} {
			b.Run(fmt.Sprintf("%v/v%d", engine, v), func(b *testing.B) {
				addr := benchLB(b, engine, func(c *net.TCPConn) {
					buf := make([]byte, proxyproto.MaxHeaderLen)
					_, rest, _ := proxyproto.Read(c, buf)
					if len(rest) < 64 {
						n, _ := io.ReadFull(c, buf[len(rest):64])
						rest = buf[:len(rest)+n]
					}
					c.Write(rest)
				})
				// benchLB's pool is the only one: set its header.
				lastBenchPool.SetOptions(PoolOptions{SendProxy: v})
				connectExchangeClose(b, addr)
			})
		}
	}
}
