package config

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // the lines of the error, exactly; nil for none
	}{
		{"default", func(c *Config) {}, nil},
		{"name and pool may be empty", func(c *Config) {
			c.Listeners[0].Name = ""
			c.Listeners[0].Pool = ""
		}, nil},
		{"idle and drain may be 0", func(c *Config) {
			c.Timeouts.Idle = 0
			c.Timeouts.Drain = 0
		}, nil},
		{"zero value", func(c *Config) { *c = Config{} }, []string{
			"listeners: at least one listener is required",
			"pools: at least one pool is required",
			`timeouts.connect: "0s": must be greater than 0`,
			`timeouts.proxy_header: "0s": must be greater than 0`,
			`timeouts.client_hello: "0s": must be greater than 0`,
			`timeouts.udp_idle: "0s": must be greater than 0 (a UDP session has no end of its own)`,
		}},
		{"zero strategy, all_down and weight are not defaulted", func(c *Config) {
			c.Pools[0].Strategy = ""
			c.Pools[0].AllDown = ""
			c.Pools[0].Backends[1].Weight = 0
		}, []string{
			`pools[0].strategy: unknown strategy "" (known: hash, least-conn, least-latency, p2c, random, round-robin)`,
			`pools[0].all_down: "": want fail-open or refuse`,
			"pools[0].backends[1].weight: 0: must be between 1 and 256",
		}},
		{"zero passive is off, nil health is off", func(c *Config) {
			c.Pools[0].Passive = Passive{}
			c.Pools[0].Health = nil
		}, nil},
		{"passive off leaves its other fields unchecked", func(c *Config) {
			c.Pools[0].Passive = Passive{MaxFails: 0, FailWindow: -1, Cooldown: -1, MaxCooldown: -2, MaxEjectionPercent: 500}
		}, nil},
		{"checks and limits", func(c *Config) {
			p := &c.Pools[0]
			p.AllDown = "refuse"
			p.SlowStart = time.Minute
			p.Health = &Health{Interval: time.Second, Timeout: 5 * time.Second, Rise: 1, Fall: 1, Port: 65535,
				Send: "PING\r\n", Expect: strings.Repeat("x", MaxExpect)}
			p.Passive = Passive{MaxFails: 1, FailWindow: time.Second, Cooldown: time.Minute, MaxCooldown: time.Minute, MaxEjectionPercent: 100}
			p.Backends[0].MaxConns = 1
			p.Backends[1].MaxConns = 1 << 20
			c.Timeouts.Queue = time.Second
		}, nil},
		{"health timeout 0 and http with any status", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, HTTP: &HTTPHealth{Path: "/"}}
		}, nil},
		{"http with host and status", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, HTTP: &HTTPHealth{Path: "/a%20b?x=1", Host: "app.example:8080", Status: 599}}
		}, nil},
		{"slow start 0 with hash", func(c *Config) {
			c.Pools[0].Strategy = "hash"
			c.Pools[0].SlowStart = 0
		}, nil},
		{"slow start with hash", func(c *Config) {
			c.Pools[0].Strategy = "hash"
			c.Pools[0].SlowStart = 30 * time.Second
		}, []string{
			`pools[0].slow_start: "30s": does not apply to strategy hash: ramping would move clients between backends`,
		}},
		{"zero health is not defaulted", func(c *Config) {
			c.Pools[0].Health = &Health{}
		}, []string{
			`pools[0].health.interval: "0s": must be greater than 0`,
			"pools[0].health.rise: 0: must be at least 1",
			"pools[0].health.fall: 0: must be at least 1",
		}},
		{"zero http is not defaulted", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, HTTP: &HTTPHealth{}}
		}, []string{
			`pools[0].health.http.path: "": must start with "/"`,
		}},
		{"bad checks and limits", func(c *Config) {
			p := &c.Pools[0]
			p.AllDown = "maybe"
			p.SlowStart = -time.Second
			p.Health = &Health{Interval: -time.Second, Timeout: -time.Second, Rise: -1, Fall: 0, Port: -1,
				Send: "PING", Expect: strings.Repeat("x", MaxExpect+1),
				HTTP: &HTTPHealth{Path: "/a b", Host: "a\r\nX: y", Status: 99}}
			p.Passive = Passive{MaxFails: 2, FailWindow: 0, Cooldown: 0, MaxCooldown: -time.Second, MaxEjectionPercent: 0}
			p.Backends[2].MaxConns = -1
			c.Timeouts.Queue = -time.Second
		}, []string{
			`pools[0].all_down: "maybe": want fail-open or refuse`,
			`pools[0].slow_start: "-1s": must not be negative`,
			`pools[0].health.interval: "-1s": must be greater than 0`,
			`pools[0].health.timeout: "-1s": must not be negative (0 means the interval)`,
			"pools[0].health.rise: -1: must be at least 1",
			"pools[0].health.fall: 0: must be at least 1",
			"pools[0].health.port: -1: must be between 1 and 65535, or 0 for the backend's port",
			`pools[0].health.expect: "` + strings.Repeat("x", 61) + `...": 65537 bytes: must be at most 65536`,
			"pools[0].health.http: cannot be combined with send or expect",
			`pools[0].health.http.path: "/a b": must be printable ASCII without spaces`,
			`pools[0].health.http.host: "a\r\nX: y": must be printable ASCII without spaces`,
			"pools[0].health.http.status: 99: must be between 100 and 599, or 0 for any 2xx or 3xx",
			`pools[0].passive.fail_window: "0s": must be greater than 0`,
			`pools[0].passive.cooldown: "0s": must be greater than 0`,
			`pools[0].passive.max_cooldown: "-1s": must be greater than 0`,
			"pools[0].passive.max_ejection_percent: 0: must be between 1 and 100",
			"pools[0].backends[2].max_conns: -1: must not be negative",
			`timeouts.queue: "-1s": must not be negative`,
		}},
		{"negative max_fails", func(c *Config) {
			c.Pools[0].Passive.MaxFails = -1
			c.Pools[0].Passive.Cooldown = 0
		}, []string{
			"pools[0].passive.max_fails: -1: must not be negative (0 disables passive checks)",
		}},
		{"max_cooldown below cooldown", func(c *Config) {
			c.Pools[0].Passive.MaxCooldown = 5 * time.Second
		}, []string{
			`pools[0].passive.max_cooldown: "5s": must be at least cooldown ("10s")`,
		}},
		{"out of range port, status and percent", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, Port: 65536, HTTP: &HTTPHealth{Path: "healthz", Status: 600}}
			c.Pools[0].Passive.MaxEjectionPercent = 101
		}, []string{
			"pools[0].health.port: 65536: must be between 1 and 65535, or 0 for the backend's port",
			`pools[0].health.http.path: "healthz": must start with "/"`,
			"pools[0].health.http.status: 600: must be between 100 and 599, or 0 for any 2xx or 3xx",
			"pools[0].passive.max_ejection_percent: 101: must be between 1 and 100",
		}},
		{"non-ASCII http path and host", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, HTTP: &HTTPHealth{Path: "/é", Host: "\x7f"}}
		}, []string{
			`pools[0].health.http.path: "/é": must be printable ASCII without spaces`,
			`pools[0].health.http.host: "\x7f": must be printable ASCII without spaces`,
		}},
		{"hash balance factor", func(c *Config) {
			c.Pools[0].Strategy = "hash"
			c.Pools[0].HashBalanceFactor = 100
		}, nil},
		{"bad hash balance factors", func(c *Config) {
			c.Pools[0].HashBalanceFactor = 150
			c.Pools = append(c.Pools, Pool{Name: "other", Strategy: "hash", HashBalanceFactor: 1, AllDown: "fail-open", Backends: []Backend{{Addr: "b:1", Weight: 1}}})
		}, []string{
			"pools[0].hash_balance_factor: 150: only applies to strategy hash, not round-robin",
			"pools[1].hash_balance_factor: 1: must be 0 (off) or at least 100",
		}},
		{"pool required with two pools", func(c *Config) {
			c.Listeners[0].Pool = ""
			c.Pools = append(c.Pools, Pool{Name: "other", Strategy: "round-robin", AllDown: "fail-open", Backends: []Backend{{Addr: "b:1", Weight: 1}}})
		}, []string{
			"listeners[0].pool: required when there is more than one pool (pools: default, other)",
		}},
		{"odd pool names are quoted", func(c *Config) {
			c.Listeners[0].Pool = "nope"
			c.Pools[0].Name = "my pool"
		}, []string{
			`listeners[0].pool: "nope": no such pool (pools: "my pool")`,
		}},
		{"bad values", func(c *Config) {
			c.Listeners[0].Listen = "localhost"
			c.Pools[0].Backends[0].Addr = "[::1]:99999"
			c.Pools[0].Backends[2].Addr = "127.0.0.1:3002"
			c.Timeouts.Connect = -time.Second
			c.Timeouts.Idle = -time.Second
			c.Timeouts.Drain = -time.Second
		}, []string{
			`listeners[0].listen: "localhost": missing port in address`,
			`pools[0].backends[0].addr: "[::1]:99999": invalid port`,
			`pools[0].backends[2].addr: "127.0.0.1:3002": duplicate backend address`,
			`timeouts.connect: "-1s": must be greater than 0`,
			`timeouts.idle: "-1s": must not be negative (0 disables the timeout)`,
			`timeouts.drain: "-1s": must not be negative`,
		}},
		{"zero sni_fallback is not defaulted", func(c *Config) {
			c.Listeners[0].SNIFallback = ""
		}, []string{
			`listeners[0].sni_fallback: "": want pool or close`,
		}},
		{"edge keys", func(c *Config) { addEdge(c) }, nil},
		{"edge keys at their limits", func(c *Config) {
			l := &c.Listeners[0]
			l.ProxyProtocol = "optional"
			l.Trusted = []string{"0.0.0.0/0", "::/0"}
			l.Allow = []string{"::ffff:0:0:0/96"} // IPv4-translated, not mapped
			l.Deny = []string{"10.0.0.1"}
			l.RatePerSource = 1e-3
			c.Pools[0].ProxyProtocol = "v1"
			c.Timeouts.ProxyHeader = time.Nanosecond
			c.Timeouts.ClientHello = time.Nanosecond
		}, nil},
		{"rate without burst, burst with rate", func(c *Config) {
			c.Listeners[0].RatePerSource = 0.5
			addListener(c, "b", func(l *Listener) { l.RatePerSource = 100; l.BurstPerSource = 1 })
		}, nil},
		{"bad edge keys", func(c *Config) { badEdge(c) }, badEdgeErrors},
		{"trusted without proxy_protocol", func(c *Config) {
			c.Listeners[0].Trusted = []string{"10.0.0.1"}
		}, []string{
			"listeners[0].trusted: only applies with proxy_protocol (accept or optional)",
		}},
		{"proxy_protocol without trusted", func(c *Config) {
			c.Listeners[0].ProxyProtocol = "accept"
			addListener(c, "b", func(l *Listener) { l.ProxyProtocol = "optional"; l.Trusted = []string{} })
		}, []string{
			"listeners[0].trusted: required with proxy_protocol accept: the upstreams allowed to send PROXY headers",
			"listeners[1].trusted: required with proxy_protocol optional: the upstreams allowed to send PROXY headers",
		}},
		{"proxy_protocol values swapped", func(c *Config) {
			c.Listeners[0].ProxyProtocol = "v2"
			c.Listeners[0].Trusted = []string{"10.0.0.1"}
			c.Pools[0].ProxyProtocol = "accept"
		}, []string{
			`listeners[0].proxy_protocol: "v2": want accept or optional (sending headers is a pool's proxy_protocol: v1 or v2)`,
			`pools[0].proxy_protocol: "accept": want v1 or v2 (accepting headers is a listener's proxy_protocol)`,
		}},
		{"rate not a number", func(c *Config) {
			c.Listeners[0].RatePerSource = math.NaN()
			addListener(c, "b", func(l *Listener) { l.RatePerSource = math.Inf(1) })
			addListener(c, "c", func(l *Listener) { l.RatePerSource = math.Inf(-1); l.BurstPerSource = 2 })
			addListener(c, "d", func(l *Listener) { l.RatePerSource = -0.5 })
		}, []string{
			"listeners[0].rate_per_source: NaN: want a number of connections per second, 0 for no limit",
			"listeners[1].rate_per_source: +Inf: want a number of connections per second, 0 for no limit",
			"listeners[2].rate_per_source: -Inf: want a number of connections per second, 0 for no limit",
			"listeners[3].rate_per_source: -0.5: must not be negative (0: no limit)",
		}},
		{"burst without rate", func(c *Config) {
			c.Listeners[0].BurstPerSource = 10
		}, []string{
			"listeners[0].burst_per_source: 10: only applies with rate_per_source",
		}},
		{"sni_fallback close without routes", func(c *Config) {
			c.Listeners[0].SNIFallback = "close"
		}, []string{
			`listeners[0].sni_fallback: "close": only applies with sni_routes`,
		}},
		{"sni routes without pools", func(c *Config) {
			c.Pools = nil
			c.Listeners[0].SNIRoutes = []SNIRoute{{ServerName: "a.example", Pool: "nope"}, {ServerName: "b.example"}}
		}, []string{
			"listeners[0].sni_routes[1].pool: required",
			"pools: at least one pool is required",
		}},
		{"server names", func(c *Config) {
			c.Listeners[0].SNIRoutes = routes(
				"a.example", "*.b.example", "C.Example", "d.example.", "*.E.EXAMPLE.", "_srv.f-g.example", "1.2.3.4",
				strings.Repeat("a", 63)+".example", strings.Repeat("a.", 126)+"b", "*."+strings.Repeat("a.", 125)+"b",
			)
		}, nil},
		{"bad server names", func(c *Config) {
			c.Listeners[0].SNIRoutes = routes(
				"", "*", "*.", ".", "a.*.b", "*x.com", "*.*.b", "a..b", "a.example..", ".a.example", "-a.com", "a-.com",
				strings.Repeat("a", 64)+".example", strings.Repeat("a.", 126)+"bc", "*."+strings.Repeat("a.", 125)+"bc",
				"a example", " a.example", "a.example ", "é.example", "\u212a.example", "a:443", "a/b",
			)
		}, []string{
			"listeners[0].sni_routes[0].server_name: required",
			`listeners[0].sni_routes[1].server_name: "*": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[2].server_name: "*.": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[3].server_name: ".": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[4].server_name: "a.*.b": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[5].server_name: "*x.com": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[6].server_name: "*.*.b": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[7].server_name: "a..b": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[8].server_name: "a.example..": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[9].server_name: ".a.example": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[10].server_name: "-a.com": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[11].server_name: "a-.com": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[12].server_name: "` + strings.Repeat("a", 61) + `...": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[13].server_name: "` + strings.Repeat("a.", 30) + `a...": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[14].server_name: "*.` + strings.Repeat("a.", 29) + `a...": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[15].server_name: "a example": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[16].server_name: " a.example": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[17].server_name: "a.example ": want a host name, or *. and a host name`,
			`listeners[0].sni_routes[18].server_name: "é.example": want a host name, or *. and a host name`,
			"listeners[0].sni_routes[19].server_name: \"\u212a.example\": want a host name, or *. and a host name",
			`too many errors (2 more)`,
		}},
		{"duplicate server names", func(c *Config) {
			c.Listeners[0].SNIRoutes = routes("a.example", "A.Example", "a.example.", "*.a.example", "*.A.EXAMPLE.")
			addListener(c, "b", func(l *Listener) { l.SNIRoutes = routes("a.example") }) // per listener
		}, []string{
			`listeners[0].sni_routes[1].server_name: "A.Example": duplicate server name`,
			`listeners[0].sni_routes[2].server_name: "a.example.": duplicate server name`,
			`listeners[0].sni_routes[4].server_name: "*.A.EXAMPLE.": duplicate server name`,
		}},
		{"sni route pools", func(c *Config) {
			c.Pools = append(c.Pools, Pool{Name: "other pool", Strategy: "round-robin", AllDown: "fail-open", Backends: []Backend{{Addr: "b:1", Weight: 1}}})
			c.Listeners[0].SNIRoutes = []SNIRoute{
				{ServerName: "a.example", Pool: "other pool"}, {ServerName: "b.example", Pool: "nope"}, {ServerName: "c.example"}, {Pool: "default"},
			}
		}, []string{
			`listeners[0].sni_routes[1].pool: "nope": no such pool (pools: default, "other pool")`,
			"listeners[0].sni_routes[2].pool: required",
			"listeners[0].sni_routes[3].server_name: required",
		}},
		{"discovery instead of backends", func(c *Config) {
			c.Pools[0].Backends = nil
			c.Pools[0].Discovery = &Discovery{File: "/etc/tcplb/app.txt"}
			c.Pools = append(c.Pools,
				Pool{Name: "dns", Strategy: "hash", HashBalanceFactor: 125, AllDown: "refuse", ProxyProtocol: "v1",
					Discovery: &Discovery{DNS: "db.example.", DNSType: DNSTypeA, Port: 5432, Interval: time.Second, DNSServer: "10.0.0.53:53"}},
				Pool{Name: "srv", Strategy: "round-robin", AllDown: "fail-open", SlowStart: time.Minute, Backends: []Backend{},
					Discovery: &Discovery{DNS: "_app._tcp.example", DNSType: DNSTypeSRV, Interval: time.Hour, DNSServer: "[fe80::53%eth0]:5353"}},
				Pool{Name: "etcd", Strategy: "round-robin", AllDown: "fail-open",
					Discovery: &Discovery{Etcd: &Etcd{Endpoints: []string{"http://127.0.0.1:2379", "https://[::1]:2379", "https://etcd.example:1/"}, Prefix: "/", DialTimeout: time.Nanosecond}}},
			)
		}, nil},
		{"zero dns type and interval stand for their defaults", func(c *Config) {
			c.Pools[0].Backends = nil
			c.Pools[0].Discovery = &Discovery{DNS: "a.example", Port: 1}
		}, nil},
		{"zero discovery and etcd are not defaulted", func(c *Config) {
			c.Pools[0].Backends = nil
			c.Pools[0].Discovery = &Discovery{}
			c.Pools = append(c.Pools, Pool{Name: "etcd", Strategy: "round-robin", AllDown: "fail-open", Discovery: &Discovery{Etcd: &Etcd{}}})
		}, []string{
			"pools[0].discovery: one of file, dns or etcd is required",
			"pools[1].discovery.etcd.endpoints: at least one endpoint is required",
			"pools[1].discovery.etcd.prefix: required",
			`pools[1].discovery.etcd.dial_timeout: "0s": must be greater than 0`,
		}},
		{"nil discovery needs backends", func(c *Config) {
			c.Pools[0].Backends = []Backend{}
			c.Pools[0].Discovery = nil
		}, []string{
			"pools[0].backends: at least one backend is required",
		}},
		{"dns keys without dns", func(c *Config) {
			c.Pools[0].Backends = nil
			c.Pools[0].Discovery = &Discovery{File: "/a", DNSType: DNSTypeA, Port: -1, Interval: -time.Second, DNSServer: "x"}
		}, []string{
			`pools[0].discovery.dns_type: "a": only applies with dns`,
			"pools[0].discovery.port: -1: only applies with dns",
			`pools[0].discovery.interval: "-1s": only applies with dns`,
			`pools[0].discovery.dns_server: "x": only applies with dns`,
		}},
		{"dns port and type", func(c *Config) {
			c.Pools[0].Backends = nil
			c.Pools[0].Discovery = &Discovery{DNS: "a.example", DNSType: DNSTypeSRV, Port: 80}
			c.Pools = append(c.Pools,
				Pool{Name: "b", Strategy: "round-robin", AllDown: "fail-open", Discovery: &Discovery{DNS: "b.example", DNSType: DNSTypeA}},
				Pool{Name: "c", Strategy: "round-robin", AllDown: "fail-open", Discovery: &Discovery{DNS: "c.example", Port: 65536}},
				Pool{Name: "d", Strategy: "round-robin", AllDown: "fail-open", Discovery: &Discovery{DNS: "d.example", DNSType: "aaaa"}},
				Pool{Name: "e", Strategy: "round-robin", AllDown: "fail-open", Discovery: &Discovery{DNS: "e.example", DNSType: "A", Port: -1}},
			)
		}, []string{
			"pools[0].discovery.port: 80: not allowed with dns_type srv, whose records carry the ports",
			"pools[1].discovery.port: required with dns_type a: the port of the backends",
			"pools[2].discovery.port: 65536: must be between 1 and 65535",
			`pools[3].discovery.dns_type: "aaaa": want a or srv`,
			`pools[4].discovery.dns_type: "A": want a or srv`,
			"pools[4].discovery.port: -1: must be between 1 and 65535",
		}},
		{"bad discovery", func(c *Config) { badDiscovery(c) }, badDiscoveryErrors},
		{"zero and negative edge timeouts", func(c *Config) {
			c.Timeouts.ProxyHeader = 0
			c.Timeouts.ClientHello = -time.Second
		}, []string{
			`timeouts.proxy_header: "0s": must be greater than 0`,
			`timeouts.client_hello: "-1s": must be greater than 0`,
		}},
		{"udp listeners", func(c *Config) {
			c.Pools = append(c.Pools, Pool{Name: "dns", Strategy: "hash", AllDown: "fail-open", Backends: []Backend{{Addr: "10.0.0.1:53", Weight: 1}}})
			c.Listeners[0].Pool = "default"
			c.Listeners = append(c.Listeners,
				// The same address as the TCP listener: allowed, and its
				// name defaults to "127.0.0.1:8080/udp".
				Listener{Protocol: "udp", Listen: "127.0.0.1:8080", Pool: "dns", SNIFallback: "pool", UDPResponses: 1, MaxSessions: 10, MaxDatagram: 512},
				Listener{Name: "u2", Protocol: "udp", Listen: "127.0.0.1:8080", Pool: "dns", SNIFallback: "pool"},
				Listener{Name: "u3", Protocol: "UDP", Listen: "127.0.0.1:53", Pool: "dns", SNIFallback: "pool"},
				Listener{Name: "u4", Protocol: "udp", Listen: "127.0.0.1:54", Pool: "default", SNIFallback: "close",
					ProxyProtocol: "accept", Trusted: []string{"10.0.0.0/8"}, MaxConns: 1, MaxConnsPerSource: 1, MaxSessionsPerSource: -1, RatePerSource: -1,
					SNIRoutes: []SNIRoute{{ServerName: "a.example", Pool: "dns"}}, UDPResponses: -1, MaxSessions: -1, MaxDatagram: 65536},
				Listener{Name: "t2", Listen: "127.0.0.1:55", Pool: "dns", SNIFallback: "pool", UDPResponses: 1, MaxSessions: 1, MaxSessionsPerSource: 1, MaxDatagram: 1},
				// Per-source limits on UDP: sessions, and datagrams per second.
				Listener{Name: "u5", Protocol: "udp", Listen: "127.0.0.1:56", Pool: "dns", SNIFallback: "pool", MaxSessionsPerSource: 4, RatePerSource: 100, BurstPerSource: 200},
			)
			c.Timeouts.UDPIdle = -time.Second
		}, []string{
			`listeners[2].listen: "127.0.0.1:8080": duplicate udp listen address`,
			`listeners[3].protocol: "UDP": want tcp or udp`,
			`listeners[4].proxy_protocol: does not apply to protocol udp (PROXY headers are read from TCP connections)`,
			`listeners[4].trusted: does not apply to protocol udp (it goes with proxy_protocol)`,
			`listeners[4].max_conns: does not apply to protocol udp (use max_sessions)`,
			`listeners[4].max_conns_per_source: does not apply to protocol udp (use max_sessions_per_source)`,
			`listeners[4].sni_routes: does not apply to protocol udp (SNI is TLS over TCP)`,
			`listeners[4].sni_fallback: does not apply to protocol udp (SNI is TLS over TCP)`,
			`listeners[4].udp_responses: -1: must not be negative (0: sessions end on timeouts.udp_idle)`,
			`listeners[4].max_sessions: -1: must not be negative (0: no limit)`,
			`listeners[4].max_sessions_per_source: -1: must not be negative (0: no limit)`,
			`listeners[4].rate_per_source: -1: must not be negative (0: no limit)`,
			`listeners[4].max_datagram: 65536: must be between 1 and 65535 (0: 65535)`,
			`listeners[4].pool: "default": pool serves tcp (listeners[0]); a pool serves one protocol, so give this udp listener a pool of its own`,
			`listeners[5].udp_responses: only applies to protocol udp`,
			`listeners[5].max_sessions: only applies to protocol udp`,
			`listeners[5].max_sessions_per_source: only applies to protocol udp`,
			`listeners[5].max_datagram: only applies to protocol udp`,
			`listeners[5].pool: "dns": pool serves udp (listeners[1]); a pool serves one protocol, so give this tcp listener a pool of its own`,
			`timeouts.udp_idle: "-1s": must be greater than 0 (a UDP session has no end of its own)`,
		}},
		{"udp pool with proxy_protocol v1", func(c *Config) {
			c.Pools[0].ProxyProtocol = "v1"
			c.Listeners[0].Protocol = "udp"
		}, []string{
			`listeners[0].pool: "default": its proxy_protocol v1 has no UDP form: use v2, which goes in front of each datagram`,
		}},
		{"udp pool with proxy_protocol v2", func(c *Config) {
			c.Pools[0].ProxyProtocol = "v2"
			c.Listeners[0].Protocol = "udp"
		}, nil},
		{"udp pool with health checks on the backends' port", func(c *Config) {
			h := &Health{}
			h.setDefaults()
			c.Pools[0].Health = h
			c.Listeners[0].Protocol = "udp"
		}, []string{
			`listeners[0].pool: "default": its health checks would connect over TCP to the UDP backends' own port: set health.network: udp with a send (and an expect) for a UDP check of that port, or health.port to a TCP port that tells the backend's health`,
		}},
		{"udp pool with a tcp check on the backends' port", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, Network: "tcp", Send: "PING"}
			c.Listeners[0].Protocol = "udp"
		}, []string{
			`listeners[0].pool: "default": its health checks would connect over TCP to the UDP backends' own port: set health.network: udp with a send (and an expect) for a UDP check of that port, or health.port to a TCP port that tells the backend's health`,
		}},
		{"udp pool with a udp check", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, Network: "udp", Send: "\x12\x34", ExpectHex: "1234 8180"}
			c.Listeners[0].Protocol = "udp"
		}, nil},
		{"udp pool with a udp check on another port, without expect", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, Network: "udp", Port: 5353, SendHex: "00"}
			c.Listeners[0].Protocol = "udp"
		}, nil},
		{"tcp pool with a udp check", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, Network: "udp", Port: 53, Send: "x", Expect: "y"}
		}, nil},
		{"tcp check with binary payloads", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, Network: "tcp", SendHex: "2a310d0a", ExpectHex: "2b 4f 4b"}
		}, nil},
		{"bad udp checks", func(c *Config) {
			h := Health{Interval: time.Second, Rise: 1, Fall: 1}
			c.Pools = []Pool{c.Pools[0], c.Pools[0], c.Pools[0], c.Pools[0], c.Pools[0], c.Pools[0]}
			for i := range c.Pools {
				c.Pools[i].Name = fmt.Sprint("p", i)
				hc := h
				c.Pools[i].Health = &hc
			}
			c.Listeners[0].Pool = "p0"
			c.Pools[0].Health.Network = "UDP"
			c.Pools[1].Health.Network = "udp"
			c.Pools[1].Health.Expect = "PONG"
			c.Pools[2].Health.Network = "udp"
			c.Pools[2].Health.HTTP = &HTTPHealth{Path: "/"}
			c.Pools[3].Health.Network = "udp"
			c.Pools[3].Health.Send = strings.Repeat("x", MaxUDPSend+1)
			c.Pools[4].Health.Network = "udp"
			c.Pools[4].Health.SendHex = "12 3"
			c.Pools[4].Health.ExpectHex = "0x12"
			c.Pools[5].Health.Send = "a"
			c.Pools[5].Health.SendHex = "61"
			c.Pools[5].Health.Expect = "b"
			c.Pools[5].Health.ExpectHex = strings.Repeat("00", MaxExpect+1)
			c.Pools[5].Health.HTTP = &HTTPHealth{Path: "/"}
		}, []string{
			`pools[0].health.network: "UDP": want tcp or udp`,
			`pools[1].health.send: required with network udp (a UDP check learns nothing without a datagram to send)`,
			`pools[2].health.network: udp: cannot be combined with http (an HTTP check connects over TCP)`,
			`pools[3].health.send: 65508 bytes: must be at most 65507 with network udp (one datagram)`,
			`pools[4].health.send_hex: "12 3": 3 hex digits: want two per byte`,
			`pools[4].health.expect_hex: "0x12": 'x' is not a hex digit`,
			`pools[5].health.send_hex: cannot be combined with send (give the payload once)`,
			`pools[5].health.expect_hex: cannot be combined with expect (give the payload once)`,
			`pools[5].health.http: cannot be combined with send or expect`,
			`pools[5].health.http: cannot be combined with send_hex or expect_hex`,
		}},
		{"expect_hex too long", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, ExpectHex: strings.Repeat("00", MaxExpect+1)}
		}, []string{
			`pools[0].health.expect_hex: 65537 bytes: must be at most 65536`,
		}},
		{"udp pool with health checks on a TCP port", func(c *Config) {
			h := &Health{}
			h.setDefaults()
			h.Port = 8080
			c.Pools[0].Health = h
			c.Listeners[0].Protocol = "udp"
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			before := slices.Clone(c.Listeners) // shallow: enough to see a field set
			err := c.Validate()
			want := strings.Join(tt.want, "\n")
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("Validate(%+v) = %v, want nil", *c, err)
			case tt.want != nil && (err == nil || err.Error() != want):
				t.Errorf("Validate(%+v) = %v, want:\n%s", *c, err, want)
			}
			// As Go syntax, which has no pointers to follow in a
			// Listener and, unlike reflect.DeepEqual, takes NaN as NaN.
			if fmt.Sprintf("%#v", c.Listeners) != fmt.Sprintf("%#v", before) {
				t.Errorf("Validate changed the listeners from %+v to %+v", before, c.Listeners)
			}
		})
	}
}

