package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tcplb/tcplb"
)

// udpListener serves a UDPBalancer on loopback in front of a UDP echo
// server, passes two datagrams each way through it from one client, and
// returns it.
func udpListener(t *testing.T) *tcplb.UDPBalancer {
	t.Helper()
	u := &tcplb.UDPBalancer{Name: "dns", Pool: tcplb.NewPool("dns", nil, newBackend(t, udpEcho(t))), MaxDatagram: 100}
	c := serveUDP(t, u)
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

// udpEcho starts a UDP echo server on loopback and returns its address.
func udpEcho(t *testing.T) string {
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
	return echo.LocalAddr().String()
}

// serveUDP serves u on a loopback socket until the test ends and returns
// a client socket connected to it.
func serveUDP(t *testing.T, u *tcplb.UDPBalancer) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- u.Serve(pc) }()
	t.Cleanup(func() {
		u.Close()
		if err := <-served; !errors.Is(err, tcplb.ErrUDPBalancerClosed) {
			t.Errorf("Serve = %v, want ErrUDPBalancerClosed", err)
		}
	})
	c, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
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
	// Connections lists the open UDP session, with its datagrams.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/connections", nil))
	var conns struct {
		Connections []map[string]any
		Count       int
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &conns); err != nil || rec.Code != 200 {
		t.Fatalf("connections = %d %s (%v)", rec.Code, rec.Body, err)
	}
	if conns.Count != 1 {
		t.Fatalf("connections = %s, want the one UDP session", rec.Body)
	}
	c := conns.Connections[0]
	for k, want := range map[string]any{"listener": "dns", "protocol": "udp", "pool": "dns",
		"backend": u.Pool.Backends()[0].Addr(), "client_datagrams": 2.0, "backend_datagrams": 2.0,
		"client_bytes": 10.0, "backend_bytes": 10.0} {
		if c[k] != want {
			t.Errorf("session %s = %v, want %v (%v)", k, c[k], want, c)
		}
	}
	if c["client"] == "" || c["age_seconds"].(float64) < 0 {
		t.Errorf("session %v: want its client and age", c)
	}
}

