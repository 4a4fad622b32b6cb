package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var defaultTimeouts = Timeouts{Connect: 5 * time.Second, Idle: time.Hour, Drain: 30 * time.Second, ProxyHeader: 3 * time.Second, ClientHello: 5 * time.Second, UDPIdle: 30 * time.Second}

var defaultPassive = Passive{MaxFails: 3, FailWindow: 10 * time.Second, Cooldown: 10 * time.Second, MaxCooldown: 5 * time.Minute, MaxEjectionPercent: 50}

// defaultHealth is what "health: {}" gives.
var defaultHealth = Health{Interval: 2 * time.Second, Rise: 2, Fall: 3}

// The checks of pool a in "merge keys replace checks".
var (
	mergedHealth  = &Health{Interval: 5 * time.Second, Rise: 2, Fall: 3, Port: 9000, HTTP: &HTTPHealth{Path: "/a", Status: 204}}
	mergedPassive = Passive{MaxFails: 5, FailWindow: 10 * time.Second, Cooldown: time.Minute, MaxCooldown: 5 * time.Minute, MaxEjectionPercent: 50}
)

var parseTests = []struct {
	name string
	in   string
	want *Config
}{
	{
		name: "udp listener",
		in: `
listeners:
  - {listen: "127.0.0.1:53", pool: dns, protocol: udp, udp_responses: 1, max_sessions: 1000}
  - {listen: "127.0.0.1:53", pool: dnstcp}
pools:
  - {name: dns, strategy: hash, backends: ["10.0.0.1:53", "10.0.0.2:53"]}
  - {name: dnstcp, backends: ["10.0.0.1:53"]}
timeouts: {udp_idle: 10s}
`,
		want: &Config{
			Listeners: []Listener{
				{Name: "127.0.0.1:53/udp", Protocol: "udp", Listen: "127.0.0.1:53", Pool: "dns", SNIFallback: "pool", UDPResponses: 1, MaxSessions: 1000, MaxDatagram: 65535},
				{Name: "127.0.0.1:53", Protocol: "tcp", Listen: "127.0.0.1:53", Pool: "dnstcp", SNIFallback: "pool"},
			},
			Pools: []Pool{
				{Name: "dns", Strategy: "hash", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "10.0.0.1:53", Weight: 1}, {Addr: "10.0.0.2:53", Weight: 1}}},
				{Name: "dnstcp", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "10.0.0.1:53", Weight: 1}}},
			},
			Timeouts: Timeouts{Connect: 5 * time.Second, Idle: time.Hour, Drain: 30 * time.Second, ProxyHeader: 3 * time.Second, ClientHello: 5 * time.Second, UDPIdle: 10 * time.Second},
		},
	},
	{
		name: "full",
		in: `
listeners:
  - name: main
    listen: 127.0.0.1:8080
    pool: app
pools:
  - name: app
    strategy: round-robin
    backends:
      - { addr: 127.0.0.1:3001, weight: 1 }
      - { addr: 127.0.0.1:3002, weight: 1 }
timeouts:
  connect: 5s
  idle: 1h
  drain: 30s
`,
		want: &Config{
			Listeners: []Listener{{Name: "main", Listen: "127.0.0.1:8080", Pool: "app", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{{
				Name:     "app",
				Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive,
				Backends: []Backend{{Addr: "127.0.0.1:3001", Weight: 1}, {Addr: "127.0.0.1:3002", Weight: 1}},
			}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "defaults",
		in: `
listeners:
  - listen: :8080
pools:
  - name: app
    backends:
      - addr: 127.0.0.1:3001
`,
		want: &Config{
			Listeners: []Listener{{Name: ":8080", Listen: ":8080", Pool: "app", SNIFallback: "pool", Protocol: "tcp"}},
			Pools:     []Pool{{Name: "app", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "127.0.0.1:3001", Weight: 1}}}},
			Timeouts:  defaultTimeouts,
		},
	},
	{
		name: "short backends",
		in: `
listeners: [{listen: "127.0.0.1:8080"}]
pools:
  - name: app
    backends:
      - 127.0.0.1:3001
      - { addr: 127.0.0.1:3002, weight: 5 }
      - "[::1]:3003"
      - backend.example:3004
`,
		want: &Config{
			Listeners: []Listener{{Name: "127.0.0.1:8080", Listen: "127.0.0.1:8080", Pool: "app", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{{Name: "app", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{
				{Addr: "127.0.0.1:3001", Weight: 1}, {Addr: "127.0.0.1:3002", Weight: 5}, {Addr: "[::1]:3003", Weight: 1}, {Addr: "backend.example:3004", Weight: 1},
			}}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "two pools",
		in: `
listeners:
  - {name: a, listen: "[::1]:0", pool: two}
  - {name: b, listen: "[::1]:0", pool: one}
  - {listen: "0.0.0.0:65535", pool: one}
pools:
  - {name: one, backends: [a:1]}
  - {name: two, strategy: round-robin, backends: [{addr: b:1, weight: 256}, b:2]}
`,
		want: &Config{
			Listeners: []Listener{
				{Name: "a", Listen: "[::1]:0", Pool: "two", SNIFallback: "pool", Protocol: "tcp"},
				{Name: "b", Listen: "[::1]:0", Pool: "one", SNIFallback: "pool", Protocol: "tcp"},
				{Name: "0.0.0.0:65535", Listen: "0.0.0.0:65535", Pool: "one", SNIFallback: "pool", Protocol: "tcp"},
			},
			Pools: []Pool{
				{Name: "one", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}},
				{Name: "two", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "b:1", Weight: 256}, {Addr: "b:2", Weight: 1}}},
			},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "null keeps defaults",
		in: `
listeners:
  - {listen: ":1", name: ~, pool: null}
pools:
  - name: app
    strategy:
    backends:
      - { addr: a:1, weight: ~ }
      - a:2
timeouts:
  # all commented out
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "app", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{{Name: "app", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{
				{Addr: "a:1", Weight: 1}, {Addr: "a:2", Weight: 1},
			}}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "durations",
		in: `
listeners: [{listen: ":1"}]
pools: [{name: p, backends: [a:1]}]
timeouts: {connect: 1m30s, idle: 0, drain: 0s}
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "p", SNIFallback: "pool", Protocol: "tcp"}},
			Pools:     []Pool{{Name: "p", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}}},
			Timeouts:  Timeouts{Connect: 90 * time.Second, Idle: 0, Drain: 0, ProxyHeader: 3 * time.Second, ClientHello: 5 * time.Second, UDPIdle: 30 * time.Second},
		},
	},
	{
		name: "only some timeouts",
		in: `
listeners: [{listen: ":1"}]
pools: [{name: p, backends: [a:1]}]
timeouts:
  idle: 10m
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "p", SNIFallback: "pool", Protocol: "tcp"}},
			Pools:     []Pool{{Name: "p", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}}},
			Timeouts:  Timeouts{Connect: 5 * time.Second, Idle: 10 * time.Minute, Drain: 30 * time.Second, ProxyHeader: 3 * time.Second, ClientHello: 5 * time.Second, UDPIdle: 30 * time.Second},
		},
	},
	{
		name: "integer forms",
		in: `
listeners: [{listen: ":1"}]
pools: [{name: p, backends: [{addr: a:1, weight: 010}, {addr: a:2, weight: 0x10}, {addr: a:3, weight: +2}, {addr: a:4, weight: 1_0}]}]
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "p", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{{Name: "p", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{
				{Addr: "a:1", Weight: 10}, {Addr: "a:2", Weight: 16}, {Addr: "a:3", Weight: 2}, {Addr: "a:4", Weight: 10},
			}}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "scalars as strings",
		in: `
listeners: [{listen: ":1", name: 1.10, pool: 2024}]
pools: [{name: 2024, backends: [a:1]}]
`,
		want: &Config{
			Listeners: []Listener{{Name: "1.10", Listen: ":1", Pool: "2024", SNIFallback: "pool", Protocol: "tcp"}},
			Pools:     []Pool{{Name: "2024", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}}},
			Timeouts:  defaultTimeouts,
		},
	},
	{
		name: "anchors and merge keys",
		in: `
listeners:
  - &l {listen: ":1", pool: a}
  - <<: *l
    listen: ":2"
pools:
  - &a
    name: a
    backends: &bs [x:1, {addr: x:2, weight: 2}]
  - <<: *a
    name: b
  - <<: [{name: c, backends: [y:1]}, *a]
  - <<: [*a, {name: x, backends: [y:1]}]
    name: d
    backends: *bs
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "a", SNIFallback: "pool", Protocol: "tcp"}, {Name: ":2", Listen: ":2", Pool: "a", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{
				{Name: "a", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "x:1", Weight: 1}, {Addr: "x:2", Weight: 2}}},
				{Name: "b", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "x:1", Weight: 1}, {Addr: "x:2", Weight: 2}}},
				{Name: "c", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "y:1", Weight: 1}}},
				{Name: "d", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "x:1", Weight: 1}, {Addr: "x:2", Weight: 2}}},
			},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "hash balance factor",
		in: `
listeners: [{listen: ":1", pool: bounded}]
pools:
  - {name: bounded, strategy: hash, hash_balance_factor: 125, backends: [a:1, a:2]}
  - {name: plain, strategy: hash, hash_balance_factor: 0, backends: [a:1]}
  - {name: other, strategy: least-conn, hash_balance_factor: ~, backends: [a:1]}
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "bounded", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{
				{Name: "bounded", Strategy: "hash", AllDown: "fail-open", Passive: defaultPassive, HashBalanceFactor: 125, Backends: []Backend{{Addr: "a:1", Weight: 1}, {Addr: "a:2", Weight: 1}}},
				{Name: "plain", Strategy: "hash", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}},
				{Name: "other", Strategy: "least-conn", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}},
			},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "checks and limits",
		in: `
listeners: [{listen: ":1", pool: tcp}]
pools:
  - name: tcp
    strategy: least-conn
    all_down: refuse
    slow_start: 1m
    health:
      interval: 5s
      timeout: 1s
      rise: 1
      fall: 5
      port: 9000
      send: "PING\r\n"
      expect: PONG
    passive:
      max_fails: 5
      fail_window: 30s
      cooldown: 1s
      max_cooldown: 1s
      max_ejection_percent: 100
      udp_unanswered: 3
    backends:
      - {addr: a:1, weight: 2, max_conns: 100}
      - a:2
  - name: web
    all_down: fail-open
    health:
      http: {path: "/healthz?full=1", host: app.example, status: 204}
    backends: [{addr: b:1, max_conns: 0}]
timeouts:
  queue: 250ms
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "tcp", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{
				{
					Name: "tcp", Strategy: "least-conn", AllDown: "refuse", SlowStart: time.Minute,
					Health: &Health{
						Interval: 5 * time.Second, Timeout: time.Second, Rise: 1, Fall: 5, Port: 9000,
						Send: "PING\r\n", Expect: "PONG",
					},
					Passive: Passive{
						MaxFails: 5, FailWindow: 30 * time.Second, Cooldown: time.Second,
						MaxCooldown: time.Second, MaxEjectionPercent: 100, UDPUnanswered: 3,
					},
					Backends: []Backend{{Addr: "a:1", Weight: 2, MaxConns: 100}, {Addr: "a:2", Weight: 1}},
				},
				{
					Name: "web", Strategy: "round-robin", AllDown: "fail-open",
					Health: &Health{
						Interval: 2 * time.Second, Rise: 2, Fall: 3,
						HTTP: &HTTPHealth{Path: "/healthz?full=1", Host: "app.example", Status: 204},
					},
					Passive:  defaultPassive,
					Backends: []Backend{{Addr: "b:1", Weight: 1}},
				},
			},
			Timeouts: Timeouts{Connect: 5 * time.Second, Idle: time.Hour, Drain: 30 * time.Second, Queue: 250 * time.Millisecond, ProxyHeader: 3 * time.Second, ClientHello: 5 * time.Second, UDPIdle: 30 * time.Second},
		},
	},
	{
		// Without health there are no active checks; with any mapping
		// there are, and each key has its default. Passive checks are on.
		name: "check defaults",
		in: `
