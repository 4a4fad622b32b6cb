package admin

import (
	"bytes"
	"maps"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tcplb/tcplb"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	for range 3 {
		e.exchange("hello")
	}
	// With both backends drained, a client is closed at once: no_backend.
	for _, b := range []*tcplb.Backend{e.b1, e.b2} {
		if err := e.pool.Drain(b.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	c, err := net.DialTimeout("tcp", e.lbAddr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("a client with every backend drained read %d bytes, want the connection closed", n)
	}
	c.Close()
	e.waitIdle()
	if err := e.pool.Enable(e.b1.Addr()); err != nil {
		t.Fatal(err)
	}

	status, resp := e.do("GET", "/metrics", "")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", status, e.lastBody)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(e.lastBody))
	if err != nil {
		t.Fatalf("parsing the metrics: %v\n%s", err, e.lastBody)
	}
	m := metrics{t, families}

	main := map[string]string{"listener": "main"}
	m.want("tcplb_connections_total", dto.MetricType_COUNTER, main, 4)
	m.want("tcplb_active_connections", dto.MetricType_GAUGE, main, 0)
	for reason, n := range map[string]float64{"no_backend": 1, "backends_full": 0, "connect_failed": 0} {
		m.want("tcplb_rejected_connections_total", dto.MetricType_COUNTER, map[string]string{"listener": "main", "reason": reason}, n)
	}
	if h := m.histogram("tcplb_connection_duration_seconds", main); !histogramOK(h, 3, 0.001, 3600, 8) {
		t.Errorf("tcplb_connection_duration_seconds = %v, want 3 in 8 buckets from 1ms to 1h", h)
	}

	var total float64
	for _, b := range []*tcplb.Backend{e.b1, e.b2} {
		s := b.Stats()
		if s.Total == 0 || s.BytesIn != 5*s.Total || s.BytesOut != 5*s.Total {
			t.Errorf("%s: Stats() = %+v, want 5 bytes each way per connection", b.Addr(), s)
		}
		total += float64(s.Total)
		l := map[string]string{"pool": "app", "backend": b.Addr()}
		m.want("tcplb_backend_connections_total", dto.MetricType_COUNTER, l, float64(s.Total))
		m.want("tcplb_backend_active_connections", dto.MetricType_GAUGE, l, 0)
		m.want("tcplb_backend_connect_errors_total", dto.MetricType_COUNTER, l, 0)
		m.want("tcplb_backend_weight", dto.MetricType_GAUGE, l, 1)
		m.want("tcplb_backend_bytes_total", dto.MetricType_COUNTER, with(l, "direction", "in"), float64(s.BytesIn))
		m.want("tcplb_backend_bytes_total", dto.MetricType_COUNTER, with(l, "direction", "out"), float64(s.BytesOut))
		if h := m.histogram("tcplb_backend_connect_seconds", l); !histogramOK(h, s.Total, 0.0001, 10, 16) {
			t.Errorf("%s: tcplb_backend_connect_seconds = %v, want %d dials in 16 buckets from 100µs to 10s", b.Addr(), h, s.Total)
		}
	}
	if total != 3 {
		t.Errorf("backend connections = %v, want 3", total)
	}
	// b1 is up again, b2 still draining.
	for b, state := range map[string]string{e.b1.Addr(): "up", e.b2.Addr(): "draining", v6Addr: "up"} {
		pool := "app"
		if b == v6Addr {
			pool = "v6"
		}
		l := map[string]string{"pool": pool, "backend": b}
		up := 0.0
		if state == "up" {
			up = 1
		}
		m.want("tcplb_backend_up", dto.MetricType_GAUGE, l, up)
		for _, s := range []string{"up", "down", "draining", "ejected"} {
			v := 0.0
			if s == state {
				v = 1
			}
			m.want("tcplb_backend_state", dto.MetricType_GAUGE, with(l, "state", s), v)
		}
	}

	// The event loops are the process's: this test's 4 connections are
	// among what they accepted, one series per loop.
	if loops := tcplb.EventLoopConnections(); loops != nil {
		var sum float64
		series := families["tcplb_event_loop_connections_total"].GetMetric()
		for _, s := range series {
			sum += s.GetCounter().GetValue()
		}
		if len(series) != len(loops) || sum < 4 {
			t.Errorf("tcplb_event_loop_connections_total: %d series summing to %v, want %d (one per loop) summing to at least 4", len(series), sum, len(loops))
		}
	}

	for name, f := range families {
		if strings.HasPrefix(name, "tcplb_") && f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}
	if _, ok := families["go_goroutines"]; !ok {
		t.Error("no go_goroutines")
	}
	process := false
	for name := range families {
		process = process || strings.HasPrefix(name, "process_")
	}
	if !process {
		t.Error("no process_ metrics")
	}
}

// TestCollectorDescribe checks, with a pedantic registry, that Describe
// announces every metric Collect makes and that the metrics are
// consistent.
func TestCollectorDescribe(t *testing.T) {
	e := newEnv(t, nil)
	e.exchange("x")
	reg := prometheus.NewPedanticRegistry()
	u := udpListener(t)
	c := newCollector([]Listener{{Name: "main", Pool: "app", Balancer: e.lb}, {Name: "dns", Pool: "dns", UDP: u}},
		[]Pool{{Pool: e.pool, Strategy: "round-robin"}, {Pool: e.v6, Strategy: "round-robin"}, {Pool: u.Pool}})
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	ch := make(chan *prometheus.Desc, 100)
	c.Describe(ch)
	close(ch)
	want := 20
	if tcplb.EventLoopConnections() != nil {
		want++ // tcplb_event_loop_connections_total, with the event loops running
	}
	if len(ch) != 21 || len(families) != want {
		t.Errorf("Describe sent %d descs, Gather found %d families; want 21 and %d", len(ch), len(families), want)
	}
}

// metrics looks up parsed metric families.
type metrics struct {
	t        *testing.T
	families map[string]*dto.MetricFamily
}

// find returns the metric of family name with exactly the labels, or nil.
func (m metrics) find(name string, typ dto.MetricType, labels map[string]string) *dto.Metric {
	m.t.Helper()
	f, ok := m.families[name]
	if !ok {
		m.t.Errorf("no metric %s", name)
		return nil
	}
	if f.GetType() != typ {
		m.t.Errorf("%s is a %v, want %v", name, f.GetType(), typ)
	}
next:
	for _, metric := range f.Metric {
		if len(metric.Label) != len(labels) {
			continue
		}
		for _, l := range metric.Label {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		return metric
	}
	m.t.Errorf("no %s%v", name, labels)
	return nil
}

// want checks the value of a counter or gauge.
func (m metrics) want(name string, typ dto.MetricType, labels map[string]string, value float64) {
	m.t.Helper()
	metric := m.find(name, typ, labels)
	if metric == nil {
		return
	}
	var got float64
	if typ == dto.MetricType_COUNTER {
		got = metric.GetCounter().GetValue()
	} else {
		got = metric.GetGauge().GetValue()
	}
	if got != value {
		m.t.Errorf("%s%v = %v, want %v", name, labels, got, value)
	}
}

func (m metrics) histogram(name string, labels map[string]string) *dto.Histogram {
	m.t.Helper()
	return m.find(name, dto.MetricType_HISTOGRAM, labels).GetHistogram()
}

// histogramOK reports whether h holds count observations with a positive
// sum, in n buckets from first to last seconds plus +Inf.
func histogramOK(h *dto.Histogram, count uint64, first, last float64, n int) bool {
	b := h.GetBucket()
	return h.GetSampleCount() == count && h.GetSampleSum() > 0 && len(b) == n+1 &&
		b[0].GetUpperBound() == first && b[n-1].GetUpperBound() == last &&
		math.IsInf(b[n].GetUpperBound(), 1) && b[n].GetCumulativeCount() == count
}

// with returns a copy of labels plus name=value.
func with(labels map[string]string, name, value string) map[string]string {
	out := maps.Clone(labels)
	out[name] = value
	return out
}
