package tcplb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// udpCheckServer is a UDP backend on a real socket that answers each
// datagram with what its answer function returns.
type udpCheckServer struct {
	pc   net.PacketConn
	got  chan string // each datagram received, if the test reads them
	stop sync.Once
	done chan struct{}
}

// startUDPCheckServer listens on a free UDP port of host ("127.0.0.1",
// "::1") and answers each datagram with answer's reply, or with nothing if
// answer reports false. It is closed and waited for in t.Cleanup.
func startUDPCheckServer(t *testing.T, host string, answer func(req string) (string, bool)) *udpCheckServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &udpCheckServer{pc: pc, got: make(chan string, 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := string(buf[:n])
			select {
			case s.got <- req:
			default:
			}
			if reply, ok := answer(req); ok {
				pc.WriteTo([]byte(reply), from)
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

// close closes the server's socket and waits for its goroutine, so that
// its port answers with ICMP port unreachable from then on.
func (s *udpCheckServer) close() {
	s.stop.Do(func() { s.pc.Close() })
	<-s.done
}

func (s *udpCheckServer) addr() string { return s.pc.LocalAddr().String() }

func (s *udpCheckServer) port() int { return s.pc.LocalAddr().(*net.UDPAddr).Port }

// udpAnswer returns an answer function that replies reply to a datagram
// that is exactly want, and "BAD REQUEST" to any other.
func udpAnswer(want, reply string) func(string) (string, bool) {
	return func(req string) (string, bool) {
		if req != want {
			return "BAD REQUEST", true
		}
		return reply, true
	}
}

// silent never answers.
func silent(string) (string, bool) { return "", false }

// closedUDPAddr returns an address on host where no UDP socket is bound:
// a datagram to it gets an ICMP port unreachable.
func closedUDPAddr(t *testing.T, host string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// udpProbeCase is one probe of a UDP backend on a real socket.
type udpProbeCase struct {
	name      string
	answer    func(string) (string, bool) // the backend; nil: no socket on its port
	checkPort bool                        // the backend's port is closed and hc.Port is the one answer serves on
	hc        HealthCheck                 // Network is set to udp
	want      string                      // the error exactly, with $addr for the checked address; "" for success
	minTook   time.Duration               // the probe must take at least this long
}

func runUDPProbeCases(t *testing.T, host string, cases []udpProbeCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			tt.hc.Network = HealthUDP
			hc := tt.hc.WithDefaults()
			if err := hc.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			addr := closedUDPAddr(t, host)
			checked := addr
			var srv *udpCheckServer
			if tt.answer != nil {
				srv = startUDPCheckServer(t, host, tt.answer)
				checked = srv.addr()
				if tt.checkPort {
					hc.Port = srv.port()
				} else {
					addr = checked
				}
			}

			start := time.Now()
			err := hc.probe(t.Context(), addr)
			took := time.Since(start)

			want := strings.ReplaceAll(tt.want, "$addr", checked)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("probe(%s) = %v, want nil", addr, err)
			case tt.want != "" && (err == nil || err.Error() != want):
				t.Errorf("probe(%s) = %v, want %s", addr, err, want)
			}
			if took > probeWithin || took < tt.minTook {
				t.Errorf("probe(%s) took %v, want between %v and %v", addr, took, tt.minTook, probeWithin)
			}
			if srv != nil {
				select {
				case got := <-srv.got:
					if got != hc.Send {
						t.Errorf("probe(%s) sent %q, want %q as one datagram", addr, got, hc.Send)
					}
				default:
					t.Errorf("probe(%s) returned, but the backend got no datagram", addr)
				}
			}
		})
	}
}

