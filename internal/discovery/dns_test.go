package discovery

import (
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/tcplb/tcplb"
)

// testZone is a DNS server's data and behaviour, changeable while it
// serves.
type testZone struct {
	mu       sync.Mutex
	rrs      []dns.RR
	rcode    int                     // if not 0, every answer has this rcode and nothing else
	servfail func(dns.Question) bool // if set, questions it picks get SERVFAIL
	drop     bool                    // answer nothing
	truncUDP bool                    // answer UDP queries with an empty truncated message
	noExtra  bool                    // leave SRV targets' addresses out of the additional section
	queries  map[string]int
}

// set replaces the zone's records with rrs, in zone-file syntax.
func (z *testZone) set(t *testing.T, rrs ...string) {
	t.Helper()
	var parsed []dns.RR
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("dns.NewRR(%q): %v", s, err)
		}
		parsed = append(parsed, rr)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.rrs = parsed
}

// update calls f with the zone locked.
func (z *testZone) update(f func(z *testZone)) {
	z.mu.Lock()
	defer z.mu.Unlock()
	f(z)
}

func (z *testZone) count(network string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.queries[network]
}

// lookup returns name's records of type qtype, following a CNAME, and
// whether name exists.
func (z *testZone) lookup(name string, qtype uint16) (rrs []dns.RR, exists bool) {
	for _, rr := range z.rrs {
		h := rr.Header()
		if !strings.EqualFold(h.Name, name) {
			continue
		}
		exists = true
		switch {
		case h.Rrtype == qtype:
			rrs = append(rrs, rr)
		case h.Rrtype == dns.TypeCNAME:
			more, _ := z.lookup(rr.(*dns.CNAME).Target, qtype)
			rrs = append(append(rrs, rr), more...)
		}
	}
	return rrs, exists
}