// addListener adds to c a listener on a free port forwarding to its first
// pool, changed by change.
func addListener(c *Config, name string, change func(l *Listener)) {
	l := Listener{Name: name, Listen: "127.0.0.1:0", Pool: c.Pools[0].Name, SNIFallback: SNIFallbackPool}
	change(&l)
	c.Listeners = append(c.Listeners, l)
}

// routes returns routes for the server names, to c's pool "default".
func routes(names ...string) []SNIRoute {
	rs := make([]SNIRoute, len(names))
	for i, name := range names {
		rs[i] = SNIRoute{ServerName: name, Pool: "default"}
	}
	return rs
}

// addEdge gives the default configuration every edge key, valid.
func addEdge(c *Config) {
	c.Pools = append(c.Pools, Pool{Name: "tls", Strategy: "least-conn", AllDown: "refuse", ProxyProtocol: "v2", Backends: []Backend{{Addr: "10.0.1.1:443", Weight: 1}}})
	l := &c.Listeners[0]
	l.ProxyProtocol = "accept"
	l.Trusted = []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "2001:db8:1::1", "::/0"}
	l.Allow = []string{"0.0.0.0/0", "fd00::/8"}
	l.Deny = []string{"10.9.0.0/16", "::1"}
	l.MaxConns = 10000
	l.MaxConnsPerSource = 100
	l.RatePerSource = 2.5
	l.BurstPerSource = 20
	l.SNIRoutes = []SNIRoute{{ServerName: "a.example", Pool: "tls"}, {ServerName: "*.a.example", Pool: "tls"}, {ServerName: "B.Example.", Pool: "default"}}
	l.SNIFallback = "close"
}