func TestProbeUDP(t *testing.T) {
	short := 200 * time.Millisecond
	// A DNS-like binary exchange: bytes above 0x7f, and NULs.
	query := "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04name\x04test\x00\x00\x01\x00\x01"
	reply := "\x12\x34\x85\x80\x00\x01\x00\x01\x00\x00\x00\x00"
	runUDPProbeCases(t, "127.0.0.1", []udpProbeCase{
		{
			name:   "expect ok",
			answer: udpAnswer("PING", "PONG extra"),
			hc:     HealthCheck{Send: "PING", Expect: "PONG"},
		},
		{
			name:   "expect exact",
			answer: udpAnswer("PING", "PONG"),
			hc:     HealthCheck{Send: "PING", Expect: "PONG"},
		},
		{
			name:   "binary payload",
			answer: udpAnswer(query, reply),
			hc:     HealthCheck{Send: query, Expect: "\x12\x34\x85\x80"},
		},
		{
			name:   "wrong reply",
			answer: udpAnswer("PING", "ERR x"),
			hc:     HealthCheck{Send: "PING", Expect: "PONG"},
			want:   `expect "PONG": got "ERR x"`,
		},
		{
			name:   "wrong binary reply",
			answer: udpAnswer(query, "\x12\x34\x85\x83"), // rcode 3, NXDOMAIN
			hc:     HealthCheck{Send: query, Expect: "\x12\x34\x85\x80"},
			want:   `expect "\x124\x85\x80": got "\x124\x85\x83"`,
		},
		{
			name:   "short reply",
			answer: udpAnswer("PING", "PO"),
			hc:     HealthCheck{Send: "PING", Expect: "PONG"},
			want:   `expect "PONG": got "PO"`,
		},
		{
			name:   "empty reply",
			answer: udpAnswer("PING", ""),
			hc:     HealthCheck{Send: "PING", Expect: "PONG"},
			want:   `expect "PONG": got ""`,
		},
		{
			name:   "long mismatch is cut",
			answer: udpAnswer("PING", strings.Repeat("a", 100)),
			hc:     HealthCheck{Send: "PING", Expect: strings.Repeat("a", 80) + "b"},
			want: fmt.Sprintf(`expect %q...: got %q... (differs at byte 80)`,
				strings.Repeat("a", 64), strings.Repeat("a", 64)),
		},
		{
			name:    "no reply: timeout",
			answer:  silent,
			hc:      HealthCheck{Timeout: short, Send: "PING", Expect: "PONG"},
			want:    `expect "PONG": timeout after 200ms`,
			minTook: short,
		},
		{
			name: "port unreachable",
			hc:   HealthCheck{Send: "PING", Expect: "PONG"},
			want: "udp $addr: connection refused (ICMP port unreachable)",
		},
		{
			name:    "no expect, no reply: passes after the timeout",
			answer:  silent,
			hc:      HealthCheck{Timeout: short, Send: "PING"},
			minTook: short,
		},
		{
			name:   "no expect, any reply passes at once",
			answer: udpAnswer("PING", "whatever"),
			hc:     HealthCheck{Timeout: time.Minute, Send: "PING"},
		},
		{
			name: "no expect, port unreachable",
			hc:   HealthCheck{Timeout: time.Minute, Send: "PING"},
			want: "udp $addr: connection refused (ICMP port unreachable)",
		},
		{
			name:      "port override",
			answer:    udpAnswer("PING", "PONG"),
			checkPort: true,
			hc:        HealthCheck{Send: "PING", Expect: "PONG"},
		},
	})
}

func TestProbeUDPIPv6(t *testing.T) {
	if pc, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		pc.Close()
	}
	runUDPProbeCases(t, "::1", []udpProbeCase{
		{name: "expect ok", answer: udpAnswer("PING", "PONG"), hc: HealthCheck{Send: "PING", Expect: "PONG"}},
		{name: "port unreachable", hc: HealthCheck{Send: "PING", Expect: "PONG"}, want: "udp $addr: connection refused (ICMP port unreachable)"},
		{name: "port override", answer: udpAnswer("PING", "PONG"), checkPort: true, hc: HealthCheck{Send: "PING", Expect: "PONG"}},
	})
}

// TestProbeUDPCanceled: a UDP probe whose context ends returns the
// context's error, never a verdict, even without Expect, where a timeout
// passes.
func TestProbeUDPCanceled(t *testing.T) {
	for _, expect := range []string{"PONG", ""} {
		t.Run(fmt.Sprintf("expect %q", expect), func(t *testing.T) {
			srv := startUDPCheckServer(t, "127.0.0.1", silent)
			hc := HealthCheck{Network: HealthUDP, Timeout: time.Minute, Send: "PING", Expect: expect}.WithDefaults()

			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- hc.probe(ctx, srv.addr()) }()
			select {
			case <-srv.got: // the probe has sent, and waits for a reply
			case <-time.After(probeWithin):
				t.Fatal("the probe sent nothing")
			}
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("probe(%s) = %v, want context.Canceled", srv.addr(), err)
				}
			case <-time.After(probeWithin):
				t.Fatalf("probe(%s) still running %v after cancel", srv.addr(), probeWithin)
			}

			// A context that ends before Timeout stops the probe then.
			ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			if err := hc.probe(ctx, srv.addr()); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("probe(ctx with deadline, %s) = %v, want context.DeadlineExceeded", srv.addr(), err)
			}
		})
	}
}

func TestProbeUDPBadAddr(t *testing.T) {
	hc := HealthCheck{Network: HealthUDP, Send: "x"}.WithDefaults()
	if err, want := hc.probe(t.Context(), "no-port"), "udp no-port: missing port in address"; err == nil || err.Error() != want {
		t.Errorf("probe(no-port) = %v, want %s", err, want)
	}
}