func (z *testZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	network := w.LocalAddr().Network()
	z.queries[network]++
	if z.drop {
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	switch q := r.Question[0]; {
	case z.rcode != 0:
		m.Rcode = z.rcode
	case z.servfail != nil && z.servfail(q):
		m.Rcode = dns.RcodeServerFailure
	case z.truncUDP && network == "udp":
		m.Truncated = true
	default:
		var exists bool
		m.Answer, exists = z.lookup(q.Name, q.Qtype)
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		for _, rr := range m.Answer {
			if srv, ok := rr.(*dns.SRV); ok && !z.noExtra {
				a, _ := z.lookup(srv.Target, dns.TypeA)
				aaaa, _ := z.lookup(srv.Target, dns.TypeAAAA)
				m.Extra = append(append(m.Extra, a...), aaaa...)
			}
		}
	}
	w.WriteMsg(m)
}

// startDNSServer serves z over UDP and TCP on one 127.0.0.1 port until the
// test ends, and returns its address.
func startDNSServer(t *testing.T, z *testZone) string {
	t.Helper()
	z.queries = make(map[string]int)
	var pc net.PacketConn
	var l net.Listener
	for attempt := 0; l == nil; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		// The TCP port must be the UDP one; another test may hold it.
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if attempt == 20 {
				t.Fatal(err)
			}
		}
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: z}, {Listener: l, Handler: z}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		select {
		case <-started:
		case <-time.After(srcWait):
			t.Fatal("dns server did not start")
		}
		t.Cleanup(func() { s.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// startDNSTest serves z and runs a DNS source for cfg against it, with a
// short query timeout.
func startDNSTest(t *testing.T, z *testZone, cfg DNSConfig) *srcTest {
	cfg.Server = startDNSServer(t, z)
	return startSrcTest(t, func(log *slog.Logger) Source {
		d := NewDNS(cfg, log)
		d.timeout = 250 * time.Millisecond
		return d
	})
}

func TestDNSA(t *testing.T) {
	z := &testZone{}
	z.set(t,
		"app.example. 60 IN A 127.0.0.1",
		"app.example. 60 IN A 127.0.0.2",
		"app.example. 60 IN AAAA ::1",
		"other.example. 60 IN A 127.0.0.9",
		"alias.example. 60 IN CNAME app.example.",
	)
	for _, name := range []string{"app.example", "app.example.", "APP.Example", "alias.example"} {
		t.Run(name, func(t *testing.T) {
			h := startDNSTest(t, z, DNSConfig{Name: name, Type: "a", Port: 3001})
			h.expect(spec("127.0.0.1:3001", 1), spec("127.0.0.2:3001", 1), spec("[::1]:3001", 1))
		})
	}
}

func TestDNSSRV(t *testing.T) {
	targets := []string{
		"a.example. 60 IN A 127.0.0.1",
		"b.example. 60 IN A 127.0.0.2",
		"b.example. 60 IN AAAA ::2",
		"c.example. 60 IN A 127.0.0.3",
	}
	for _, tc := range []struct {
		name    string
		srv     []string
		noExtra bool
		want    []tcplb.BackendSpec
	}{
		{
			name: "ports and weights",
			srv: []string{
				"_app._tcp.example. 60 IN SRV 10 10 3001 a.example.",
				"_app._tcp.example. 60 IN SRV 10 30 3002 b.example.",
			},
			want: []tcplb.BackendSpec{spec("127.0.0.1:3001", 10), spec("127.0.0.2:3002", 30), spec("[::2]:3002", 30)},
		},
		{
			name: "no additional section",
			srv: []string{
				"_app._tcp.example. 60 IN SRV 10 10 3001 a.example.",
				"_app._tcp.example. 60 IN SRV 10 30 3002 b.example.",
			},
			noExtra: true,
			want:    []tcplb.BackendSpec{spec("127.0.0.1:3001", 10), spec("127.0.0.2:3002", 30), spec("[::2]:3002", 30)},
		},
		{
			name: "lowest priority group only",
			srv: []string{
				"_app._tcp.example. 60 IN SRV 20 50 3003 c.example.",
				"_app._tcp.example. 60 IN SRV 10 0 3001 a.example.",
				"_app._tcp.example. 60 IN SRV 30 50 3002 b.example.",
				"_app._tcp.example. 60 IN SRV 10 0 3004 c.example.",
			},
			want: []tcplb.BackendSpec{spec("127.0.0.1:3001", 1), spec("127.0.0.3:3004", 1)},
		},
		{
			name: "weights scaled",
			srv: []string{
				"_app._tcp.example. 60 IN SRV 0 1000 3001 a.example.",
				"_app._tcp.example. 60 IN SRV 0 500 3002 a.example.",
				"_app._tcp.example. 60 IN SRV 0 0 3003 a.example.",
			},
			want: []tcplb.BackendSpec{spec("127.0.0.1:3001", 256), spec("127.0.0.1:3002", 128), spec("127.0.0.1:3003", 1)},
		},
		{
			name: "same address twice",
			srv: []string{
				"_app._tcp.example. 60 IN SRV 0 5 3001 a.example.",
				"_app._tcp.example. 60 IN SRV 0 7 3001 a.example.",
			},
			want: []tcplb.BackendSpec{spec("127.0.0.1:3001", 12)},
		},
		{
			name: "target missing or refused",
			srv: []string{
				"_app._tcp.example. 60 IN SRV 0 5 3001 gone.example.",
				"_app._tcp.example. 60 IN SRV 0 5 3002 .",
				"_app._tcp.example. 60 IN SRV 0 5 0 a.example.",
				"_app._tcp.example. 60 IN SRV 0 5 3003 c.example.",
			},
			noExtra: true,
			want:    []tcplb.BackendSpec{spec("127.0.0.3:3003", 5)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := &testZone{noExtra: tc.noExtra}
			z.set(t, append(slices.Clone(targets), tc.srv...)...)
			h := startDNSTest(t, z, DNSConfig{Name: "_app._tcp.example", Type: "srv"})
			h.expect(tc.want...)
			if tc.noExtra && z.count("udp") < 2 {
				t.Errorf("%d UDP queries, want the SRV one and the targets'", z.count("udp"))
			}
		})
	}
}

func TestDNSFollowsChanges(t *testing.T) {
	t.Parallel()
	z := &testZone{}
	z.set(t,
		"_app._tcp.example. 1 IN SRV 0 1 3001 a.example.",
		"a.example. 1 IN A 127.0.0.1",
	)
	h := startDNSTest(t, z, DNSConfig{Name: "_app._tcp.example", Type: "srv", Interval: time.Hour})
	h.expect(spec("127.0.0.1:3001", 1))

	// The TTL (1s), not the hour's Interval, says when to look again.
	z.set(t,
		"_app._tcp.example. 1 IN SRV 0 1 3001 a.example.",
		"_app._tcp.example. 1 IN SRV 0 2 3002 b.example.",
		"a.example. 1 IN A 127.0.0.1",
		"b.example. 1 IN A 127.0.0.2",
	)
	h.expect(spec("127.0.0.1:3001", 1), spec("127.0.0.2:3002", 2))

	// An unchanged set is looked up again but not passed on.
	h.log.reset()
	h.log.wait(t, "dns lookup; set unchanged")
	h.none()
	z.set(t,
		"_app._tcp.example. 1 IN SRV 0 2 3002 b.example.",
		"b.example. 1 IN A 127.0.0.2",
	)
	h.expect(spec("127.0.0.2:3002", 2))
}

func TestDNSIntervalBeforeTTL(t *testing.T) {
	t.Parallel()
	z := &testZone{}
	z.set(t, "app.example. 3600 IN A 127.0.0.1")
	h := startDNSTest(t, z, DNSConfig{Name: "app.example", Type: "a", Port: 80, Interval: time.Second})
	h.expect(spec("127.0.0.1:80", 1))
	z.set(t, "app.example. 3600 IN A 127.0.0.2")
	h.expect(spec("127.0.0.2:80", 1))
}

func TestDNSFailuresKeepLastSet(t *testing.T) {
	t.Parallel()
	good := []string{"app.example. 1 IN A 127.0.0.1", "app.example. 1 IN A 127.0.0.2"}
	for _, tc := range []struct {
		name    string
		breakIt func(*testing.T, *testZone)
		log     string
	}{
		{"servfail", func(_ *testing.T, z *testZone) { z.update(func(z *testZone) { z.rcode = dns.RcodeServerFailure }) }, "server answered SERVFAIL"},
		{"refused", func(_ *testing.T, z *testZone) { z.update(func(z *testZone) { z.rcode = dns.RcodeRefused }) }, "server answered REFUSED"},
		{"timeout", func(_ *testing.T, z *testZone) { z.update(func(z *testZone) { z.drop = true }) }, "timeout"},
		{"nxdomain", func(t *testing.T, z *testZone) { z.set(t, "other.example. 1 IN A 127.0.0.9") }, "NXDOMAIN"},
		{"no records", func(t *testing.T, z *testZone) { z.set(t, "app.example. 1 IN TXT \"moved\"") }, "no A or AAAA records"},
		{"half failed", func(_ *testing.T, z *testZone) {
			// A answers, AAAA fails: a partial set must not shrink the pool.
			z.update(func(z *testZone) { z.servfail = func(q dns.Question) bool { return q.Qtype == dns.TypeAAAA } })
		}, "AAAA app.example.: server answered SERVFAIL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z := &testZone{}
			z.set(t, good...)
			h := startDNSTest(t, z, DNSConfig{Name: "app.example", Type: "a", Port: 3001, Interval: time.Second})
			h.expect(spec("127.0.0.1:3001", 1), spec("127.0.0.2:3001", 1))

			h.log.reset()
			tc.breakIt(t, z)
			h.log.wait(t, "dns lookup failed", tc.log)
			h.none()

			// Mended, with a new set: that is the next update.
			z.update(func(z *testZone) { z.rcode, z.drop, z.servfail = 0, false, nil })
			z.set(t, "app.example. 1 IN A 127.0.0.3")
			h.expect(spec("127.0.0.3:3001", 1))
		})
	}
}

func TestDNSSRVTargetFailureKeepsLastSet(t *testing.T) {
	t.Parallel()
	z := &testZone{noExtra: true}
	z.set(t,
		"_app._tcp.example. 1 IN SRV 0 1 3001 a.example.",
		"_app._tcp.example. 1 IN SRV 0 1 3002 b.example.",
		"a.example. 1 IN A 127.0.0.1",
		"b.example. 1 IN A 127.0.0.2",
	)
	h := startDNSTest(t, z, DNSConfig{Name: "_app._tcp.example", Type: "srv", Interval: time.Second})
	h.expect(spec("127.0.0.1:3001", 1), spec("127.0.0.2:3002", 1))

	// b.example's lookup fails: the whole lookup fails, and b stays.
	h.log.reset()
	z.update(func(z *testZone) { z.servfail = func(q dns.Question) bool { return q.Name == "b.example." } })
	h.log.wait(t, "dns lookup failed", "b.example.: server answered SERVFAIL")
	h.none()

	// b.example is gone (NXDOMAIN): it is skipped, and a stays.
	z.set(t,
		"_app._tcp.example. 1 IN SRV 0 1 3001 a.example.",
		"_app._tcp.example. 1 IN SRV 0 1 3002 b.example.",
		"a.example. 1 IN A 127.0.0.1",
	)
	z.update(func(z *testZone) { z.servfail = nil })
	h.expect(spec("127.0.0.1:3001", 1))
	h.log.wait(t, "srv target has no address", "target=b.example.", "NXDOMAIN")
}

func TestDNSTruncatedRetriesOverTCP(t *testing.T) {
	z := &testZone{truncUDP: true}
	z.set(t,
		"_app._tcp.example. 60 IN SRV 0 1 3001 a.example.",
		"a.example. 60 IN A 127.0.0.1",
	)
	h := startDNSTest(t, z, DNSConfig{Name: "_app._tcp.example", Type: "srv"})
	h.expect(spec("127.0.0.1:3001", 1))
	if z.count("tcp") == 0 {
		t.Errorf("no TCP query after a truncated UDP answer")
	}
}

func TestDNSConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg DNSConfig
		err string
	}{
		{DNSConfig{Name: "app.example", Type: "a", Port: 3001}, ""},
		{DNSConfig{Name: "app.example.", Type: "A", Port: 65535, Server: "[::1]:53"}, ""},
		{DNSConfig{Name: "_app._tcp.example", Type: "srv"}, ""},
		{DNSConfig{Name: "_app._tcp.example", Type: "SRV", Port: 99999}, ""},
		{DNSConfig{Type: "a", Port: 1}, "name: required"},
		{DNSConfig{Name: "a..b", Type: "a", Port: 1}, "not a domain name"},
		{DNSConfig{Name: "app.example", Type: "a"}, "port 0"},
		{DNSConfig{Name: "app.example", Type: "a", Port: 65536}, "port 65536"},
		{DNSConfig{Name: "app.example", Type: "aaaa", Port: 1}, "type \"aaaa\""},
		{DNSConfig{Name: "app.example", Type: "", Port: 1}, "type \"\""},
		{DNSConfig{Name: "app.example", Type: "a", Port: 1, Server: "127.0.0.1"}, "server \"127.0.0.1\""},
	} {
		err := tc.cfg.Validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v.Validate() = %v, want %q", tc.cfg, err, tc.err)
		}
	}
}