// badEdge breaks every edge key of the default configuration, several
// times where a key is a list, for the errors in badEdgeErrors.
func badEdge(c *Config) {
	l := &c.Listeners[0]
	l.ProxyProtocol = "yes"
	l.Trusted = []string{"10.0.0.0/8", "10.0.0.1/8", "fe80::1%eth0"}
	l.Allow = []string{"", "2001:db8::1/32", "::ffff:10.0.0.0/104", "10.0.0.0/33"}
	l.Deny = []string{"::ffff:192.0.2.1", "fe80::/10%eth0", "example.com", "010.0.0.1"}
	l.MaxConns = -1
	l.MaxConnsPerSource = -2
	l.RatePerSource = -3
	l.BurstPerSource = -4
	l.SNIFallback = "drop"
	l.SNIRoutes = []SNIRoute{{ServerName: "*", Pool: "nope"}, {ServerName: "a.example", Pool: ""}, {ServerName: "A.EXAMPLE", Pool: "default"}}
	c.Pools[0].ProxyProtocol = "v3"
}

var badEdgeErrors = []string{
	`listeners[0].proxy_protocol: "yes": want accept or optional (sending headers is a pool's proxy_protocol: v1 or v2)`,
	`listeners[0].trusted[1]: "10.0.0.1/8": host bits set (did you mean 10.0.0.0/8?)`,
	`listeners[0].trusted[2]: "fe80::1%eth0": an IPv6 zone is not allowed`,
	`listeners[0].allow[0]: "": not an address or a CIDR`,
	`listeners[0].allow[1]: "2001:db8::1/32": host bits set (did you mean 2001:db8::/32?)`,
	`listeners[0].allow[2]: "::ffff:10.0.0.0/104": IPv4-mapped IPv6, which no client is matched as (did you mean 10.0.0.0/8?)`,
	`listeners[0].allow[3]: "10.0.0.0/33": not a CIDR`,
	`listeners[0].deny[0]: "::ffff:192.0.2.1": IPv4-mapped IPv6, which no client is matched as (did you mean 192.0.2.1?)`,
	`listeners[0].deny[1]: "fe80::/10%eth0": not a CIDR`,
	`listeners[0].deny[2]: "example.com": not an address or a CIDR`,
	`listeners[0].deny[3]: "010.0.0.1": not an address or a CIDR`,
	"listeners[0].max_conns: -1: must not be negative (0: no limit)",
	"listeners[0].max_conns_per_source: -2: must not be negative (0: no limit)",
	"listeners[0].rate_per_source: -3: must not be negative (0: no limit)",
	"listeners[0].burst_per_source: -4: must not be negative (0: the rate, at least 1)",
	`listeners[0].sni_fallback: "drop": want pool or close`,
	`listeners[0].sni_routes[0].server_name: "*": want a host name, or *. and a host name`,
	`listeners[0].sni_routes[0].pool: "nope": no such pool (pools: default)`,
	"listeners[0].sni_routes[1].pool: required",
	`listeners[0].sni_routes[2].server_name: "A.EXAMPLE": duplicate server name`,
	`too many errors (1 more)`,
}

