package admin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tcplb/tcplb"
)

// rejectLabels maps the ends counted by tcplb.BalancerStats.Rejected to the
// names the metrics and the JSON API give them.
var rejectLabels = []struct {
	end   tcplb.End
	label string
}{
	{tcplb.EndNoBackend, "no_backend"},
	{tcplb.EndFull, "backends_full"},
	{tcplb.EndConnectFailed, "connect_failed"},
	{tcplb.EndListenerFull, "listener_full"},
	{tcplb.EndBadProxy, "proxy_header"},
	{tcplb.EndDenied, "denied"},
	{tcplb.EndSourceLimit, "source_conns"},
	{tcplb.EndRateLimited, "source_rate"},
	{tcplb.EndNoRoute, "sni"},
}

// states are the backend states that tcplb_backend_state reports, one
// series each.
var states = []tcplb.State{tcplb.StateUp, tcplb.StateDown, tcplb.StateDraining, tcplb.StateEjected}

// collector is a prometheus.Collector that reads the balancers' and the
// backends' counters at scrape time, so the data path does nothing for
// metrics. It is safe for concurrent use: every value it reads is an atomic
// load or a copy taken under the library's locks.
type collector struct {
	listeners []Listener
	pools     []Pool
	udpPools  map[string]bool // the pools UDP listeners serve, by name

	accepted, active, rejected, duration, proxyErrors *prometheus.Desc

	loopAccepted *prometheus.Desc

	udpDatagrams, udpBytes, udpActive, udpTotal, udpDropped, udpDuration *prometheus.Desc

	backendTotal, backendActive, backendUp, backendErrors, backendBytes,
	backendWeight, backendState, backendConnect, backendDatagrams *prometheus.Desc
}

func newCollector(listeners []Listener, pools []Pool) *collector {
	l := []string{"listener"}
	b := []string{"pool", "backend"}
	return &collector{
		listeners: listeners,
		pools:     pools,
		udpPools:  udpPools(listeners),

		accepted: prometheus.NewDesc("tcplb_connections_total",
			"Client connections accepted by the listener.", l, nil),
		active: prometheus.NewDesc("tcplb_active_connections",
			"Client connections the listener is serving now.", l, nil),
		rejected: prometheus.NewDesc("tcplb_rejected_connections_total",
			"Accepted connections closed without reaching a backend, by reason: no_backend (none available), backends_full (all at max_conns), connect_failed (every dial failed), listener_full (the listener's max_conns), proxy_header (bad or missing PROXY header, see tcplb_proxy_header_errors_total), denied (allow/deny), source_conns (max_conns_per_source), source_rate (rate_per_source), sni (no SNI route, with sni_fallback close).",
			[]string{"listener", "reason"}, nil),
		proxyErrors: prometheus.NewDesc("tcplb_proxy_header_errors_total",
			"PROXY protocol headers refused, by reason: not_proxy (a trusted upstream sent none), malformed, too_long, truncated, bad_version, bad_command, bad_family, bad_tlv, timeout, untrusted (a header from a peer not trusted).",
			[]string{"listener", "reason"}, nil),
		duration: prometheus.NewDesc("tcplb_connection_duration_seconds",
			"Lifetime of the connections that reached a backend, from accept to close.", l, nil),

		udpDatagrams: prometheus.NewDesc("tcplb_udp_datagrams_total",
			"Datagrams a UDP listener forwarded, by direction: in = from clients to backends, out = replies to clients.",
			[]string{"listener", "direction"}, nil),
		udpBytes: prometheus.NewDesc("tcplb_udp_bytes_total",
			"Payload bytes a UDP listener forwarded, by direction as tcplb_udp_datagrams_total.",
			[]string{"listener", "direction"}, nil),
		udpActive: prometheus.NewDesc("tcplb_udp_active_sessions",
			"UDP sessions (client addresses with a backend) the listener holds now.", l, nil),
		udpTotal: prometheus.NewDesc("tcplb_udp_sessions_total",
			"UDP sessions the listener opened.", l, nil),
		udpDuration: prometheus.NewDesc("tcplb_udp_session_duration_seconds",
			"Lifetime of the UDP sessions that ended, from their first datagram to their end.", l, nil),
		udpDropped: prometheus.NewDesc("tcplb_udp_dropped_datagrams_total",
			"Client datagrams a UDP listener dropped, by reason: no_backend (none available), max_sessions, too_large (over max_datagram), denied (allow/deny), send_failed (the send to the backend failed), source_sessions (max_sessions_per_source), rate (rate_per_source).",
			[]string{"listener", "reason"}, nil),

		loopAccepted: prometheus.NewDesc("tcplb_event_loop_connections_total",
			"Client connections accepted by each event loop (engine epoll), by loop index: how the loops share the work.",
			[]string{"loop"}, nil),

		backendTotal: prometheus.NewDesc("tcplb_backend_connections_total",
			"Connections established to the backend.", b, nil),
		backendActive: prometheus.NewDesc("tcplb_backend_active_connections",
			"Connections open to the backend now.", b, nil),
		backendUp: prometheus.NewDesc("tcplb_backend_up",
			"1 if the backend is up (takes new connections), else 0.", b, nil),
		backendErrors: prometheus.NewDesc("tcplb_backend_connect_errors_total",
			"Dials to the backend that failed or timed out.", b, nil),
		backendBytes: prometheus.NewDesc("tcplb_backend_bytes_total",
			"Bytes forwarded, by direction: in = read from the backend, out = written to it. Added when a direction finishes or pauses.",
			[]string{"pool", "backend", "direction"}, nil),
		backendWeight: prometheus.NewDesc("tcplb_backend_weight",
			"The backend's weight, 1 to 256.", b, nil),
		backendState: prometheus.NewDesc("tcplb_backend_state",
			"1 for the backend's current state (up, down, draining, ejected), 0 for the others.",
			[]string{"pool", "backend", "state"}, nil),
		backendConnect: prometheus.NewDesc("tcplb_backend_connect_seconds",
			"Time taken by the successful dials to the backend.", b, nil),
		backendDatagrams: prometheus.NewDesc("tcplb_backend_datagrams_total",
			"Datagrams UDP sessions passed through the backend, by direction as tcplb_backend_bytes_total: in = replies read from the backend, out = datagrams written to it. Only for the backends of pools that UDP listeners serve.",
			[]string{"pool", "backend", "direction"}, nil),
	}
}