// TestUDPBackendsAndProtocols: beside a TCP listener, two UDP listeners:
// "dns" with traffic and "once" (Responses 1), whose ended sessions fill
// the session duration histogram; and "idle", one no datagram reached. The
// backends of the UDP pools have their datagrams in /metrics and in the
// API; the TCP pool's have none; the API marks each listener's protocol
// and gives a UDP listener's counters even at 0.
func TestUDPBackendsAndProtocols(t *testing.T) {
	dns := udpListener(t)
	once := &tcplb.UDPBalancer{Name: "once", Pool: tcplb.NewPool("once", nil, newBackend(t, udpEcho(t))), Responses: 1}
	c := serveUDP(t, once)
	buf := make([]byte, 100)
	for i := range 3 {
		c.Write([]byte("q"))
		c.SetReadDeadline(time.Now().Add(testTimeout))
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "q" {
			t.Fatalf("query %d through the UDP balancer: %q, %v", i, buf[:n], err)
		}
		waitFor(t, "the session to end after its reply", func() bool { return once.Stats().Active == 0 })
	}
	idle := &tcplb.UDPBalancer{Name: "idle", Pool: tcplb.NewPool("idlepool", nil, newBackend(t, udpEcho(t)))}
	serveUDP(t, idle)

	e := newEnv(t, func(c *Config) {
		c.Listeners = append(c.Listeners,
			Listener{Name: "dns", Pool: "dns", UDP: dns},
			Listener{Name: "once", Pool: "once", UDP: once},
			Listener{Name: "idle", Pool: "idlepool", UDP: idle})
		c.Pools = append(c.Pools, Pool{Pool: dns.Pool}, Pool{Pool: once.Pool}, Pool{Pool: idle.Pool})
	})
	e.exchange("hello")

	if status, _ := e.do("GET", "/metrics", ""); status != 200 {
		t.Fatalf("GET /metrics = %d %s", status, e.lastBody)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(e.lastBody))
	if err != nil {
		t.Fatalf("parsing the metrics: %v", err)
	}
	m := metrics{t, families}
	for pool, want := range map[*tcplb.Pool]float64{dns.Pool: 2, once.Pool: 3, idle.Pool: 0} {
		l := map[string]string{"pool": pool.Name(), "backend": pool.Backends()[0].Addr()}
		m.want("tcplb_backend_datagrams_total", dto.MetricType_COUNTER, with(l, "direction", "in"), want)
		m.want("tcplb_backend_datagrams_total", dto.MetricType_COUNTER, with(l, "direction", "out"), want)
	}
	if n := len(families["tcplb_backend_datagrams_total"].GetMetric()); n != 6 {
		t.Errorf("tcplb_backend_datagrams_total has %d series, want 6: the UDP pools' backends only", n)
	}
	if h := m.histogram("tcplb_udp_session_duration_seconds", map[string]string{"listener": "once"}); !histogramOK(h, 3, 0.001, 3600, 8) {
		t.Errorf("once: tcplb_udp_session_duration_seconds = %v, want 3 sessions in 8 buckets from 1ms to 1h", h)
	}
	if h := m.histogram("tcplb_udp_session_duration_seconds", map[string]string{"listener": "dns"}); h.GetSampleCount() != 0 {
		t.Errorf("dns: tcplb_udp_session_duration_seconds counts %d sessions, want 0: its session is open", h.GetSampleCount())
	}
	for _, r := range tcplb.UDPDropReasons {
		m.want("tcplb_udp_dropped_datagrams_total", dto.MetricType_COUNTER, map[string]string{"listener": "idle", "reason": r}, 0)
	}
	if _, ok := families["tcplb_udp_sessions_total"]; !ok {
		t.Fatal("no tcplb_udp_sessions_total")
	}
	for _, s := range families["tcplb_udp_sessions_total"].GetMetric() {
		if s.GetLabel()[0].GetValue() == "main" {
			t.Error("the TCP listener main has UDP series")
		}
	}

	var reply struct {
		Listeners []map[string]any
		Pools     []struct {
			Name     string
			Backends []map[string]any
		}
	}
	if status, _ := e.do("GET", "/api/v1/pools", ""); status != 200 {
		t.Fatalf("GET /api/v1/pools = %d %s", status, e.lastBody)
	}
	if err := json.Unmarshal(e.lastBody, &reply); err != nil {
		t.Fatal(err)
	}
	protocols := map[string]any{}
	for _, l := range reply.Listeners {
		protocols[l["name"].(string)] = l["protocol"]
		_, has := l["datagrams_in"]
		if udp := l["protocol"] == "udp"; has != udp {
			t.Errorf("listener %v: datagrams_in present %v, want it for UDP only", l["name"], has)
		}
	}
	if want := map[string]any{"main": "tcp", "dns": "udp", "once": "udp", "idle": "udp"}; !maps.Equal(protocols, want) {
		t.Errorf("listeners' protocols = %v, want %v", protocols, want)
	}
	if l := reply.Listeners[3]; l["datagrams_in"] != 0.0 || l["bytes_out"] != 0.0 || l["accepted"] != 0.0 {
		t.Errorf("idle listener = %v, want its UDP counters at 0", l)
	}
	for _, p := range reply.Pools {
		want, udp := map[string]float64{"dns": 2, "once": 3, "idlepool": 0}[p.Name]
		for _, b := range p.Backends {
			in, has := b["datagrams_in"]
			if has != udp || (udp && (in != want || b["datagrams_out"] != want)) {
				t.Errorf("pool %s backend %v: datagrams %v in, %v out; want %v each way (and none for a TCP pool)", p.Name, b["addr"], in, b["datagrams_out"], want)
			}
		}
	}
}