listeners: [{listen: ":1", pool: absent}]
pools:
  - {name: absent, backends: [a:1]}
  - {name: nulls, health: ~, passive: ~, all_down: ~, slow_start: ~, backends: [{addr: a:1, max_conns: ~}]}
  - {name: empty, health: {}, passive: {}, backends: [a:1]}
  - {name: http, health: {http: {}}, backends: [a:1]}
  - {name: http-null, health: {http: ~, interval: ~}, backends: [a:1]}
  - name: keys-null
    health:
      rise:
    backends: [a:1]
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "absent", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{
				{Name: "absent", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}},
				{Name: "nulls", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}},
				{Name: "empty", Strategy: "round-robin", AllDown: "fail-open", Health: &defaultHealth, Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}},
				{
					Name: "http", Strategy: "round-robin", AllDown: "fail-open",
					Health:  &Health{Interval: 2 * time.Second, Rise: 2, Fall: 3, HTTP: &HTTPHealth{Path: "/"}},
					Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}},
				},
				{Name: "http-null", Strategy: "round-robin", AllDown: "fail-open", Health: &defaultHealth, Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}},
				{Name: "keys-null", Strategy: "round-robin", AllDown: "fail-open", Health: &defaultHealth, Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}},
			},
			Timeouts: defaultTimeouts,
		},
	},
	{
		// max_fails 0 turns passive checks off; the other keys are
		// then not checked.
		name: "passive off",
		in: `
listeners: [{listen: ":1", pool: off}]
pools:
  - {name: off, passive: {max_fails: 0}, backends: [a:1]}
  - {name: off-bad, passive: {max_fails: 0, cooldown: 0s, max_cooldown: -1s, max_ejection_percent: 0}, backends: [a:1]}
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "off", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{
				{
					Name: "off", Strategy: "round-robin", AllDown: "fail-open",
					Passive:  Passive{MaxFails: 0, FailWindow: 10 * time.Second, Cooldown: 10 * time.Second, MaxCooldown: 5 * time.Minute, MaxEjectionPercent: 50},
					Backends: []Backend{{Addr: "a:1", Weight: 1}},
				},
				{
					Name: "off-bad", Strategy: "round-robin", AllDown: "fail-open",
					Passive:  Passive{MaxFails: 0, FailWindow: 10 * time.Second, Cooldown: 0, MaxCooldown: -time.Second, MaxEjectionPercent: 0},
					Backends: []Backend{{Addr: "a:1", Weight: 1}},
				},
			},
			Timeouts: defaultTimeouts,
		},
	},
	{
		// A key replaces the whole of what a merge key gave, as in
		// YAML: health and passive start again from their defaults.
		// Null keeps the merged value, as it keeps a default.
		name: "merge keys replace checks",
		in: `
listeners: [{listen: ":1", pool: a}]
pools:
  - &a
    name: a
    health: {interval: 5s, port: 9000, http: {path: /a, status: 204}}
    passive: {max_fails: 5, cooldown: 1m}
    backends: [x:1]
  - <<: *a
    name: b
  - <<: *a
    name: c
    health: {rise: 4}
    passive: {fail_window: 1m}
  - <<: *a
    name: d
    health: ~
    passive: ~
  - <<: [{name: e, health: {fall: 9}}, *a]
  - <<: *a
    name: f
    health: {http: {host: h}}
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "a", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{
				{Name: "a", Strategy: "round-robin", AllDown: "fail-open", Health: mergedHealth, Passive: mergedPassive, Backends: []Backend{{Addr: "x:1", Weight: 1}}},
				{Name: "b", Strategy: "round-robin", AllDown: "fail-open", Health: mergedHealth, Passive: mergedPassive, Backends: []Backend{{Addr: "x:1", Weight: 1}}},
				{
					Name: "c", Strategy: "round-robin", AllDown: "fail-open",
					Health:   &Health{Interval: 2 * time.Second, Rise: 4, Fall: 3},
					Passive:  Passive{MaxFails: 3, FailWindow: time.Minute, Cooldown: 10 * time.Second, MaxCooldown: 5 * time.Minute, MaxEjectionPercent: 50},
					Backends: []Backend{{Addr: "x:1", Weight: 1}},
				},
				{Name: "d", Strategy: "round-robin", AllDown: "fail-open", Health: mergedHealth, Passive: mergedPassive, Backends: []Backend{{Addr: "x:1", Weight: 1}}},
				{
					Name: "e", Strategy: "round-robin", AllDown: "fail-open",
					Health:   &Health{Interval: 2 * time.Second, Rise: 2, Fall: 9},
					Passive:  mergedPassive,
					Backends: []Backend{{Addr: "x:1", Weight: 1}},
				},
				{
					Name: "f", Strategy: "round-robin", AllDown: "fail-open",
					Health:   &Health{Interval: 2 * time.Second, Rise: 2, Fall: 3, HTTP: &HTTPHealth{Path: "/", Host: "h"}},
					Passive:  mergedPassive,
					Backends: []Backend{{Addr: "x:1", Weight: 1}},
				},
			},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "document markers and comments",
		in: `# tcplb
---
listeners: [{listen: ":1"}] # main
pools: [{name: p, backends: [a:1]}]
...
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "p", SNIFallback: "pool", Protocol: "tcp"}},
			Pools:     []Pool{{Name: "p", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}}},
			Timeouts:  defaultTimeouts,
		},
	},
	{
		name: "edge keys",
		in: `
listeners:
  - name: edge
    listen: ":443"
    pool: web
    proxy_protocol: accept
    trusted: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32", "::1"]
    allow: [0.0.0.0/0, "::/0"]
    deny: [10.9.0.0/16, "2001:db8:bad::/48"]
    max_conns: 10000
    max_conns_per_source: 50
    rate_per_source: 2.5
    burst_per_source: 10
    sni_routes:
      - {server_name: api.example.com, pool: api}
      - {server_name: "*.Example.COM.", pool: web}
    sni_fallback: close
  - {listen: ":80", pool: web, proxy_protocol: optional, trusted: [127.0.0.1]}
pools:
  - {name: web, proxy_protocol: v1, backends: [a:1]}
  - {name: api, proxy_protocol: v2, backends: [b:1]}
timeouts: {proxy_header: 1s, client_hello: 250ms}
`,
		want: &Config{
			Listeners: []Listener{
				{
					Name: "edge", Listen: ":443", Pool: "web",
					ProxyProtocol: "accept", Trusted: []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"},
					Allow: []string{"0.0.0.0/0", "::/0"}, Deny: []string{"10.9.0.0/16", "2001:db8:bad::/48"},
					MaxConns: 10000, MaxConnsPerSource: 50, RatePerSource: 2.5, BurstPerSource: 10,
					SNIRoutes:   []SNIRoute{{ServerName: "api.example.com", Pool: "api"}, {ServerName: "*.Example.COM.", Pool: "web"}},
					SNIFallback: "close", Protocol: "tcp",
				},
				{Name: ":80", Listen: ":80", Pool: "web", ProxyProtocol: "optional", Trusted: []string{"127.0.0.1"}, SNIFallback: "pool", Protocol: "tcp"},
			},
			Pools: []Pool{
				{Name: "web", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, ProxyProtocol: "v1", Backends: []Backend{{Addr: "a:1", Weight: 1}}},
				{Name: "api", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, ProxyProtocol: "v2", Backends: []Backend{{Addr: "b:1", Weight: 1}}},
			},
			Timeouts: Timeouts{Connect: 5 * time.Second, Idle: time.Hour, Drain: 30 * time.Second, ProxyHeader: time.Second, ClientHello: 250 * time.Millisecond, UDPIdle: 30 * time.Second},
		},
	},
	{
		// Null and empty lists keep the defaults: no PROXY headers, no
		// access lists, no limits, no routes, fallback to the pool.
		name: "edge defaults",
		in: `
listeners:
  - {listen: ":1", proxy_protocol: ~, trusted: ~, allow: [], deny: ~, max_conns: ~, rate_per_source: ~, sni_routes: [], sni_fallback: ~}
  - {listen: ":2", sni_fallback: pool, max_conns: 0, max_conns_per_source: 0, rate_per_source: 0, burst_per_source: 0}
pools: [{name: p, proxy_protocol: ~, backends: [a:1]}]
timeouts: {proxy_header: ~, client_hello: ~}
`,
		want: &Config{
			Listeners: []Listener{
				{Name: ":1", Listen: ":1", Pool: "p", Allow: []string{}, SNIRoutes: []SNIRoute{}, SNIFallback: "pool", Protocol: "tcp"},
				{Name: ":2", Listen: ":2", Pool: "p", SNIFallback: "pool", Protocol: "tcp"},
			},
			Pools:    []Pool{{Name: "p", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		// A float key takes integers in every form an integer key does,
		// and decimals.
		name: "number forms",
		in: `
listeners:
  - {listen: ":1", rate_per_source: 1}
  - {listen: ":2", rate_per_source: 0.5}
  - {listen: ":3", rate_per_source: 1e3}
  - {listen: ":4", rate_per_source: 010}
  - {listen: ":5", rate_per_source: 0x10}
  - {listen: ":6", rate_per_source: 1_000.5}
  - {listen: ":7", rate_per_source: +.25}
  - {listen: ":8", rate_per_source: 1.5E-1}
  - {listen: ":9", rate_per_source: 0o10}
pools: [{name: p, backends: [a:1]}]
`,
		want: &Config{
			Listeners: []Listener{
				{Name: ":1", Listen: ":1", Pool: "p", RatePerSource: 1, SNIFallback: "pool", Protocol: "tcp"},
				{Name: ":2", Listen: ":2", Pool: "p", RatePerSource: 0.5, SNIFallback: "pool", Protocol: "tcp"},
				{Name: ":3", Listen: ":3", Pool: "p", RatePerSource: 1000, SNIFallback: "pool", Protocol: "tcp"},
				{Name: ":4", Listen: ":4", Pool: "p", RatePerSource: 10, SNIFallback: "pool", Protocol: "tcp"},
				{Name: ":5", Listen: ":5", Pool: "p", RatePerSource: 16, SNIFallback: "pool", Protocol: "tcp"},
				{Name: ":6", Listen: ":6", Pool: "p", RatePerSource: 1000.5, SNIFallback: "pool", Protocol: "tcp"},
				{Name: ":7", Listen: ":7", Pool: "p", RatePerSource: 0.25, SNIFallback: "pool", Protocol: "tcp"},
				{Name: ":8", Listen: ":8", Pool: "p", RatePerSource: 0.15, SNIFallback: "pool", Protocol: "tcp"},
				{Name: ":9", Listen: ":9", Pool: "p", RatePerSource: 8, SNIFallback: "pool", Protocol: "tcp"},
			},
			Pools:    []Pool{{Name: "p", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		// Merge keys carry the edge keys too; a list key replaces the
		// merged list.
		name: "merged edge keys",
		in: `
listeners:
  - &edge {listen: ":1", proxy_protocol: accept, trusted: [10.0.0.0/8], deny: [192.0.2.0/24], sni_routes: [{server_name: a.example, pool: p}]}
  - <<: *edge
    listen: ":2"
    trusted: ["::1"]
    sni_fallback: close
pools: [{name: p, backends: [a:1]}]
`,
		want: &Config{
			Listeners: []Listener{
				{
					Name: ":1", Listen: ":1", Pool: "p", ProxyProtocol: "accept", Trusted: []string{"10.0.0.0/8"}, Deny: []string{"192.0.2.0/24"},
					SNIRoutes: []SNIRoute{{ServerName: "a.example", Pool: "p"}}, SNIFallback: "pool", Protocol: "tcp",
				},
				{
					Name: ":2", Listen: ":2", Pool: "p", ProxyProtocol: "accept", Trusted: []string{"::1"}, Deny: []string{"192.0.2.0/24"},
					SNIRoutes: []SNIRoute{{ServerName: "a.example", Pool: "p"}}, SNIFallback: "close", Protocol: "tcp",
				},
			},
			Pools:    []Pool{{Name: "p", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		// Discovery instead of backends: a file, DNS (with its defaults
		// filled in only there) and etcd, with the other pool keys.
		name: "discovery",
		in: `
listeners: [{listen: ":1", pool: file}]
pools:
  - name: file
    discovery: {file: /etc/tcplb/app.txt}
  - name: dns-a
    strategy: hash
    hash_balance_factor: 125
    proxy_protocol: v2
    discovery: {dns: db.example., port: 5432}
  - name: dns-srv
    slow_start: 10s
    health: {}
    discovery:
      dns: _app._tcp.Example.COM
      dns_type: srv
      interval: 1s
      dns_server: "[2001:db8::53]:53"
  - name: etcd
    discovery:
      etcd: {endpoints: [http://127.0.0.1:2379, "https://[::1]:2379/"], prefix: /tcplb/app/}
    backends: []
  - name: dns-zero
    discovery: {dns: a.example, dns_type: ~, port: 65535, interval: 0s, dns_server: ~, etcd: ~}
  - name: static
    discovery: ~
    backends: [a:1]
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "file", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{
				{Name: "file", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Discovery: &Discovery{File: "/etc/tcplb/app.txt"}},
				{
					Name: "dns-a", Strategy: "hash", HashBalanceFactor: 125, AllDown: "fail-open", Passive: defaultPassive, ProxyProtocol: "v2",
					Discovery: &Discovery{DNS: "db.example.", DNSType: "a", Port: 5432, Interval: 30 * time.Second},
				},
				{
					Name: "dns-srv", Strategy: "round-robin", AllDown: "fail-open", SlowStart: 10 * time.Second, Health: &defaultHealth, Passive: defaultPassive,
					Discovery: &Discovery{DNS: "_app._tcp.Example.COM", DNSType: "srv", Interval: time.Second, DNSServer: "[2001:db8::53]:53"},
				},
				{
					Name: "etcd", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive,
					Discovery: &Discovery{Etcd: &Etcd{Endpoints: []string{"http://127.0.0.1:2379", "https://[::1]:2379/"}, Prefix: "/tcplb/app/", DialTimeout: 5 * time.Second}},
					Backends:  []Backend{},
				},
				{
					Name: "dns-zero", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive,
					Discovery: &Discovery{DNS: "a.example", DNSType: "a", Port: 65535, Interval: 30 * time.Second},
				},
				{Name: "static", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "a:1", Weight: 1}}},
			},
			Timeouts: defaultTimeouts,
		},
	},
	{
		// Merge keys and aliases carry discovery; a key replaces the
		// merged discovery whole.
		name: "merged discovery",
		in: `
listeners: [{listen: ":1", pool: a}]
pools:
  - &a {name: a, all_down: refuse, discovery: &d {dns: a.example, port: 1, interval: 1m}}
  - <<: *a
    name: b
  - name: c
    discovery: *d
  - <<: *a
    name: d
    discovery: {etcd: &e {endpoints: ["http://e:1"], prefix: /, dial_timeout: 1s}}
  - {name: e, discovery: {etcd: *e}}
  - <<: *a
    name: f
    discovery: {dns: f.example, dns_type: srv}
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "a", SNIFallback: "pool", Protocol: "tcp"}},
			Pools: []Pool{
				{Name: "a", Strategy: "round-robin", AllDown: "refuse", Passive: defaultPassive, Discovery: &Discovery{DNS: "a.example", DNSType: "a", Port: 1, Interval: time.Minute}},
				{Name: "b", Strategy: "round-robin", AllDown: "refuse", Passive: defaultPassive, Discovery: &Discovery{DNS: "a.example", DNSType: "a", Port: 1, Interval: time.Minute}},
				{Name: "c", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Discovery: &Discovery{DNS: "a.example", DNSType: "a", Port: 1, Interval: time.Minute}},
				{
					Name: "d", Strategy: "round-robin", AllDown: "refuse", Passive: defaultPassive,
					Discovery: &Discovery{Etcd: &Etcd{Endpoints: []string{"http://e:1"}, Prefix: "/", DialTimeout: time.Second}},
				},
				{
					Name: "e", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive,
					Discovery: &Discovery{Etcd: &Etcd{Endpoints: []string{"http://e:1"}, Prefix: "/", DialTimeout: time.Second}},
				},
				{Name: "f", Strategy: "round-robin", AllDown: "refuse", Passive: defaultPassive, Discovery: &Discovery{DNS: "f.example", DNSType: "srv", Interval: 30 * time.Second}},
			},
			Timeouts: defaultTimeouts,
		},
	},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q) = _, %v, want no error", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, *got, *tt.want)
			}
		})
	}
}

// A valid base for error cases, which change or add to it.
const okListeners = "listeners: [{listen: \":1\"}]\n"
const okPools = "pools: [{name: p, backends: [a:1]}]\n"

var parseErrorTests = []struct {
	name string
	in   string
	want []string // the lines of the error, exactly
}{
	// The document.
	{"empty", "", []string{"empty configuration: want a mapping of listeners, pools, timeouts, admin and engine"}},
	{"comments only", "# listeners:\n", []string{"empty configuration: want a mapping of listeners, pools, timeouts, admin and engine"}},
	{"null document", "---\n~\n", []string{"line 2: empty configuration: want a mapping of listeners, pools, timeouts, admin and engine"}},
	{"list document", "- a\n", []string{"line 1: want a mapping of listeners, pools, timeouts, admin and engine, got a list"}},
	{"scalar document", "tcplb", []string{`line 1: "tcplb": want a mapping of listeners, pools, timeouts, admin and engine`}},
	{"second document", okListeners + okPools + "---\nlisteners: []\n", []string{"line 3: found a second document; want only one"}},
	{"unknown top-level key", okListeners + okPools + "timeout: {idle: 1s}\n", []string{
		"line 3: timeout: unknown key (known: listeners, pools, timeouts, admin, engine)",
	}},
	{"non-string key", okListeners + okPools + "? [a]\n: b\n", []string{"line 3: want a string key, got a list"}},
	{"odd key", okListeners + okPools + "\"a\\nb\": 1\n", []string{
		`line 3: "a\nb": unknown key (known: listeners, pools, timeouts, admin, engine)`,
	}},
	{"unsupported tag", okListeners + okPools + "timeouts: !custom {idle: 1s}\n", []string{
		"line 3: timeouts: unsupported tag !custom",
	}},

	// Missing and mistyped sections.
	{"no listeners", okPools, []string{"listeners: at least one listener is required"}},
	{"empty listeners", "listeners: []\n" + okPools, []string{"line 1: listeners: at least one listener is required"}},
	{"no pools", okListeners, []string{"pools: at least one pool is required"}},
	{"pools is a mapping", okListeners + "pools: {name: p}\n", []string{"line 2: pools: want a list, got a mapping"}},
	{"pools is a scalar", okListeners + "pools: p\n", []string{`line 2: pools: "p": want a list`}},
	{"pool is a list", okListeners + "pools: [[a]]\n", []string{"line 2: pools[0]: want a mapping, got a list"}},
	{"timeouts is a list", okListeners + okPools + "timeouts: [1s]\n", []string{"line 3: timeouts: want a mapping, got a list"}},

	// Keys.
	{"unknown key", okListeners + "pools:\n  - name: p\n    bakends: [a:1]\n    backends: [a:1]\n", []string{
		"line 4: pools[0].bakends: unknown key (known: name, strategy, hash_balance_factor, all_down, slow_start, health, passive, proxy_protocol, discovery, backends)",
	}},
	{"duplicate key", okListeners + "pools:\n  - name: p\n    name: q\n    backends: [a:1]\n", []string{
		"line 4: pools[0].name: duplicate key",
	}},
	{"duplicate top-level key", okListeners + okPools + okPools, []string{"line 3: pools: duplicate key"}},

	// Pools and backends.
	{"pool without name", okListeners + "pools: [{backends: [a:1]}]\n", []string{"line 2: pools[0].name: required"}},
	{"duplicate pool name", "listeners: [{listen: \":1\", pool: app}]\npools:\n  - {name: app, backends: [a:1]}\n  - {name: app, backends: [a:1]}\n", []string{
		`line 4: pools[1].name: "app": duplicate pool name`,
	}},
	{"unknown strategy", okListeners + "pools: [{name: p, strategy: x, backends: [a:1]}]\n", []string{
		`line 2: pools[0].strategy: unknown strategy "x" (known: hash, least-conn, least-latency, p2c, random, round-robin)`,
	}},
	{"hash balance factor below 100", okListeners + "pools: [{name: p, strategy: hash, hash_balance_factor: 99, backends: [a:1]}]\n", []string{
		"line 2: pools[0].hash_balance_factor: 99: must be 0 (off) or at least 100",
	}},
	{"negative hash balance factor", okListeners + "pools: [{name: p, strategy: hash, hash_balance_factor: -125, backends: [a:1]}]\n", []string{
		"line 2: pools[0].hash_balance_factor: -125: must be 0 (off) or at least 100",
	}},
	{"hash balance factor without hash", okListeners + "pools:\n  - name: p\n    hash_balance_factor: 150\n    backends: [a:1]\n", []string{
		"line 4: pools[0].hash_balance_factor: 150: only applies to strategy hash, not round-robin",
	}},
	{"hash balance factor not an integer", okListeners + "pools: [{name: p, strategy: hash, hash_balance_factor: 1.25, backends: [a:1]}]\n", []string{
		"line 2: pools[0].hash_balance_factor: 1.25: want an integer",
	}},
	{"no backends", okListeners + "pools: [{name: p}]\n", []string{"line 2: pools[0].backends: at least one backend is required"}},
	{"empty backends", okListeners + "pools: [{name: p, backends: []}]\n", []string{"line 2: pools[0].backends: at least one backend is required"}},
	{"backends is a scalar", okListeners + "pools: [{name: p, backends: a:1}]\n", []string{`line 2: pools[0].backends: "a:1": want a list`}},
	{"backend is a list", okListeners + "pools: [{name: p, backends: [[a:1]]}]\n", []string{"line 2: pools[0].backends[0]: want a mapping, got a list"}},
	{"null backend", okListeners + "pools:\n  - name: p\n    backends:\n      - a:1\n      - ~\n", []string{
		"line 6: pools[0].backends[1].addr: required",
	}},
	{"backend without addr", okListeners + "pools:\n  - name: p\n    backends:\n      - weight: 2\n", []string{
		"line 5: pools[0].backends[0].addr: required",
	}},
	{"bad port", okListeners + "pools:\n  - name: p\n    backends:\n      - a:1\n      - { addr: \"x:y\" }\n", []string{
		`line 6: pools[0].backends[1].addr: "x:y": invalid port`,
	}},
	{"missing host", okListeners + "pools: [{name: p, backends: [\":1\"]}]\n", []string{`line 2: pools[0].backends[0].addr: ":1": missing host`}},
	{"missing port", okListeners + "pools: [{name: p, backends: [localhost]}]\n", []string{
		`line 2: pools[0].backends[0].addr: "localhost": missing port in address`,
	}},
	{"duplicate backend", okListeners + "pools: [{name: p, backends: [a:1, b:1, a:1]}]\n", []string{
		`line 2: pools[0].backends[2].addr: "a:1": duplicate backend address`,
	}},
	{"weight 0", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: 0}]}]\n", []string{
		"line 2: pools[0].backends[0].weight: 0: must be between 1 and 256",
	}},
	{"weight too big", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: 257}]}]\n", []string{
		"line 2: pools[0].backends[0].weight: 257: must be between 1 and 256",
	}},
	{"negative weight", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: -1}]}]\n", []string{
		"line 2: pools[0].backends[0].weight: -1: must be between 1 and 256",
	}},
	{"weight overflows int", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: 99999999999999999999}]}]\n", []string{
		"line 2: pools[0].backends[0].weight: 99999999999999999999: integer out of range",
	}},
	{"weight not integer", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: 1.5}]}]\n", []string{
		"line 2: pools[0].backends[0].weight: 1.5: want an integer",
	}},
	{"weight quoted", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: \"2\"}]}]\n", []string{
		`line 2: pools[0].backends[0].weight: "2": want an integer`,
	}},
	{"weight binary", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: !!binary AQ==}]}]\n", []string{
		`line 2: pools[0].backends[0].weight: "AQ==": unsupported tag !!binary`,
	}},
	{"name is a mapping", okListeners + "pools: [{name: {a: 1}, backends: [a:1]}]\n", []string{
		"line 2: pools[0].name: want a string, got a mapping",
	}},

	// Listeners.
	{"listener without listen", "listeners: [{name: x}]\n" + okPools, []string{"line 1: listeners[0].listen: required"}},
	{"listen without port", "listeners: [{listen: 8080}]\n" + okPools, []string{
		`line 1: listeners[0].listen: "8080": missing port in address`,
	}},
	{"listen port too big", "listeners: [{listen: \":65536\"}]\n" + okPools, []string{`line 1: listeners[0].listen: ":65536": invalid port`}},
	{"listen IPv6 without brackets", "listeners: [{listen: \"::1:80\"}]\n" + okPools, []string{
		`line 1: listeners[0].listen: "::1:80": too many colons in address`,
	}},
	{"no such pool", "listeners: [{listen: \":1\", pool: nope}]\npools: [{name: app, backends: [a:1]}, {name: web, backends: [a:1]}]\n", []string{
		`line 1: listeners[0].pool: "nope": no such pool (pools: app, web)`,
	}},
	{"pool required", okListeners + "pools: [{name: app, backends: [a:1]}, {name: web, backends: [a:1]}]\n", []string{
		"line 1: listeners[0].pool: required when there is more than one pool (pools: app, web)",
	}},
	{"duplicate listener name", "listeners: [{name: a, listen: \":1\"}, {name: a, listen: \":2\"}]\n" + okPools, []string{
		`line 1: listeners[1].name: "a": duplicate listener name`,
	}},
	{"duplicate listen address", "listeners: [{listen: \":1\"}, {listen: \":1\"}]\n" + okPools, []string{
		`line 1: listeners[1].listen: ":1": duplicate tcp listen address`,
	}},
	{"duplicate default name", "listeners: [{listen: \":0\"}, {listen: \":0\"}]\n" + okPools, []string{
		`line 1: listeners[1].name: ":0": duplicate listener name (it defaults to the listen address)`,
	}},

	// Timeouts.
	{"invalid duration", okListeners + okPools + "timeouts: {idle: abc}\n", []string{`line 3: timeouts.idle: "abc": invalid duration`}},
	{"duration as integer", okListeners + okPools + "timeouts: {connect: 5}\n", []string{"line 3: timeouts.connect: 5: want a duration like 5s"}},
	{"duration as quoted integer", okListeners + okPools + "timeouts: {connect: \"5\"}\n", []string{`line 3: timeouts.connect: "5": want a duration like 5s`}},
	{"duration as float", okListeners + okPools + "timeouts: {connect: 1.5}\n", []string{"line 3: timeouts.connect: 1.5: want a duration like 5s"}},
	{"duration overflow", okListeners + okPools + "timeouts: {drain: 9999999999h}\n", []string{`line 3: timeouts.drain: "9999999999h": invalid duration`}},
	{"duration is a list", okListeners + okPools + "timeouts: {drain: [1s]}\n", []string{"line 3: timeouts.drain: want a duration like 5s, got a list"}},
	{"zero connect", okListeners + okPools + "timeouts: {connect: 0}\n", []string{`line 3: timeouts.connect: "0s": must be greater than 0`}},
	{"negative durations", okListeners + okPools + "timeouts:\n  connect: -1s\n  idle: -1m\n  drain: -1h\n", []string{
		`line 4: timeouts.connect: "-1s": must be greater than 0`,
		`line 5: timeouts.idle: "-1m0s": must not be negative (0 disables the timeout)`,
		`line 6: timeouts.drain: "-1h0m0s": must not be negative`,
	}},

	// Checks and limits.
	{"bad all_down", okListeners + "pools: [{name: p, all_down: maybe, backends: [a:1]}]\n", []string{
		`line 2: pools[0].all_down: "maybe": want fail-open or refuse`,
	}},
	{"empty all_down", okListeners + "pools: [{name: p, all_down: \"\", backends: [a:1]}]\n", []string{
		`line 2: pools[0].all_down: "": want fail-open or refuse`,
	}},
	{"negative slow_start", okListeners + "pools: [{name: p, slow_start: -1s, backends: [a:1]}]\n", []string{
		`line 2: pools[0].slow_start: "-1s": must not be negative`,
	}},
	{"slow_start with hash", okListeners + "pools:\n  - name: p\n    strategy: hash\n    slow_start: 30s\n    backends: [a:1]\n", []string{
		`line 5: pools[0].slow_start: "30s": does not apply to strategy hash: ramping would move clients between backends`,
	}},
	{"slow_start as integer", okListeners + "pools: [{name: p, slow_start: 30, backends: [a:1]}]\n", []string{
		"line 2: pools[0].slow_start: 30: want a duration like 5s",
	}},
	{"health is a boolean", okListeners + "pools: [{name: p, health: true, backends: [a:1]}]\n", []string{
		"line 2: pools[0].health: true: want a mapping",
	}},
	{"health is a list", okListeners + "pools: [{name: p, health: [2s], backends: [a:1]}]\n", []string{
		"line 2: pools[0].health: want a mapping, got a list",
	}},
	{"unknown health key", okListeners + "pools: [{name: p, health: {intervall: 1s}, backends: [a:1]}]\n", []string{
		"line 2: pools[0].health.intervall: unknown key (known: interval, timeout, rise, fall, port, network, send, expect, send_hex, expect_hex, http)",
	}},
	{"bad health values", okListeners + `pools:
  - name: p
    health:
      interval: 0s
      timeout: -1s
      rise: 0
      fall: -1
      port: 65536
    backends: [a:1]
`, []string{
		`line 5: pools[0].health.interval: "0s": must be greater than 0`,
		`line 6: pools[0].health.timeout: "-1s": must not be negative (0 means the interval)`,
		"line 7: pools[0].health.rise: 0: must be at least 1",
		"line 8: pools[0].health.fall: -1: must be at least 1",
		"line 9: pools[0].health.port: 65536: must be between 1 and 65535, or 0 for the backend's port",
	}},
	{"negative health port", okListeners + "pools: [{name: p, health: {port: -1}, backends: [a:1]}]\n", []string{
		"line 2: pools[0].health.port: -1: must be between 1 and 65535, or 0 for the backend's port",
	}},
	{"health send is a list", okListeners + "pools: [{name: p, health: {send: [a]}, backends: [a:1]}]\n", []string{
		"line 2: pools[0].health.send: want a string, got a list",
	}},
	{"http with send", okListeners + "pools:\n  - name: p\n    health:\n      send: PING\n      http: {path: /}\n    backends: [a:1]\n", []string{
		"line 6: pools[0].health.http: cannot be combined with send or expect",
	}},
	{"http with expect", okListeners + "pools:\n  - name: p\n    health:\n      http: {}\n      expect: PONG\n    backends: [a:1]\n", []string{
		"line 5: pools[0].health.http: cannot be combined with send or expect",
	}},
	{"http is a scalar", okListeners + "pools: [{name: p, health: {http: /healthz}, backends: [a:1]}]\n", []string{
		`line 2: pools[0].health.http: "/healthz": want a mapping`,
	}},
	{"http path without slash", okListeners + "pools: [{name: p, health: {http: {path: healthz}}, backends: [a:1]}]\n", []string{
		`line 2: pools[0].health.http.path: "healthz": must start with "/"`,
	}},
	{"empty http path", okListeners + "pools: [{name: p, health: {http: {path: \"\"}}, backends: [a:1]}]\n", []string{
		`line 2: pools[0].health.http.path: "": must start with "/"`,
	}},
	{"http path with a space", okListeners + "pools: [{name: p, health: {http: {path: \"/a b\"}}, backends: [a:1]}]\n", []string{
		`line 2: pools[0].health.http.path: "/a b": must be printable ASCII without spaces`,
	}},
	{"http host with a newline", okListeners + "pools: [{name: p, health: {http: {host: \"a\\r\\nX: y\"}}, backends: [a:1]}]\n", []string{
		`line 2: pools[0].health.http.host: "a\r\nX: y": must be printable ASCII without spaces`,
	}},
	{"http status", "listeners: [{listen: \":1\", pool: p}]\npools:\n  - {name: p, health: {http: {status: 99}}, backends: [a:1]}\n  - {name: q, health: {http: {status: 600}}, backends: [a:1]}\n", []string{
		"line 3: pools[0].health.http.status: 99: must be between 100 and 599, or 0 for any 2xx or 3xx",
		"line 4: pools[1].health.http.status: 600: must be between 100 and 599, or 0 for any 2xx or 3xx",
	}},
	{"bad passive values", okListeners + `pools:
  - name: p
    passive:
      max_fails: 1
      fail_window: 0s
      cooldown: -1s
      max_cooldown: 0s
      max_ejection_percent: 101
    backends: [a:1]
`, []string{
		`line 6: pools[0].passive.fail_window: "0s": must be greater than 0`,
		`line 7: pools[0].passive.cooldown: "-1s": must be greater than 0`,
		`line 8: pools[0].passive.max_cooldown: "0s": must be greater than 0`,
		"line 9: pools[0].passive.max_ejection_percent: 101: must be between 1 and 100",
	}},
	{"max_cooldown below cooldown", okListeners + "pools:\n  - name: p\n    passive:\n      cooldown: 1m\n      max_cooldown: 30s\n    backends: [a:1]\n", []string{
		`line 6: pools[0].passive.max_cooldown: "30s": must be at least cooldown ("1m0s")`,
	}},
	{"max_cooldown below default cooldown", okListeners + "pools: [{name: p, passive: {max_cooldown: 5s}, backends: [a:1]}]\n", []string{
		`line 2: pools[0].passive.max_cooldown: "5s": must be at least cooldown ("10s")`,
	}},
	{"cooldown above default max_cooldown", okListeners + "pools:\n  - name: p\n    passive: {cooldown: 10m}\n    backends: [a:1]\n", []string{
		`line 4: pools[0].passive.max_cooldown: "5m0s": must be at least cooldown ("10m0s")`,
	}},
	{"negative max_fails", okListeners + "pools: [{name: p, passive: {max_fails: -1, cooldown: 0s}, backends: [a:1]}]\n", []string{
		"line 2: pools[0].passive.max_fails: -1: must not be negative (0 disables passive checks)",
	}},
	{"negative udp_unanswered", okListeners + "pools: [{name: p, passive: {udp_unanswered: -2}, backends: [a:1]}]\n", []string{
		"line 2: pools[0].passive.udp_unanswered: -2: must not be negative (0: off)",
	}},
	{"zero max_ejection_percent", okListeners + "pools: [{name: p, passive: {max_ejection_percent: 0}, backends: [a:1]}]\n", []string{
		"line 2: pools[0].passive.max_ejection_percent: 0: must be between 1 and 100",
	}},
	{"passive is a scalar", okListeners + "pools: [{name: p, passive: off, backends: [a:1]}]\n", []string{
		`line 2: pools[0].passive: "off": want a mapping`,
	}},
	{"negative max_conns", okListeners + "pools: [{name: p, backends: [{addr: a:1, max_conns: -1}]}]\n", []string{
		"line 2: pools[0].backends[0].max_conns: -1: must not be negative",
	}},
	{"max_conns not an integer", okListeners + "pools: [{name: p, backends: [{addr: a:1, max_conns: lots}]}]\n", []string{
		`line 2: pools[0].backends[0].max_conns: "lots": want an integer`,
	}},
	{"negative queue", okListeners + okPools + "timeouts: {queue: -1s}\n", []string{
		`line 3: timeouts.queue: "-1s": must not be negative`,
	}},
	{"queue as integer", okListeners + okPools + "timeouts: {queue: 5}\n", []string{
		"line 3: timeouts.queue: 5: want a duration like 5s",
	}},
	{"bad merged health", "listeners: [{listen: \":1\", pool: a}]\npools:\n  - &a {name: a, health: {rise: 0}, backends: [x:1]}\n  - {<<: *a, name: b}\n", []string{
		"line 3: pools[0].health.rise: 0: must be at least 1",
		"line 3: pools[1].health.rise: 0: must be at least 1",
	}},

	// PROXY protocol, access lists, limits and SNI routes.
	{"unknown listener key", "listeners: [{listen: \":1\", proxy: accept}]\n" + okPools, []string{
		"line 1: listeners[0].proxy: unknown key (known: name, protocol, listen, pool, proxy_protocol, trusted, allow, deny, max_conns, max_conns_per_source, rate_per_source, burst_per_source, sni_routes, sni_fallback, udp_responses, max_sessions, max_sessions_per_source, max_datagram)",
	}},
	{"listener proxy_protocol", "listeners: [{listen: \":1\", proxy_protocol: v2, trusted: [10.0.0.1]}]\n" + okPools, []string{
		`line 1: listeners[0].proxy_protocol: "v2": want accept or optional (sending headers is a pool's proxy_protocol: v1 or v2)`,
	}},
	{"pool proxy_protocol", okListeners + "pools: [{name: p, proxy_protocol: accept, backends: [a:1]}]\n", []string{
		`line 2: pools[0].proxy_protocol: "accept": want v1 or v2 (accepting headers is a listener's proxy_protocol)`,
	}},
	{"pool proxy_protocol as a number", okListeners + "pools: [{name: p, proxy_protocol: 2, backends: [a:1]}]\n", []string{
		`line 2: pools[0].proxy_protocol: "2": want v1 or v2 (accepting headers is a listener's proxy_protocol)`,
	}},
	{"proxy_protocol without trusted", "listeners:\n  - listen: \":1\"\n    proxy_protocol: accept\n" + okPools, []string{
		"line 2: listeners[0].trusted: required with proxy_protocol accept: the upstreams allowed to send PROXY headers",
	}},
	{"proxy_protocol with empty trusted", "listeners:\n  - listen: \":1\"\n    proxy_protocol: optional\n    trusted: []\n" + okPools, []string{
		"line 4: listeners[0].trusted: required with proxy_protocol optional: the upstreams allowed to send PROXY headers",
	}},
	{"trusted without proxy_protocol", "listeners:\n  - listen: \":1\"\n    trusted: [10.0.0.1]\n" + okPools, []string{
		"line 3: listeners[0].trusted: only applies with proxy_protocol (accept or optional)",
	}},
	{"trusted is a scalar", "listeners: [{listen: \":1\", proxy_protocol: accept, trusted: 10.0.0.0/8}]\n" + okPools, []string{
		`line 1: listeners[0].trusted: "10.0.0.0/8": want a list`,
	}},
	{"bad CIDRs", `listeners:
  - listen: ":1"
    proxy_protocol: accept
    trusted:
      - 10.0.0.1/8
    allow:
      - 10.0.0.0/8
      - "2001:db8::/32"
      - "2001:db8::1/32"
      - "fe80::1%eth0"
      - "::ffff:10.0.0.0/104"
    deny: [10.0.0.0/33, "", localhost, {a: 1}]
` + okPools, []string{
		`line 5: listeners[0].trusted[0]: "10.0.0.1/8": host bits set (did you mean 10.0.0.0/8?)`,
		`line 9: listeners[0].allow[2]: "2001:db8::1/32": host bits set (did you mean 2001:db8::/32?)`,
		`line 10: listeners[0].allow[3]: "fe80::1%eth0": an IPv6 zone is not allowed`,
		`line 11: listeners[0].allow[4]: "::ffff:10.0.0.0/104": IPv4-mapped IPv6, which no client is matched as (did you mean 10.0.0.0/8?)`,
		"line 12: listeners[0].deny[3]: want a string, got a mapping", // decoding errors first
		`line 12: listeners[0].deny[0]: "10.0.0.0/33": not a CIDR`,
		`line 12: listeners[0].deny[1]: "": not an address or a CIDR`,
		`line 12: listeners[0].deny[2]: "localhost": not an address or a CIDR`,
	}},
	{"negative limits", "listeners:\n  - listen: \":1\"\n    max_conns: -1\n    max_conns_per_source: -1\n    rate_per_source: -1\n    burst_per_source: -1\n" + okPools, []string{
		"line 3: listeners[0].max_conns: -1: must not be negative (0: no limit)",
		"line 4: listeners[0].max_conns_per_source: -1: must not be negative (0: no limit)",
		"line 5: listeners[0].rate_per_source: -1: must not be negative (0: no limit)",
		"line 6: listeners[0].burst_per_source: -1: must not be negative (0: the rate, at least 1)",
	}},
	{"limits not integers", "listeners: [{listen: \":1\", max_conns: 1.5, max_conns_per_source: lots, burst_per_source: 1e3}]\n" + okPools, []string{
		"line 1: listeners[0].max_conns: 1.5: want an integer",
		`line 1: listeners[0].max_conns_per_source: "lots": want an integer`,
		"line 1: listeners[0].burst_per_source: 1e3: want an integer",
	}},
	{"burst without rate", "listeners:\n  - listen: \":1\"\n    burst_per_source: 5\n" + okPools, []string{
		"line 3: listeners[0].burst_per_source: 5: only applies with rate_per_source",
	}},
	{"burst with zero rate", "listeners:\n  - listen: \":1\"\n    rate_per_source: 0.0\n    burst_per_source: 5\n" + okPools, []string{
		"line 4: listeners[0].burst_per_source: 5: only applies with rate_per_source",
	}},
	{"rate not a number", `listeners:
  - {listen: ":1", rate_per_source: fast}
  - {listen: ":2", rate_per_source: "2"}
  - {listen: ":3", rate_per_source: true}
  - {listen: ":4", rate_per_source: [1]}
  - {listen: ":5", rate_per_source: {a: 1}}
  - {listen: ":6", rate_per_source: 1e400}
  - {listen: ":7", rate_per_source: 2024-01-01}
  - {listen: ":8", rate_per_source: !!binary AQ==}
  - {listen: ":9", rate_per_source: !!float 1e400}
  - {listen: ":10", rate_per_source: "1e400"}
  - {listen: ":11", rate_per_source: !!float 0x1p-2}
` + okPools, []string{
		`line 2: listeners[0].rate_per_source: "fast": want a number`,
		`line 3: listeners[1].rate_per_source: "2": want a number`,
		"line 4: listeners[2].rate_per_source: true: want a number",
		"line 5: listeners[3].rate_per_source: want a number, got a list",
		"line 6: listeners[4].rate_per_source: want a number, got a mapping",
		"line 7: listeners[5].rate_per_source: 1e400: number out of range",
		`line 8: listeners[6].rate_per_source: "2024-01-01": want a number`,
		`line 9: listeners[7].rate_per_source: "AQ==": unsupported tag !!binary`,
		"line 10: listeners[8].rate_per_source: 1e400: number out of range",
		`line 11: listeners[9].rate_per_source: "1e400": want a number`,
		"line 12: listeners[10].rate_per_source: 0x1p-2: want a number",
	}},
	{"rate infinite or NaN", `listeners:
  - {listen: ":1", rate_per_source: .nan}
  - {listen: ":2", rate_per_source: .inf}
  - {listen: ":3", rate_per_source: -.Inf}
  - {listen: ":4", rate_per_source: +.INF}
  - {listen: ":5", rate_per_source: .NaN, burst_per_source: 1}
  - {listen: ":6", rate_per_source: !!float inf}
` + okPools, []string{
		"line 2: listeners[0].rate_per_source: NaN: want a number of connections per second, 0 for no limit",
		"line 3: listeners[1].rate_per_source: +Inf: want a number of connections per second, 0 for no limit",
		"line 4: listeners[2].rate_per_source: -Inf: want a number of connections per second, 0 for no limit",
		"line 5: listeners[3].rate_per_source: +Inf: want a number of connections per second, 0 for no limit",
		"line 6: listeners[4].rate_per_source: NaN: want a number of connections per second, 0 for no limit",
		"line 7: listeners[5].rate_per_source: +Inf: want a number of connections per second, 0 for no limit",
	}},
	{"bad sni_fallback", "listeners:\n  - listen: \":1\"\n    sni_fallback: drop\n  - listen: \":2\"\n    sni_fallback: \"\"\n" + okPools, []string{
		`line 3: listeners[0].sni_fallback: "drop": want pool or close`,
		`line 5: listeners[1].sni_fallback: "": want pool or close`,
	}},
	{"sni_fallback close without routes", "listeners:\n  - listen: \":1\"\n    sni_fallback: close\n    sni_routes: []\n" + okPools, []string{
		`line 3: listeners[0].sni_fallback: "close": only applies with sni_routes`,
	}},
	{"bad server names", `listeners:
  - listen: ":1"
    sni_routes:
      - {server_name: "", pool: p}
      - {server_name: "*", pool: p}
      - {server_name: a.*.b, pool: p}
      - {server_name: "*x.com", pool: p}
      - {server_name: a..b, pool: p}
      - {server_name: -a.com, pool: p}
      - {server_name: ` + strings.Repeat("a", 64) + `.com, pool: p}
      - {server_name: a b.com, pool: p}
      - {server_name: 443, pool: p}
      - {pool: p}
` + okPools, []string{
		"line 4: listeners[0].sni_routes[0].server_name: required",
		`line 5: listeners[0].sni_routes[1].server_name: "*": want a host name, or *. and a host name`,
		`line 6: listeners[0].sni_routes[2].server_name: "a.*.b": want a host name, or *. and a host name`,
		`line 7: listeners[0].sni_routes[3].server_name: "*x.com": want a host name, or *. and a host name`,
		`line 8: listeners[0].sni_routes[4].server_name: "a..b": want a host name, or *. and a host name`,
		`line 9: listeners[0].sni_routes[5].server_name: "-a.com": want a host name, or *. and a host name`,
		`line 10: listeners[0].sni_routes[6].server_name: "` + strings.Repeat("a", 61) + `...": want a host name, or *. and a host name`,
		`line 11: listeners[0].sni_routes[7].server_name: "a b.com": want a host name, or *. and a host name`,
		"line 13: listeners[0].sni_routes[9].server_name: required",
	}},
	{"duplicate server names", `listeners:
  - listen: ":1"
    sni_routes:
      - {server_name: a.example, pool: p}
      - {server_name: "*.a.example", pool: p}
      - {server_name: A.EXAMPLE, pool: p}
      - {server_name: a.example., pool: p}
      - {server_name: "*.A.Example", pool: p}
` + okPools, []string{
		`line 6: listeners[0].sni_routes[2].server_name: "A.EXAMPLE": duplicate server name`,
		`line 7: listeners[0].sni_routes[3].server_name: "a.example.": duplicate server name`,
		`line 8: listeners[0].sni_routes[4].server_name: "*.A.Example": duplicate server name`,
	}},
	{"sni route pools", `listeners:
  - listen: ":1"
    pool: p
    sni_routes:
      - {server_name: a.example, pool: q}
      - {server_name: b.example, pool: nope}
      - {server_name: c.example}
      - {server_name: d.example, pool: ""}
pools: [{name: p, backends: [a:1]}, {name: q, backends: [a:1]}]
`, []string{
		`line 6: listeners[0].sni_routes[1].pool: "nope": no such pool (pools: p, q)`,
		"line 7: listeners[0].sni_routes[2].pool: required",
		"line 8: listeners[0].sni_routes[3].pool: required",
	}},
	{"unknown sni route key", "listeners: [{listen: \":1\", sni_routes: [{sni: a.example, pool: p}]}]\n" + okPools, []string{
		"line 1: listeners[0].sni_routes[0].sni: unknown key (known: server_name, pool)",
		"line 1: listeners[0].sni_routes[0].server_name: required",
	}},
	{"sni route is a scalar", "listeners: [{listen: \":1\", sni_routes: [a.example]}]\n" + okPools, []string{
		`line 1: listeners[0].sni_routes[0]: "a.example": want a mapping`,
	}},
	{"sni_routes is a mapping", "listeners: [{listen: \":1\", sni_routes: {a.example: p}}]\n" + okPools, []string{
		"line 1: listeners[0].sni_routes: want a list, got a mapping",
	}},
	{"bad edge timeouts", okListeners + okPools + "timeouts:\n  proxy_header: 0s\n  client_hello: -1s\n", []string{
		`line 4: timeouts.proxy_header: "0s": must be greater than 0`,
		`line 5: timeouts.client_hello: "-1s": must be greater than 0`,
	}},
	{"edge timeouts as integers", okListeners + okPools + "timeouts: {proxy_header: 3, client_hello: 0}\n", []string{
		"line 3: timeouts.proxy_header: 3: want a duration like 5s",
		`line 3: timeouts.client_hello: "0s": must be greater than 0`,
	}},

	// Discovery.
	{"unknown discovery key", okListeners + "pools: [{name: p, discovery: {path: /a}}]\n", []string{
		"line 2: pools[0].discovery.path: unknown key (known: file, dns, dns_type, port, interval, dns_server, etcd)",
		"line 2: pools[0].discovery: one of file, dns or etcd is required",
	}},
	{"discovery is a scalar", okListeners + "pools: [{name: p, discovery: /etc/app.txt}]\n", []string{
		`line 2: pools[0].discovery: "/etc/app.txt": want a mapping`,
	}},
	{"discovery is a list", okListeners + "pools: [{name: p, discovery: [{file: /a}]}]\n", []string{
		"line 2: pools[0].discovery: want a mapping, got a list",
	}},
	{"discovery with backends", okListeners + "pools:\n  - name: p\n    discovery:\n      file: /a\n    backends: [a:1]\n", []string{
		"line 5: pools[0].discovery: backends and discovery cannot both be set",
	}},
	{"null discovery needs backends", okListeners + "pools: [{name: p, discovery: ~}]\n", []string{
		"line 2: pools[0].backends: at least one backend is required",
	}},
	{"empty discovery", okListeners + "pools:\n  - name: p\n    discovery: {}\n", []string{
		"line 4: pools[0].discovery: one of file, dns or etcd is required",
	}},
	{"discovery with empty or null values", okListeners + "pools:\n  - name: p\n    discovery:\n      file: \"\"\n      dns: ~\n      etcd: ~\n", []string{
		"line 5: pools[0].discovery: one of file, dns or etcd is required",
	}},
	{"discovery alternatives", "listeners: [{listen: \":1\", pool: p}]\npools:\n  - name: p\n    discovery: {file: /a, dns: a.example, port: 1}\n  - name: q\n    discovery:\n      file: /a\n      etcd: {endpoints: [\"http://e:1\"], prefix: /}\n", []string{
		"line 4: pools[0].discovery: file, dns and etcd are alternatives: set one",
		"line 7: pools[1].discovery: file, dns and etcd are alternatives: set one",
	}},
	{"discovery file is a list", okListeners + "pools: [{name: p, discovery: {file: [/a]}}]\n", []string{
		"line 2: pools[0].discovery.file: want a string, got a list",
		"line 2: pools[0].discovery: one of file, dns or etcd is required",
	}},
	{"dns keys without dns", okListeners + `pools:
  - name: p
    discovery:
      file: /etc/tcplb/app.txt
      dns_type: srv
      port: 5432
      interval: 10s
      dns_server: 10.0.0.53:53
`, []string{
		`line 6: pools[0].discovery.dns_type: "srv": only applies with dns`,
		"line 7: pools[0].discovery.port: 5432: only applies with dns",
		`line 8: pools[0].discovery.interval: "10s": only applies with dns`,
		`line 9: pools[0].discovery.dns_server: "10.0.0.53:53": only applies with dns`,
	}},
	{"bad dns names", "listeners: [{listen: \":1\", pool: p0}]\npools:\n" +
		"  - {name: p0, discovery: {dns: \"*.example.com\", port: 1}}\n" +
		"  - {name: p1, discovery: {dns: a..example, port: 1}}\n" +
		"  - {name: p2, discovery: {dns: -a.example, port: 1}}\n" +
		"  - {name: p3, discovery: {dns: a b.example, port: 1}}\n" +
		"  - {name: p4, discovery: {dns: a.example:5432, port: 1}}\n" +
		"  - {name: p5, discovery: {dns: " + strings.Repeat("a", 64) + ".example, port: 1}}\n" +
		"  - {name: p6, discovery: {dns: \"\\u212a.example\", port: 1}}\n" +
		"  - {name: p7, discovery: {dns: ., port: 1}}\n", []string{
		`line 3: pools[0].discovery.dns: "*.example.com": want a host name`,
		`line 4: pools[1].discovery.dns: "a..example": want a host name`,
		`line 5: pools[2].discovery.dns: "-a.example": want a host name`,
		`line 6: pools[3].discovery.dns: "a b.example": want a host name`,
		`line 7: pools[4].discovery.dns: "a.example:5432": want a host name`,
		`line 8: pools[5].discovery.dns: "` + strings.Repeat("a", 61) + `...": want a host name`,
		"line 9: pools[6].discovery.dns: \"\u212a.example\": want a host name",
		`line 10: pools[7].discovery.dns: ".": want a host name`,
	}},
	{"bad dns_type", "listeners: [{listen: \":1\", pool: p}]\npools:\n  - {name: p, discovery: {dns: a.example, dns_type: mx, port: 1}}\n  - {name: q, discovery: {dns: a.example, dns_type: SRV, port: 70000}}\n", []string{
		`line 3: pools[0].discovery.dns_type: "mx": want a or srv`,
		`line 4: pools[1].discovery.dns_type: "SRV": want a or srv`,
		"line 4: pools[1].discovery.port: 70000: must be between 1 and 65535",
	}},
	{"dns without port", okListeners + "pools:\n  - name: p\n    discovery:\n      dns: db.example\n      dns_type: a\n", []string{
		"line 5: pools[0].discovery.port: required with dns_type a: the port of the backends",
	}},
	{"dns port out of range", "listeners: [{listen: \":1\", pool: p}]\npools:\n  - {name: p, discovery: {dns: a.example, port: 65536}}\n  - {name: q, discovery: {dns: a.example, port: -1}}\n  - {name: r, discovery: {dns: a.example, port: 0}}\n", []string{
		"line 3: pools[0].discovery.port: 65536: must be between 1 and 65535",
		"line 4: pools[1].discovery.port: -1: must be between 1 and 65535",
		"line 5: pools[2].discovery.port: required with dns_type a: the port of the backends",
	}},
	{"dns port not an integer", okListeners + "pools: [{name: p, discovery: {dns: a.example, port: postgres}}]\n", []string{
		`line 2: pools[0].discovery.port: "postgres": want an integer`,
	}},
	{"port with srv", okListeners + "pools:\n  - name: p\n    discovery:\n      dns: _pg._tcp.example\n      dns_type: srv\n      port: 5432\n", []string{
		"line 7: pools[0].discovery.port: 5432: not allowed with dns_type srv, whose records carry the ports",
	}},
	{"bad intervals", "listeners: [{listen: \":1\", pool: p}]\npools:\n  - {name: p, discovery: {dns: a.example, port: 1, interval: 999ms}}\n  - {name: q, discovery: {dns: a.example, port: 1, interval: -1s}}\n  - {name: r, discovery: {dns: a.example, port: 1, interval: 30}}\n", []string{
		`line 3: pools[0].discovery.interval: "999ms": must be at least 1s (0 means 30s)`,
		`line 4: pools[1].discovery.interval: "-1s": must be at least 1s (0 means 30s)`,
		"line 5: pools[2].discovery.interval: 30: want a duration like 5s",
	}},
	{"bad dns servers", "listeners: [{listen: \":1\", pool: p0}]\npools:\n" +
		"  - {name: p0, discovery: {dns: a.example, port: 1, dns_server: 10.0.0.53}}\n" +
		"  - {name: p1, discovery: {dns: a.example, port: 1, dns_server: \"ns.example:53\"}}\n" +
		"  - {name: p2, discovery: {dns: a.example, port: 1, dns_server: \":53\"}}\n" +
		"  - {name: p3, discovery: {dns: a.example, port: 1, dns_server: \"10.0.0.53:0\"}}\n" +
		"  - {name: p4, discovery: {dns: a.example, port: 1, dns_server: \"10.0.0.53:dns\"}}\n" +
		"  - {name: p5, discovery: {dns: a.example, port: 1, dns_server: \"2001:db8::53:53\"}}\n" +
		"  - {name: p6, discovery: {dns: a.example, port: 1, dns_server: \"[2001:db8::53]\"}}\n" +
		"  - {name: p7, discovery: {dns: a.example, port: 1, dns_server: \"\"}}\n", []string{
		`line 3: pools[0].discovery.dns_server: "10.0.0.53": missing port in address`,
		`line 4: pools[1].discovery.dns_server: "ns.example:53": want an IP address and a port, as in 10.0.0.53:53 or [2001:db8::53]:53`,
		`line 5: pools[2].discovery.dns_server: ":53": want an IP address and a port, as in 10.0.0.53:53 or [2001:db8::53]:53`,
		`line 6: pools[3].discovery.dns_server: "10.0.0.53:0": invalid port`,
		`line 7: pools[4].discovery.dns_server: "10.0.0.53:dns": invalid port`,
		`line 8: pools[5].discovery.dns_server: "2001:db8::53:53": too many colons in address`,
		`line 9: pools[6].discovery.dns_server: "[2001:db8::53]": missing port in address`,
	}},
	{"empty etcd", okListeners + "pools:\n  - name: p\n    discovery:\n      etcd: {}\n", []string{
		"line 5: pools[0].discovery.etcd.endpoints: at least one endpoint is required",
		"line 5: pools[0].discovery.etcd.prefix: required",
	}},
	{"etcd is a scalar", okListeners + "pools: [{name: p, discovery: {etcd: \"http://e:1\"}}]\n", []string{
		`line 2: pools[0].discovery.etcd: "http://e:1": want a mapping`,
	}},
	{"etcd endpoints is a scalar", okListeners + "pools: [{name: p, discovery: {etcd: {endpoints: \"http://e:1\", prefix: /}}}]\n", []string{
		`line 2: pools[0].discovery.etcd.endpoints: "http://e:1": want a list`,
	}},
	{"bad etcd", okListeners + `pools:
  - name: p
    discovery:
      etcd:
        endpoints:
          - 127.0.0.1:2379
          - ftp://e:1
          - HTTP://e:1
          - http://:2379
          - http://e
          - "http://e:"
          - http://e:0
          - http://e:65536
          - http://e:x
          - http://u:p@e:1
          - http://e:1/v3
          - http://e:1?x=1
          - http://e:1#x
          - http://e:1
          - https://e:1
          - http://e:1
        prefix: tcplb/app/
        dial_timeout: 0s
`, []string{
		`line 7: pools[0].discovery.etcd.endpoints[0]: "127.0.0.1:2379": want an http:// or https:// URL with a host and a port, as in http://127.0.0.1:2379`,
		`line 8: pools[0].discovery.etcd.endpoints[1]: "ftp://e:1": want an http:// or https:// URL with a host and a port, as in http://127.0.0.1:2379`,
		`line 9: pools[0].discovery.etcd.endpoints[2]: "HTTP://e:1": want an http:// or https:// URL with a host and a port, as in http://127.0.0.1:2379`,
		`line 10: pools[0].discovery.etcd.endpoints[3]: "http://:2379": missing host`,
		`line 11: pools[0].discovery.etcd.endpoints[4]: "http://e": missing port`,
		`line 12: pools[0].discovery.etcd.endpoints[5]: "http://e:": missing port`,
		`line 13: pools[0].discovery.etcd.endpoints[6]: "http://e:0": invalid port`,
		`line 14: pools[0].discovery.etcd.endpoints[7]: "http://e:65536": invalid port`,
		`line 15: pools[0].discovery.etcd.endpoints[8]: "http://e:x": want an http:// or https:// URL with a host and a port, as in http://127.0.0.1:2379`,
		`line 16: pools[0].discovery.etcd.endpoints[9]: "http://u:p@e:1": want only a scheme, a host and a port`,
		`line 17: pools[0].discovery.etcd.endpoints[10]: "http://e:1/v3": want only a scheme, a host and a port`,
		`line 18: pools[0].discovery.etcd.endpoints[11]: "http://e:1?x=1": want only a scheme, a host and a port`,
		`line 19: pools[0].discovery.etcd.endpoints[12]: "http://e:1#x": want only a scheme, a host and a port`,
		`line 22: pools[0].discovery.etcd.endpoints[15]: "http://e:1": duplicate endpoint`,
		`line 23: pools[0].discovery.etcd.prefix: "tcplb/app/": must start with "/"`,
		`line 24: pools[0].discovery.etcd.dial_timeout: "0s": must be greater than 0`,
	}},
	{"discovery keeps the pool rules", okListeners + "pools:\n  - name: p\n    strategy: hash\n    slow_start: 30s\n    hash_balance_factor: 50\n    proxy_protocol: v3\n    discovery: {file: /a}\n", []string{
		`line 5: pools[0].slow_start: "30s": does not apply to strategy hash: ramping would move clients between backends`,
		"line 6: pools[0].hash_balance_factor: 50: must be 0 (off) or at least 100",
		`line 7: pools[0].proxy_protocol: "v3": want v1 or v2 (accepting headers is a listener's proxy_protocol)`,
	}},

	// Aliases.
	{"alias of the wrong kind", "listeners: &l\n  - {listen: \":1\", pool: *l}\n" + okPools, []string{
		"line 2: listeners[0].pool: want a string, got a list",
	}},
	{"merge of itself", okListeners + "pools:\n  - &p\n    <<: *p\n    name: p\n    backends: [a:1]\n", []string{
		"line 4: pools[0]: alias *p refers to a node that contains it",
	}},
	{"merge of a scalar", okListeners + "pools:\n  - <<: x\n    name: p\n    backends: [a:1]\n", []string{
		`line 3: pools[0]: "x": want a mapping`,
	}},
	{"merge with unknown key", okListeners + "x: &x {port: 1}\npools:\n  - <<: *x\n    name: p\n    backends: [a:1]\n", []string{
		"line 2: x: unknown key (known: listeners, pools, timeouts, admin, engine)",
		"line 2: pools[0].port: unknown key (known: name, strategy, hash_balance_factor, all_down, slow_start, health, passive, proxy_protocol, discovery, backends)",
	}},

	// Junk.
	{"deep nesting", okListeners + "pools: " + strings.Repeat("[", 500) + strings.Repeat("]", 500) + "\n", []string{
		"line 2: pools[0]: want a mapping, got a list",
	}},
	{"deep mappings", okListeners + okPools + "timeouts: " + strings.Repeat("{a: ", 500) + strings.Repeat("}", 500) + "\n", []string{
		"line 3: timeouts.a: unknown key (known: connect, idle, drain, queue, proxy_header, client_hello, udp_idle)",
	}},

	// Many errors at once, in line order, without knock-on errors.
	{"several", `
listeners:
  - listen: 127.0.0.1:8080
    pool: nope
pools:
  - name: app
    strategy: x
    backends:
      - { addr: x:y, weight: 0 }
  - name: web
    backends: {addr: a:1}
timeouts:
  idle: abc
`, []string{
		`line 4: listeners[0].pool: "nope": no such pool (pools: app, web)`,
		`line 7: pools[0].strategy: unknown strategy "x" (known: hash, least-conn, least-latency, p2c, random, round-robin)`,
		`line 9: pools[0].backends[0].addr: "x:y": invalid port`,
		`line 9: pools[0].backends[0].weight: 0: must be between 1 and 256`,
		`line 11: pools[1].backends: want a list, got a mapping`,
		`line 13: timeouts.idle: "abc": invalid duration`,
	}},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			want := strings.Join(tt.want, "\n")
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, nil, want error:\n%s", tt.in, *got, want)
			}
			if got != nil || err.Error() != want {
				t.Errorf("Parse(%q) = %v, error:\n%v\nwant nil, error:\n%s", tt.in, got, err, want)
			}
		})
	}
}