// badDiscovery breaks every discovery key of the default configuration's
// pool, for the errors in badDiscoveryErrors.
func badDiscovery(c *Config) {
	c.Pools[0].Strategy = "hash"
	c.Pools[0].SlowStart = time.Second
	c.Pools[0].Discovery = &Discovery{
		File: "/a", DNS: "*.example", DNSType: "txt", Port: 70000, Interval: time.Millisecond, DNSServer: "ns.example:53",
		Etcd: &Etcd{Endpoints: []string{"http://e:1", "e:1", "http://e:1", "https://e"}, Prefix: "tcplb", DialTimeout: -time.Second},
	}
}

var badDiscoveryErrors = []string{
	`pools[0].slow_start: "1s": does not apply to strategy hash: ramping would move clients between backends`,
	"pools[0].discovery: backends and discovery cannot both be set",
	"pools[0].discovery: file, dns and etcd are alternatives: set one",
	`pools[0].discovery.dns: "*.example": want a host name`,
	`pools[0].discovery.dns_type: "txt": want a or srv`,
	"pools[0].discovery.port: 70000: must be between 1 and 65535",
	`pools[0].discovery.interval: "1ms": must be at least 1s (0 means 30s)`,
	`pools[0].discovery.dns_server: "ns.example:53": want an IP address and a port, as in 10.0.0.53:53 or [2001:db8::53]:53`,
	`pools[0].discovery.etcd.endpoints[1]: "e:1": want an http:// or https:// URL with a host and a port, as in http://127.0.0.1:2379`,
	`pools[0].discovery.etcd.endpoints[2]: "http://e:1": duplicate endpoint`,
	`pools[0].discovery.etcd.endpoints[3]: "https://e": missing port`,
	`pools[0].discovery.etcd.prefix: "tcplb": must start with "/"`,
	`pools[0].discovery.etcd.dial_timeout: "-1s": must be greater than 0`,
}