// udpPools returns the names of the pools that the UDP listeners serve.
func udpPools(listeners []Listener) map[string]bool {
	m := map[string]bool{}
	for _, l := range listeners {
		if l.UDP != nil {
			m[l.Pool] = true
		}
	}
	return m
}

func (c *collector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{
		c.accepted, c.active, c.rejected, c.duration, c.proxyErrors, c.loopAccepted,
		c.udpDatagrams, c.udpBytes, c.udpActive, c.udpTotal, c.udpDropped, c.udpDuration,
		c.backendTotal, c.backendActive, c.backendUp, c.backendErrors, c.backendBytes,
		c.backendWeight, c.backendState, c.backendConnect, c.backendDatagrams,
	}
}

// Describe sends the descriptors of every metric Collect makes.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

// Collect sends the current values.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	for _, l := range c.listeners {
		if l.UDP != nil {
			s := l.UDP.Stats()
			ch <- prometheus.MustNewConstMetric(c.udpDatagrams, counter, float64(s.DatagramsIn), l.Name, "in")
			ch <- prometheus.MustNewConstMetric(c.udpDatagrams, counter, float64(s.DatagramsOut), l.Name, "out")
			ch <- prometheus.MustNewConstMetric(c.udpBytes, counter, float64(s.BytesIn), l.Name, "in")
			ch <- prometheus.MustNewConstMetric(c.udpBytes, counter, float64(s.BytesOut), l.Name, "out")
			ch <- prometheus.MustNewConstMetric(c.udpActive, gauge, float64(s.Active), l.Name)
			ch <- prometheus.MustNewConstMetric(c.udpTotal, counter, float64(s.Total), l.Name)
			ch <- constHistogram(c.udpDuration, s.Durations, l.Name)
			for _, reason := range tcplb.UDPDropReasons {
				ch <- prometheus.MustNewConstMetric(c.udpDropped, counter, float64(s.Dropped[reason]), l.Name, reason)
			}
			continue
		}
		s := l.Balancer.Stats()
		ch <- prometheus.MustNewConstMetric(c.accepted, counter, float64(s.Accepted), l.Name)
		ch <- prometheus.MustNewConstMetric(c.active, gauge, float64(s.Active), l.Name)
		for _, r := range rejectLabels {
			ch <- prometheus.MustNewConstMetric(c.rejected, counter, float64(s.Rejected[r.end]), l.Name, r.label)
		}
		ch <- constHistogram(c.duration, s.Durations, l.Name)
		for reason, n := range s.ProxyErrors {
			ch <- prometheus.MustNewConstMetric(c.proxyErrors, counter, float64(n), l.Name, reason)
		}
	}
	for i, n := range tcplb.EventLoopConnections() {
		ch <- prometheus.MustNewConstMetric(c.loopAccepted, counter, float64(n), strconv.Itoa(i))
	}
	for _, p := range c.pools {
		pool := p.Pool.Name()
		for _, b := range p.Pool.Backends() {
			addr := b.Addr()
			s, st := b.Stats(), b.State().State
			ch <- prometheus.MustNewConstMetric(c.backendTotal, counter, float64(s.Total), pool, addr)
			ch <- prometheus.MustNewConstMetric(c.backendActive, gauge, float64(s.Active), pool, addr)
			ch <- prometheus.MustNewConstMetric(c.backendUp, gauge, boolValue(st == tcplb.StateUp), pool, addr)
			ch <- prometheus.MustNewConstMetric(c.backendErrors, counter, float64(s.ConnectErrors), pool, addr)
			ch <- prometheus.MustNewConstMetric(c.backendBytes, counter, float64(s.BytesIn), pool, addr, "in")
			ch <- prometheus.MustNewConstMetric(c.backendBytes, counter, float64(s.BytesOut), pool, addr, "out")
			ch <- prometheus.MustNewConstMetric(c.backendWeight, gauge, float64(b.Weight()), pool, addr)
			for _, x := range states {
				ch <- prometheus.MustNewConstMetric(c.backendState, gauge, boolValue(st == x), pool, addr, x.String())
			}
			ch <- constHistogram(c.backendConnect, b.ConnectTimes(), pool, addr)
			if c.udpPools[pool] {
				in, out := b.Datagrams()
				ch <- prometheus.MustNewConstMetric(c.backendDatagrams, counter, float64(in), pool, addr, "in")
				ch <- prometheus.MustNewConstMetric(c.backendDatagrams, counter, float64(out), pool, addr, "out")
			}
		}
	}
}

// constHistogram converts a library histogram to a Prometheus one, in
// seconds.
func constHistogram(d *prometheus.Desc, h tcplb.HistogramSnapshot, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, bound := range h.Bounds {
		buckets[bound.Seconds()] = h.Buckets[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets, labels...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
