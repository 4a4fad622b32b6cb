package admin

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tcplb/tcplb"
)

// udpListener serves a UDPBalancer on loopback in front of a UDP echo
// server, passes two datagrams each way through it from one client, and
// returns it.
func udpListener(t *testing.T) *tcplb.UDPBalancer {
	t.Helper()
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	b, err := tcplb.NewBackend(echo.LocalAddr().String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	u := &tcplb.UDPBalancer{Name: "dns", Pool: tcplb.NewPool("dns", nil, b), MaxDatagram: 100}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go u.Serve(pc)
	t.Cleanup(func() { u.Close() })
	c, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for _, msg := range []string{"hello", "again"} {
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != msg {
			t.Fatalf("through the UDP balancer: %q, %v", buf[:n], err)
		}
	}
	c.Write(make([]byte, 101)) // over MaxDatagram: dropped, too_large
	// (A reply is counted just after it is sent: wait for the count.)
	waitFor(t, "the too_large drop and the replies' count", func() bool {
		s := u.Stats()
		return s.Dropped["too_large"] == 1 && s.DatagramsOut == 2
	})
	return u
}

// TestUDPListenerMetricsAndAPI: a UDP listener's sessions, datagrams,
// bytes and drops are in /metrics and in the pools answer, marked udp.
func TestUDPListenerMetricsAndAPI(t *testing.T) {
	u := udpListener(t)
	h := New(Config{Listeners: []Listener{{Name: "dns", Pool: "dns", UDP: u}}, Pools: []Pool{{Pool: u.Pool, Strategy: "round-robin"}}})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`tcplb_udp_datagrams_total{direction="in",listener="dns"} 2`,
		`tcplb_udp_datagrams_total{direction="out",listener="dns"} 2`,
		`tcplb_udp_bytes_total{direction="in",listener="dns"} 10`,
		`tcplb_udp_bytes_total{direction="out",listener="dns"} 10`,
		`tcplb_udp_active_sessions{listener="dns"} 1`,
		`tcplb_udp_sessions_total{listener="dns"} 1`,
		`tcplb_udp_dropped_datagrams_total{listener="dns",reason="too_large"} 1`,
		`tcplb_udp_dropped_datagrams_total{listener="dns",reason="max_sessions"} 0`,
		`tcplb_backend_active_connections{backend="` + u.Pool.Backends()[0].Addr() + `",pool="dns"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/pools", nil))
	var reply struct{ Listeners []map[string]any }
	if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.Listeners) != 1 {
		t.Fatalf("listeners = %v, want the UDP one", reply.Listeners)
	}
	l := reply.Listeners[0]
	for k, want := range map[string]any{"name": "dns", "protocol": "udp", "active": 1.0, "accepted": 1.0,
		"datagrams_in": 2.0, "datagrams_out": 2.0, "bytes_in": 10.0, "bytes_out": 10.0} {
		if l[k] != want {
			t.Errorf("listener %s = %v, want %v (%v)", k, l[k], want, l)
		}
	}
	if r, _ := l["rejected"].(map[string]any); r["too_large"] != 1.0 {
		t.Errorf("listener rejected = %v, want too_large 1", l["rejected"])
	}
	// Connections lists TCP connections only: it must not trip on a UDP
	// listener.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/connections", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"count": 0`) {
		t.Errorf("connections with a UDP listener = %d %s, want 200 and none", rec.Code, rec.Body)
	}
}
