package main

import (
	"fmt"
	"io"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape returns the daemon's metrics, parsed.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	body := get(t, "http://"+admin+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return families
}

// value returns the value of the series of family name with the labels
// (counter, gauge, or a histogram's count), and whether there is one.
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
next:
	for _, m := range families[name].GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestUDPAdminEndToEnd: a daemon with a TCP and a UDP listener and an
// admin listener. Four DNS-like queries (udp_responses 1, one session
// each) through the UDP listener, spread over its two backends, and one
// datagram over max_datagram: /metrics has the listener's datagrams,
// bytes, sessions, ended-session durations and drops by reason, and each
// backend's datagrams; the API lists both listeners with their protocol
// and the UDP counters, and the UDP pool's backends with their datagrams.
func TestUDPAdminEndToEnd(t *testing.T) {
	b1, b2 := startUDPBackend(t, "b1"), startUDPBackend(t, "b2")
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners:
  - {name: web, listen: 127.0.0.1:0, pool: web}
  - {name: dns, protocol: udp, listen: 127.0.0.1:0, pool: resolvers, udp_responses: 1, max_datagram: 100}
pools:
  - {name: web, backends: [%q]}
  - {name: resolvers, strategy: round-robin, backends: [%q, %q]}
`, startEcho(t), b1.addr, b2.addr))
	d := startDaemon(t, "-config", cfg, "-admin", "127.0.0.1:0")
	addrs := map[string]string{}
	for i := range 2 {
		rec := d.waitLog(t, "listening", i+1)
		addrs[rec["listener"].(string)] = rec["addr"].(string)
	}
	admin := d.waitLog(t, "admin listening", 1)["addr"].(string)

	answered := map[string]int{}
	for i := range 4 {
		answered[newUDPClient(t, addrs["dns"]).ask(fmt.Sprint(i))]++ // 1 byte each way, "b1 0" back
	}
	if answered["b1"] != 2 || answered["b2"] != 2 {
		t.Fatalf("queries answered by %v, want 2 each (round robin)", answered)
	}
	newUDPClient(t, addrs["dns"]).send(strings.Repeat("x", 101))
	c := dialT(t, addrs["web"])
	io.WriteString(c, "ping")
	if buf, err := io.ReadAll(io.LimitReader(c, 4)); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the TCP listener = %q, %v", buf, err)
	}
	c.Close()

	// Sessions end, and replies are counted, just after the replies go
	// out: wait for the last ones.
	var m map[string]*dto.MetricFamily
	dns := map[string]string{"listener": "dns"}
	waitFor(t, "4 ended sessions, 4 replies and the drop in /metrics", func() bool {
		m = scrape(t, admin)
		ended, _ := value(m, "tcplb_udp_session_duration_seconds", dns)
		out, _ := value(m, "tcplb_udp_datagrams_total", map[string]string{"listener": "dns", "direction": "out"})
		dropped, _ := value(m, "tcplb_udp_dropped_datagrams_total", map[string]string{"listener": "dns", "reason": "too_large"})
		return ended == 4 && out == 4 && dropped == 1
	})
	for _, w := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tcplb_udp_datagrams_total", map[string]string{"listener": "dns", "direction": "in"}, 4},
		{"tcplb_udp_bytes_total", map[string]string{"listener": "dns", "direction": "in"}, 4},
		{"tcplb_udp_bytes_total", map[string]string{"listener": "dns", "direction": "out"}, 16},
		{"tcplb_udp_sessions_total", dns, 4},
		{"tcplb_udp_active_sessions", dns, 0},
		{"tcplb_udp_dropped_datagrams_total", map[string]string{"listener": "dns", "reason": "no_backend"}, 0},
		{"tcplb_udp_dropped_datagrams_total", map[string]string{"listener": "dns", "reason": "rate"}, 0},
		{"tcplb_backend_datagrams_total", map[string]string{"pool": "resolvers", "backend": b1.addr, "direction": "in"}, 2},
		{"tcplb_backend_datagrams_total", map[string]string{"pool": "resolvers", "backend": b2.addr, "direction": "out"}, 2},
		{"tcplb_backend_bytes_total", map[string]string{"pool": "resolvers", "backend": b1.addr, "direction": "in"}, 8},
		{"tcplb_backend_connections_total", map[string]string{"pool": "resolvers", "backend": b2.addr}, 2},
		{"tcplb_connections_total", map[string]string{"listener": "web"}, 1},
	} {
		if got, ok := value(m, w.name, w.labels); !ok || got != w.want {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.want)
		}
	}
	if n := len(m["tcplb_backend_datagrams_total"].GetMetric()); n != 4 {
		t.Errorf("tcplb_backend_datagrams_total has %d series, want 4: the UDP pool's two backends, each way; none for the TCP pool", n)
	}

	var api struct {
		Listeners []struct {
			Name, Protocol string
			Active         int
			Accepted       uint64
			Rejected       map[string]uint64
			DatagramsIn    *uint64 `json:"datagrams_in"`
			DatagramsOut   *uint64 `json:"datagrams_out"`
			BytesIn        *uint64 `json:"bytes_in"`
			BytesOut       *uint64 `json:"bytes_out"`
		}
		Pools []struct {
			Name     string
			Backends []struct {
				Addr         string
				Total        uint64
				DatagramsIn  *uint64 `json:"datagrams_in"`
				DatagramsOut *uint64 `json:"datagrams_out"`
			}
		}
	}
	getJSON(t, "http://"+admin+"/api/v1/pools", &api)
	if len(api.Listeners) != 2 {
		t.Fatalf("API listeners = %+v, want web and dns", api.Listeners)
	}
	for _, l := range api.Listeners {
		switch l.Name {
		case "web":
			if l.Protocol != "tcp" || l.Accepted != 1 || l.DatagramsIn != nil {
				t.Errorf("API listener web = %+v, want tcp, 1 accepted, no datagram counters", l)
			}
		case "dns":
			if l.Protocol != "udp" || l.Active != 0 || l.Accepted != 4 || l.Rejected["too_large"] != 1 ||
				l.DatagramsIn == nil || *l.DatagramsIn != 4 || *l.DatagramsOut != 4 || *l.BytesIn != 4 || *l.BytesOut != 16 {
				t.Errorf("API listener dns = %+v, want udp, 4 sessions ended, 1 too_large, 4 datagrams in and out, 4 and 16 bytes", l)
			}
		default:
			t.Errorf("API listener %q: not configured", l.Name)
		}
	}
	for _, p := range api.Pools {
		for _, b := range p.Backends {
			if p.Name == "web" {
				if b.DatagramsIn != nil {
					t.Errorf("TCP pool web backend %s has datagrams_in", b.Addr)
				}
				continue
			}
			if b.DatagramsIn == nil || *b.DatagramsIn != 2 || *b.DatagramsOut != 2 || b.Total != 2 {
				t.Errorf("pool %s backend %s: %+v, want 2 sessions and 2 datagrams each way", p.Name, b.Addr, b)
			}
		}
	}
}