func TestParseSyntaxError(t *testing.T) {
	for _, in := range []string{
		"listeners: [\n",
		"pools:\n  - name: a\n   backends: []\n",
		"a: *nope\n",
		"a: b: c\n",
		"\tlisteners: []\n",
		"a: \"\x00\"\n",
		strings.Repeat("[", 20000),
		"pools: " + strings.Repeat("- ", 20000) + "x\n",
	} {
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), "invalid YAML: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = _, %v, want one line with \"invalid YAML: \"", in, err)
		}
	}
}

func TestParseTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString(okListeners + "pools:\n  - name: p\n    backends:\n")
	for i := range 30 {
		fmt.Fprintf(&b, "      - {addr: a:%d, weight: 0}\n", i+1)
	}
	_, err := Parse([]byte(b.String()))
	if err == nil {
		t.Fatalf("Parse(30 bad weights) = _, nil, want errors")
	}
	lines := strings.Split(err.Error(), "\n")
	wantLast := "too many errors (10 more)"
	if len(lines) != maxErrors+1 || lines[maxErrors] != wantLast ||
		lines[0] != "line 5: pools[0].backends[0].weight: 0: must be between 1 and 256" {
		t.Errorf("Parse(30 bad weights) = _, %d lines ending %q, want %d lines ending %q", len(lines), lines[len(lines)-1], maxErrors+1, wantLast)
	}
}