func TestDNSRunRejectsBadConfig(t *testing.T) {
	d := NewDNS(DNSConfig{Name: "app.example", Type: "a"}, slog.New(slog.DiscardHandler))
	if err := d.Run(t.Context(), func([]tcplb.BackendSpec) { t.Error("update called") }); err == nil || !strings.Contains(err.Error(), "port") {
		t.Errorf("Run with no port = %v, want a port error", err)
	}
}

func TestDNSSRVWeight(t *testing.T) {
	for _, tc := range []struct {
		w, largest uint16
		want       int
	}{
		{0, 0, 1}, {0, 10, 1}, {1, 10, 1}, {10, 10, 10}, {256, 256, 256},
		{0, 257, 1}, {257, 257, 256}, {200, 257, 199}, {128, 257, 128},
		{65535, 65535, 256}, {1, 65535, 1}, {32768, 65535, 128}, {300, 600, 128},
	} {
		if got := srvWeight(tc.w, tc.largest); got != tc.want {
			t.Errorf("srvWeight(%d, %d) = %d, want %d", tc.w, tc.largest, got, tc.want)
		}
	}
}

func TestDNSString(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		cfg  DNSConfig
		want string
	}{
		{DNSConfig{Name: "_app._tcp.example", Type: "srv"}, "dns srv _app._tcp.example"},
		{DNSConfig{Name: "app.example", Type: "a", Port: 3001}, "dns a app.example:3001"},
	} {
		if got := NewDNS(tc.cfg, discard).String(); got != tc.want {
			t.Errorf("NewDNS(%+v).String() = %q, want %q", tc.cfg, got, tc.want)
		}
	}
}