// The errors of a listener or a pool's discovery come in a fixed order,
// the order of its keys and of their elements, every time.
func TestValidateOrder(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"bad edge keys", badEdge, badEdgeErrors},
		{"bad discovery", badDiscovery, badDiscoveryErrors},
	} {
		want := strings.Join(tt.want, "\n")
		for range 100 {
			c := Default()
			tt.change(c)
			if err := c.Validate(); err == nil || err.Error() != want {
				t.Fatalf("Validate(%s) = %v, want:\n%s", tt.name, err, want)
			}
		}
	}
}

// Validate fills in no defaults, even those Parse fills in for discovery.
func TestValidateKeepsDiscovery(t *testing.T) {
	c := Default()
	c.Pools[0].Backends = nil
	c.Pools[0].Discovery = &Discovery{DNS: "a.example", Port: 1}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(dns discovery) = %v, want nil", err)
	}
	if got, want := *c.Pools[0].Discovery, (Discovery{DNS: "a.example", Port: 1}); got != want {
		t.Errorf("after Validate, discovery = %+v, want %+v", got, want)
	}
}

func TestParsePrefix(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "10.0.0.1", want: "10.0.0.1/32"},
		{in: "10.0.0.1/32", want: "10.0.0.1/32"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "2001:DB8::/32", want: "2001:db8::/32"},
		{in: "2001:db8::1", want: "2001:db8::1/128"},
		{in: "::/0", want: "::/0"},
		{in: "::1", want: "::1/128"},
		{in: "64:ff9b::/96", want: "64:ff9b::/96"},
		{in: "10.0.0.1/8", err: `"10.0.0.1/8": host bits set (did you mean 10.0.0.0/8?)`},
		{in: "2001:db8::1/32", err: `"2001:db8::1/32": host bits set (did you mean 2001:db8::/32?)`},
		{in: "fe80::1%eth0", err: `"fe80::1%eth0": an IPv6 zone is not allowed`},
		{in: "fe80::%eth0/64", err: `"fe80::%eth0/64": an IPv6 zone is not allowed`},
		{in: "::ffff:10.0.0.1", err: `"::ffff:10.0.0.1": IPv4-mapped IPv6, which no client is matched as (did you mean 10.0.0.1?)`},
		{in: "::ffff:0:0/96", err: `"::ffff:0:0/96": IPv4-mapped IPv6, which no client is matched as (did you mean 0.0.0.0/0?)`},
		{in: "::ffff:10.0.0.1/128", err: `"::ffff:10.0.0.1/128": IPv4-mapped IPv6, which no client is matched as (did you mean 10.0.0.1/32?)`},
		{in: "", err: `"": not an address or a CIDR`},
		{in: "localhost", err: `"localhost": not an address or a CIDR`},
		{in: " 10.0.0.1", err: `" 10.0.0.1": not an address or a CIDR`},
		{in: "10.0.0.0/", err: `"10.0.0.0/": not a CIDR`},
		{in: "10.0.0.0/33", err: `"10.0.0.0/33": not a CIDR`},
		{in: "10.0.0.0/08", err: `"10.0.0.0/08": not a CIDR`},
		{in: "10.0.0.0/8/8", err: `"10.0.0.0/8/8": not a CIDR`},
		{in: "::/129", err: `"::/129": not a CIDR`},
		{in: "[::1]/128", err: `"[::1]/128": not a CIDR`},
		{in: "10.0.0.1:80", err: `"10.0.0.1:80": not an address or a CIDR`},
	} {
		got, err := ParsePrefix(tt.in)
		switch {
		case tt.err == "" && (err != nil || got.String() != tt.want):
			t.Errorf("ParsePrefix(%q) = %v, %v, want %s, nil", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || err.Error() != tt.err || got != netip.Prefix{}):
			t.Errorf("ParsePrefix(%q) = %v, %v, want the zero Prefix, %s", tt.in, got, err, tt.err)
		}
	}
}