// Aliases let a small document describe a huge one; decoding must give up
// rather than take exponential time or memory.
func TestParseAliasBomb(t *testing.T) {
	var merges, lists strings.Builder
	merges.WriteString(okListeners + "pools:\n  - &m0 {name: p, backends: [a:1]}\n")
	lists.WriteString(okListeners + "pools:\n  - &p\n    name: p\n    backends:\n")
	for i := range 1000 {
		fmt.Fprintf(&lists, "      - a:%d\n", i+1)
	}
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&merges, "  - &m%d {<<: [*m%[2]d, *m%[2]d, *m%[2]d, *m%[2]d]}\n", i, i-1)
	}
	for range 1000 {
		lists.WriteString("  - *p\n")
	}
	for name, in := range map[string]string{"merges": merges.String(), "lists": lists.String()} {
		start := time.Now()
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), "too many aliases to expand") {
			t.Errorf("Parse(%s bomb) = _, %v, want too many aliases to expand", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Parse(%s bomb) took %v", name, d)
		}
	}
}

// TestHealthPayloads parses a UDP check's payloads, written as YAML
// escapes and in hex, into the bytes the check sends and expects.
func TestHealthPayloads(t *testing.T) {
	tests := []struct {
		name         string
		health       string // the pool's health mapping
		send, expect string // Payloads(), wanted
	}{
		{"plain", `{network: udp, send: "PING\r\n", expect: PONG}`, "PING\r\n", "PONG"},
		{"escapes to 0x7f are bytes", `{network: udp, send: "\x00\x01\x7f"}`, "\x00\x01\x7f", ""},
		// YAML's \x85 is the character U+0085: two bytes in UTF-8.
		{"escapes from 0x80 are characters", `{network: udp, send: "\x85"}`, "\xc2\x85", ""},
		{"hex", `{network: udp, send_hex: "12 34 01 00", expect_hex: "1234 8580"}`, "\x12\x34\x01\x00", "\x12\x34\x85\x80"},
		{"hex over lines", "\n      network: udp\n      send: x\n      expect_hex: >-\n        12 34\n        85 80\n", "x", "\x12\x34\x85\x80"},
		{"upper-case hex", `{network: udp, send_hex: "FF", expect_hex: "aB"}`, "\xff", "\xab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "listeners: [{listen: \":1\", protocol: udp}]\npools:\n  - name: p\n    backends: [a:1]\n    health: " + tt.health + "\n"
			c, err := Parse([]byte(in))
			if err != nil {
				t.Fatalf("Parse(%q) = _, %v, want no error", in, err)
			}
			send, expect := c.Pools[0].Health.Payloads()
			if send != tt.send || expect != tt.expect {
				t.Errorf("Parse(%q): Payloads() = %q, %q, want %q, %q", in, send, expect, tt.send, tt.expect)
			}
		})
	}
}