func TestHealthCheckValidateUDP(t *testing.T) {
	tests := []struct {
		name string
		set  func(*HealthCheck) // changes a defaulted HealthCheck
		want string             // the error, exactly; "" for valid
	}{
		{"tcp", func(h *HealthCheck) { h.Network = "tcp" }, ""},
		{"udp", func(h *HealthCheck) { h.Network, h.Send, h.Expect = "udp", "PING", "PONG" }, ""},
		{"udp without expect", func(h *HealthCheck) { h.Network, h.Send = "udp", "PING" }, ""},
		{"udp with port", func(h *HealthCheck) { h.Network, h.Send, h.Port = "udp", "PING", 53 }, ""},
		{"udp largest send", func(h *HealthCheck) { h.Network, h.Send = "udp", strings.Repeat("x", 65507) }, ""},
		{"unknown network", func(h *HealthCheck) { h.Network = "sctp" }, `health check: network "sctp": must be tcp or udp`},
		{"upper case", func(h *HealthCheck) { h.Network = "UDP" }, `health check: network "UDP": must be tcp or udp`},
		{"udp without send", func(h *HealthCheck) { h.Network, h.Expect = "udp", "PONG" },
			"health check: network udp: send must not be empty (a UDP check learns nothing without a datagram to send)"},
		{"udp with http", func(h *HealthCheck) { h.Network, h.HTTP = "udp", &HTTPCheck{Path: "/"} },
			"health check: network udp cannot be combined with http (an HTTP check connects over TCP)"},
		{"udp send too long", func(h *HealthCheck) { h.Network, h.Send = "udp", strings.Repeat("x", 65508) },
			"health check: network udp: send of 65508 bytes: must be at most 65507 (one datagram)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := HealthCheck{}.WithDefaults()
			tt.set(&hc)
			err := hc.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("Validate() = %v, want %s", err, tt.want)
			}
		})
	}
	// A pool refuses a bad check.
	p := NewPool("udp", nil)
	defer p.Close()
	if err := p.SetOptions(PoolOptions{Health: &HealthCheck{Network: HealthUDP}}); err == nil || !strings.Contains(err.Error(), "send must not be empty") {
		t.Errorf("SetOptions(udp check without send) = %v, want the send error", err)
	}
}

func TestHealthCheckStringUDP(t *testing.T) {
	tests := []struct {
		hc   *HealthCheck
		want string
	}{
		{&HealthCheck{Network: "tcp"}, "tcp"},
		{&HealthCheck{Network: "tcp", Send: "a", Expect: "b"}, "send/expect"},
		{&HealthCheck{Network: "udp", Send: "PING", Expect: "PONG"}, "udp send/expect"},
		{&HealthCheck{Network: "udp", Send: "PING"}, "udp send"},
	}
	for _, tt := range tests {
		if got := tt.hc.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.hc, got, tt.want)
		}
	}
}

// TestActiveCheckUDP: a UDP backend checked with a UDP send/expect goes
// down when its server stops answering (the checks time out), comes back
// up when it answers again, and goes down again, with an ICMP port
// unreachable as its reason, when its socket is closed.
func TestActiveCheckUDP(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	var probes atomic.Int64
	srv := startUDPCheckServer(t, "127.0.0.1", func(req string) (string, bool) {
		if req != "PING" {
			return "BAD REQUEST", true
		}
		probes.Add(1)
		return "PONG", healthy.Load()
	})
	other := startUDPCheckServer(t, "127.0.0.1", udpAnswer("PING", "PONG"))
	checked := srv.addr()
	hc := &HealthCheck{Network: HealthUDP, Interval: 10 * time.Millisecond, Timeout: 100 * time.Millisecond,
		Rise: 2, Fall: 2, Send: "PING", Expect: "PONG"}
	p, logs := newTestPool(t, PoolOptions{Health: hc}, checked, other.addr())

	waitFor(t, "a first passing check", func() bool { return probes.Load() >= 1 && p.Backend(checked).checkedState() })
	if got := stateOf(p, checked); got != StateUp {
		t.Fatalf("state after a passing check = %v, want up", got)
	}
	healthy.Store(false)
	waitFor(t, "the silent backend to go down", func() bool { return stateOf(p, checked) == StateDown })
	if r, want := p.Backend(checked).State().Reason, `check failed: expect "PONG": timeout after 100ms`; r != want {
		t.Errorf("reason = %q, want %q", r, want)
	}
	down := logs.records("backend down")
	if len(down) != 1 || down[0]["backend"] != checked || down[0]["check"] != "udp send/expect" || down[0]["failures"] != float64(2) {
		t.Fatalf("backend down log = %v, want one record of %s, check udp send/expect, failures 2 (fall)", down, checked)
	}
	if got := p.Available(); len(got) != 1 || got[0].Addr() != other.addr() {
		t.Fatalf("Available() = %v while %s is down, want just %s", got, checked, other.addr())
	}

	healthy.Store(true)
	waitFor(t, "the backend to come back up", func() bool { return stateOf(p, checked) == StateUp })
	if up := logs.records("backend up"); len(up) != 1 || up[0]["successes"] != float64(2) {
		t.Fatalf("backend up log = %v, want one record with successes 2 (rise)", up)
	}

	srv.close()
	waitFor(t, "the closed backend to go down", func() bool { return stateOf(p, checked) == StateDown })
	if r, want := p.Backend(checked).State().Reason, "check failed: udp "+checked+": connection refused (ICMP port unreachable)"; r != want {
		t.Errorf("reason = %q, want %q", r, want)
	}
	if st := stateOf(p, other.addr()); st != StateUp {
		t.Errorf("the other backend is %v, want up", st)
	}
}