func TestValidServerName(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"a.example", true},
		{"a", true},
		{"*.b.example", true},
		{"*.b", true},
		{"A.Example", true}, // lower-cased first
		{"a.example.", true},
		{"*.b.example.", true},
		{"_acme.a-b.example", true},
		{"xn--bcher-kva.example", true},
		{"192.0.2.1", true}, // matches what the sni package matches
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a.", 126) + "b", true},        // 253 bytes
		{"*." + strings.Repeat("a.", 125) + "b", true}, // 253 bytes, wildcard included
		{"", false},
		{".", false},
		{"..", false},
		{"*", false},
		{"*.", false},
		{"**.a", false},
		{"a.*.b", false},
		{"a.*", false},
		{"*x.com", false},
		{"x*.com", false},
		{"*.*.b", false},
		{"a..b", false},
		{".a", false},
		{"a.example..", false},
		{"-a.com", false},
		{"a-.com", false},
		{"a.-b", false},
		{strings.Repeat("a", 64), false},
		{strings.Repeat("a.", 126) + "bc", false}, // 254 bytes
		{"*." + strings.Repeat("a.", 125) + "bc", false}, // 254 bytes
		{"a b", false},
		{"a.example ", false},
		{"a\tb", false},
		{"é.example", false},
		{"\u212a.example", false}, // the Kelvin sign lower-cases to "k", but is not ASCII
		{"a:443", false},
		{"[::1]", false},
	} {
		if got := validServerName(serverNameKey(tt.in)); got != tt.want {
			t.Errorf("validServerName(serverNameKey(%q)) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if got, want := serverNameKey("Ab.EXAMPLE."), "ab.example"; got != want {
		t.Errorf(`serverNameKey("Ab.EXAMPLE.") = %q, want %q`, got, want)
	}
}
