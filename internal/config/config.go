package config

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tcplb/tcplb"
)

// Config is the whole configuration of the daemon.
type Config struct {
	// Listeners are the addresses to accept connections on, each forwarding
	// to a pool. At least one is required.
	Listeners []Listener `yaml:"listeners"`

	// Pools are the named sets of backends that listeners forward to. At
	// least one is required.
	Pools []Pool `yaml:"pools"`

	// Timeouts apply to every listener. Each has a default.
	Timeouts Timeouts `yaml:"timeouts"`

	// Admin, if present, turns on the admin HTTP listener: Prometheus
	// metrics, the JSON API and the dashboard. Absent or null: off.
	Admin *Admin `yaml:"admin"`

	// Engine is the data path: "epoll" (the event loops, Linux only) or
	// "goroutines". Empty, the default, is epoll on Linux and goroutines
	// elsewhere. A reload applies it to listeners it starts; a listener
	// that stays keeps the engine it started with.
	Engine string `yaml:"engine"`
}

// Admin is the admin HTTP listener.
type Admin struct {
	// Listen is the "host:port" address of the admin listener. It
	// defaults to 127.0.0.1:9090. An address that is not on loopback (an
	// empty host means every interface) requires Token.
	Listen string `yaml:"listen"`

	// Token, if not empty, is required as "Authorization: Bearer TOKEN"
	// on every /api/ call, and on /metrics with ProtectMetrics. It must
	// not contain spaces or control characters.
	Token string `yaml:"token"`

	// ProtectMetrics makes /metrics require the token too. It defaults to
	// false, so that Prometheus can scrape without one.
	ProtectMetrics bool `yaml:"protect_metrics"`
}

// DefaultAdminListen is where the admin listener listens by default.
const DefaultAdminListen = "127.0.0.1:9090"

// Listener is an address that accepts client connections and forwards them
// to a pool.
type Listener struct {
	// Name identifies the listener in logs. It defaults to Listen (with
	// "/udp" after it for protocol udp, so that a TCP and a UDP listener
	// may share an address) and must be unique among listeners.
	Name string `yaml:"name"`

	// Protocol is ProtocolTCP ("tcp", the default) or ProtocolUDP ("udp").
	// A UDP listener forwards datagrams: each client address is a session
	// with a backend of the pool (see tcplb.UDPBalancer). The keys about
	// TCP connections (proxy_protocol, trusted, max_conns, the per-source
	// limits, sni_routes) do not apply to it, and the UDP keys
	// (udp_responses, max_sessions, max_sessions_per_source, max_datagram) apply only to it. A pool
	// serves one protocol.
	Protocol string `yaml:"protocol"`

	// Listen is the "host:port" address to listen on. The host may be empty
	// to listen on all interfaces; an IPv6 host is written in brackets, as
	// in "[::1]:8080". The port is 0 to 65535, 0 meaning any free port.
	// Required.
	Listen string `yaml:"listen"`

	// Pool is the name of the pool to forward connections to. It may be
	// empty when there is exactly one pool, which Parse then fills in.
	// With SNIRoutes it is the pool of connections that match no route.
	Pool string `yaml:"pool"`

	// ProxyProtocol, if set, reads a PROXY protocol header (v1 or v2)
	// from connections whose peer is in Trusted: "accept" requires one
	// from them, "optional" lets them omit it. A connection from a peer
	// not in Trusted that sends a header is closed. Empty (default): no
	// headers are read.
	ProxyProtocol string `yaml:"proxy_protocol"`

	// Trusted are the CIDRs (or single addresses, see ParsePrefix) of the
	// upstreams allowed to send PROXY headers. Required with ProxyProtocol,
	// and an error without it.
	Trusted []string `yaml:"trusted"`

	// Allow, if not empty, admits only clients in these CIDRs; Deny
	// refuses clients in these, before Allow is looked at. Clients are
	// refused before any backend is dialled. With ProxyProtocol the
	// address checked is the one the header carries.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`

	// MaxConns is the most connections the listener holds at once; 0
	// (default) is no limit. Beyond it, new clients wait up to
	// timeouts.queue, then are closed.
	MaxConns int `yaml:"max_conns"`

	// MaxConnsPerSource is the most connections one client address may
	// hold at once; 0 (default) is no limit.
	MaxConnsPerSource int `yaml:"max_conns_per_source"`

	// RatePerSource is how many new connections per second one client
	// address may open, with bursts of BurstPerSource (default: the rate,
	// at least 1); 0 (default) is no limit. BurstPerSource without it is
	// an error.
	RatePerSource  float64 `yaml:"rate_per_source"`
	BurstPerSource int     `yaml:"burst_per_source"`

	// SNIRoutes route TLS connections by the server name of their
	// ClientHello, which is read without being consumed (the backend gets
	// every byte; no TLS is terminated): exact names first, then
	// wildcards "*.example.com" (one label). Connections with no
	// ClientHello, no name or no match go to Pool, or are closed if
	// SNIFallback is "close".
	SNIRoutes []SNIRoute `yaml:"sni_routes"`

	// SNIFallback is "pool" (default: the listener's Pool) or "close",
	// which requires SNIRoutes.
	SNIFallback string `yaml:"sni_fallback"`

	// UDPResponses, if positive, ends a UDP session after that many
	// replies from its backend, as nginx's proxy_responses does: 1 suits
	// DNS, so that a query does not hold a socket for timeouts.udp_idle.
	// 0 (default): sessions end on timeouts.udp_idle.
	UDPResponses int `yaml:"udp_responses"`

	// MaxSessions is the most UDP sessions the listener holds at once;
	// beyond it new clients' datagrams are dropped and counted. 0
	// (default): no limit.
	MaxSessions int `yaml:"max_sessions"`

	// MaxSessionsPerSource is the most UDP sessions one client IP holds at
	// once (each of its ports is one); beyond it the datagrams of its new
	// ports are dropped and counted. 0 (default): no limit. On a UDP
	// listener rate_per_source and burst_per_source count datagrams.
	MaxSessionsPerSource int `yaml:"max_sessions_per_source"`

	// MaxDatagram is the largest client datagram a UDP listener forwards,
	// 1 to 65535; a larger one is dropped and counted, never truncated.
	// It defaults to 65535, which Parse fills in for UDP listeners.
	MaxDatagram int `yaml:"max_datagram"`
}

// Listener Protocol values.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// DefaultMaxDatagram is the default Listener.MaxDatagram of a UDP listener.
const DefaultMaxDatagram = 65535

// SNIRoute sends the connections for a server name to a pool. ServerName
// is a host name ("a.example.com") or a wildcard for one more label
// ("*.example.com"), compared case-insensitively and without a trailing
// dot; no two routes of a listener may have the same. Both are required.
type SNIRoute struct {
	ServerName string `yaml:"server_name"`
	Pool       string `yaml:"pool"`
}

// Pool is a named set of backends and the strategy that picks among them.
type Pool struct {
	// Name identifies the pool for listeners and logs. Required and unique
	// among pools.
	Name string `yaml:"name"`

	// Strategy is the name of a strategy registered with
	// tcplb.RegisterStrategy. It defaults to tcplb.DefaultStrategy
	// ("round-robin").
	Strategy string `yaml:"strategy"`

	// HashBalanceFactor bounds the load of each backend under strategy
	// "hash", in percent of its weighted share of the pool's open
	// connections: a client whose backend is at the bound goes to the next
	// backend of its preference list (see tcplb.NewMaglev). 0, the
	// default, disables the bound; otherwise it must be at least 100, and
	// 125 allows 25% over the average. It is an error with another
	// strategy.
	HashBalanceFactor int `yaml:"hash_balance_factor"`

	// AllDown says what happens to a new client when every backend of the
	// pool is down, failed by active checks or ejected by passive ones:
	// AllDownFailOpen ("fail-open"), the default, picks among all the
	// backends as if they were up; AllDownRefuse ("refuse") closes the
	// client's connection.
	AllDown string `yaml:"all_down"`

	// SlowStart is how long a backend that comes up or is added ramps its
	// share of new connections from a small fraction to its full weight.
	// 0, the default, disables the ramp; it must not be negative. It is an
	// error with strategy hash, where ramping would move clients between
	// backends.
	SlowStart time.Duration `yaml:"slow_start"`

	// Health configures active checks of the pool's backends. Nil, the
	// default, when the key is absent or null, means no active checks; any
	// mapping, even "health: {}", enables them with its defaults.
	Health *Health `yaml:"health"`

	// Passive configures passive checks, which eject a backend that fails
	// real connections. They are on by default in a parsed configuration;
	// MaxFails 0 turns them off, and so does the zero Passive of a Pool
	// built in Go.
	Passive Passive `yaml:"passive"`

	// ProxyProtocol, if "v1" or "v2", sends a PROXY protocol header with
	// the client's address (the one a trusted upstream's header carried,
	// if any) to the backend before any client byte. Empty (default): no
	// header.
	ProxyProtocol string `yaml:"proxy_protocol"`

	// Discovery, if not nil, finds the pool's backends in a file, in DNS
	// or in etcd, instead of the static Backends list, which must then be
	// empty. Nil, the default, when the key is absent or null.
	Discovery *Discovery `yaml:"discovery"`

	// Backends are the servers of the pool. Without Discovery at least one
	// is required, and no address may appear twice; with Discovery there
	// must be none. In YAML a backend may be written as just its address.
	Backends []Backend `yaml:"backends"`
}

// Discovery says where a pool's backends are found: exactly one of File,
// DNS and Etcd is set. DNSType, Port, Interval and DNSServer apply only
// with DNS, and must be zero without it.
type Discovery struct {
	// File is the path of a file listing the backends, which is watched
	// for changes.
	File string `yaml:"file"`

	// DNS is the host name to resolve for the backends, without a
	// wildcard; a trailing dot is allowed.
	DNS string `yaml:"dns"`

	// DNSType is how DNS is resolved: DNSTypeA ("a"), the default, looks
	// up its A and AAAA records and connects to Port on each address;
	// DNSTypeSRV ("srv") looks up its SRV records, which carry the ports.
	// Empty means DNSTypeA.
	DNSType string `yaml:"dns_type"`

	// Port is the port of the backends with DNSTypeA, 1 to 65535, and
	// required there. It must be 0 with DNSTypeSRV.
	Port int `yaml:"port"`

	// Interval is the time between two resolutions of DNS. It defaults to
	// DefaultDiscoveryInterval (30s), which 0 also means; otherwise it
	// must be at least 1s.
	Interval time.Duration `yaml:"interval"`

	// DNSServer, if not empty, is the "ip:port" address of the DNS server
	// to ask, an IPv6 address in brackets as in "[2001:db8::53]:53"; the
	// port is required. Empty, the default, means the system's resolver.
	DNSServer string `yaml:"dns_server"`

	// Etcd, if not nil, reads the backends from etcd keys under a prefix,
	// watching it for changes.
	Etcd *Etcd `yaml:"etcd"`
}

// Etcd is where in etcd a pool's backends are found.
type Etcd struct {
	// Endpoints are the URLs of the etcd servers, each "http://" or
	// "https://" with a host and a port and nothing after them, as in
	// "http://127.0.0.1:2379". At least one is required, and none may
	// appear twice.
	Endpoints []string `yaml:"endpoints"`

	// Prefix is the key prefix under which the backends are, as in
	// "/tcplb/app/". Required; it must start with "/".
	Prefix string `yaml:"prefix"`

	// DialTimeout bounds connecting to an endpoint. It defaults to 5s and
	// must be positive.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// Values of Discovery.DNSType.
const (
	DNSTypeA   = "a"   // A and AAAA records, with Discovery.Port
	DNSTypeSRV = "srv" // SRV records, which carry the ports
)

// DefaultDiscoveryInterval is the default Discovery.Interval, which Parse
// fills in with DNS; in a Discovery built in Go a zero Interval stands for
// it.
const DefaultDiscoveryInterval = 30 * time.Second

// minDiscoveryInterval is the shortest Discovery.Interval other than 0.
const minDiscoveryInterval = time.Second

// Backend is one server of a pool.
type Backend struct {
	// Addr is the "host:port" address to connect to, as accepted by
	// tcplb.CheckAddr: the host is required and may be a name, the port is
	// 1 to 65535. Required.
	Addr string `yaml:"addr"`

	// Weight is the backend's share of connections relative to the other
	// backends of the pool, 1 to tcplb.MaxWeight. It defaults to 1.
	Weight int `yaml:"weight"`

	// MaxConns is the most connections open to the backend at once; a
	// client that would exceed it goes to another backend, or waits up to
	// Timeouts.Queue when every backend of the pool is full. 0, the
	// default, means unlimited; it must not be negative.
	MaxConns int `yaml:"max_conns"`
}

// Values of Pool.AllDown.
const (
	AllDownFailOpen = "fail-open" // use all the backends as if they were up
	AllDownRefuse   = "refuse"    // close new clients' connections
)

// Health configures the active checks of a pool: every Interval, each
// backend is connected to on Port and, if Send, Expect or HTTP say so,
// talked to; with Network "udp", Send goes to it as a datagram and the
// reply must start with Expect. A backend is up after Rise checks in a
// row pass and down after Fall checks in a row fail.
type Health struct {
	// Interval is the time between two checks of a backend. It defaults
	// to 2s and must be positive.
	Interval time.Duration `yaml:"interval"`

	// Timeout bounds one check, connecting and any exchange. 0, the
	// default, means the same as Interval; it must not be negative.
	Timeout time.Duration `yaml:"timeout"`

	// Rise is how many checks in a row must pass for a down backend to be
	// up again. It defaults to 2 and must be at least 1.
	Rise int `yaml:"rise"`

	// Fall is how many checks in a row must fail for an up backend to be
	// down. It defaults to 3 and must be at least 1.
	Fall int `yaml:"fall"`

	// Port is the port to check. 0, the default, means the backend's own
	// port; otherwise it is 1 to 65535.
	Port int `yaml:"port"`

	// Network is the check's transport: NetworkTCP ("tcp"; empty means
	// the same), which connects over TCP, or NetworkUDP ("udp"), which
	// sends Send as one datagram over UDP and wants a reply that starts
	// with Expect (see tcplb.HealthCheck.Network). A udp check requires
	// Send (or SendHex) and cannot have HTTP. It is for the pools of UDP
	// listeners, where it needs no Port, but a pool of TCP listeners may
	// have one too, on a Port that speaks UDP.
	Network string `yaml:"network"`

	// Send is written to the backend once connected, if not empty.
	Send string `yaml:"send"`

	// Expect, if not empty, is the answer the check wants from the
	// backend. It is at most MaxExpect bytes.
	Expect string `yaml:"expect"`

	// SendHex and ExpectHex are Send and Expect written in hexadecimal
	// ("12 34 01 00": whitespace between the digits is ignored), for
	// binary payloads: a YAML escape such as "\x85" is the character
	// U+0085, two bytes in UTF-8, so only the bytes 0x00 to 0x7f can be
	// written in Send and Expect. Each cannot be combined with its plain
	// form. Payloads returns the bytes either way.
	SendHex   string `yaml:"send_hex"`
	ExpectHex string `yaml:"expect_hex"`

	// HTTP, if not nil, makes the check an HTTP request. It cannot be
	// combined with Send or Expect; "http: {}" enables it with its
	// defaults.
	HTTP *HTTPHealth `yaml:"http"`
}

// MaxExpect is the longest Health.Expect, in bytes.
const MaxExpect = 64 << 10

// MaxUDPSend is the longest Health.Send of a udp check, in bytes: one
// datagram, the largest UDP payload over IPv4.
const MaxUDPSend = 65507

// Health Network values.
const (
	NetworkTCP = "tcp"
	NetworkUDP = "udp"
)

// Payloads returns the bytes the check sends and expects: Send and
// Expect, or SendHex and ExpectHex decoded. It is meant for a validated
// Health, where the hex is valid and not combined with its plain form.
func (h *Health) Payloads() (send, expect string) {
	send, expect = h.Send, h.Expect
	if b, err := decodeHex(h.SendHex); err == nil && len(b) > 0 {
		send = string(b)
	}
	if b, err := decodeHex(h.ExpectHex); err == nil && len(b) > 0 {
		expect = string(b)
	}
	return send, expect
}

// decodeHex decodes hexadecimal digits, ignoring whitespace between them.
func decodeHex(s string) ([]byte, error) {
	digits := strings.Join(strings.Fields(s), "")
	for i := 0; i < len(digits); i++ {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(digits[i])) {
			r, _ := utf8.DecodeRuneInString(digits[i:])
			return nil, fmt.Errorf("%q is not a hex digit", r)
		}
	}
	if len(digits)%2 != 0 {
		return nil, fmt.Errorf("%d hex digits: want two per byte", len(digits))
	}
	return hex.DecodeString(digits)
}

// HTTPHealth configures an HTTP health check.
type HTTPHealth struct {
	// Path is the request's path, with any query. It defaults to "/". It
	// must start with "/" and be printable ASCII without spaces, other
	// bytes escaped as in "/a%20b".
	Path string `yaml:"path"`

	// Host is the request's Host header. Empty, the default, means the
	// checked address. It must be printable ASCII without spaces.
	Host string `yaml:"host"`

	// Status is the response status the check wants. 0, the default,
	// accepts any 2xx or 3xx; otherwise it is 100 to 599.
	Status int `yaml:"status"`
}

// Passive configures passive checks, which watch the pool's real
// connections: a backend that fails MaxFails of them within FailWindow, by
// failing the connect or resetting the connection before sending its first
// byte, is ejected from the pool for Cooldown, twice as long on each
// repeated ejection, up to MaxCooldown.
type Passive struct {
	// MaxFails is how many failures within FailWindow eject a backend. It
	// defaults to 3; 0 disables passive checks, and then the other fields
	// are neither used nor checked. It must not be negative.
	MaxFails int `yaml:"max_fails"`

	// FailWindow is the time within which MaxFails failures eject a
	// backend. It defaults to 10s and must be positive.
	FailWindow time.Duration `yaml:"fail_window"`

	// Cooldown is how long a backend's first ejection lasts. It defaults
	// to 10s and must be positive.
	Cooldown time.Duration `yaml:"cooldown"`

	// MaxCooldown caps the doubling of Cooldown on repeated ejection. It
	// defaults to 5m and must be at least Cooldown.
	MaxCooldown time.Duration `yaml:"max_cooldown"`

	// MaxEjectionPercent bounds passive ejection: no backend is ejected
	// if that would leave more than this percentage of the pool ejected.
	// It defaults to 50 and is 1 to 100.
	MaxEjectionPercent int `yaml:"max_ejection_percent"`

	// UDPUnanswered, in a UDP listener's pool, counts a session that ends
	// idle after at least this many datagrams to the backend without a
	// reply since its last one as a failure (a backend that drops
	// datagrams silently sends no ICMP error). It defaults to 0, off, and
	// must not be negative.
	UDPUnanswered int `yaml:"udp_unanswered"`
}

// Timeouts bound how long connections may take or wait.
type Timeouts struct {
	// Connect is how long dialing a backend may take. It defaults to 5s
	// and must be positive.
	Connect time.Duration `yaml:"connect"`

	// Idle is how long a connection may pass no data in either direction
	// before it is closed. It defaults to 1h; 0 disables the timeout.
	Idle time.Duration `yaml:"idle"`

	// Drain is how long open connections are given to finish on shutdown
	// before they are closed. It defaults to 30s; 0 closes them at once.
	// It also bounds how long a backend removed from its pool, or
	// drained, keeps its open connections.
	Drain time.Duration `yaml:"drain"`

	// Queue is how long a new client waits for a free backend when every
	// backend of its pool is at its Backend.MaxConns. 0, the default,
	// closes the client's connection at once; it must not be negative.
	Queue time.Duration `yaml:"queue"`

	// ProxyHeader bounds how long a trusted upstream may take to send its
	// whole PROXY header; a slower one is closed. It defaults to 3s, as
	// the PROXY protocol spec advises, and must be positive.
	ProxyHeader time.Duration `yaml:"proxy_header"`

	// ClientHello bounds how long a client of a listener with SNIRoutes
	// may take to send its whole TLS ClientHello. It defaults to 5s and
	// must be positive.
	ClientHello time.Duration `yaml:"client_hello"`

	// UDPIdle ends a UDP session that passed no datagram either way for
	// this long. It defaults to 30s and must be positive: a UDP session
	// has no end of its own.
	UDPIdle time.Duration `yaml:"udp_idle"`
}

// Defaults. Queue, SlowStart, MaxConns and the Health Timeout and Port
// default to 0.
const (
	defaultConnect = 5 * time.Second
	defaultIdle    = time.Hour
	defaultDrain   = 30 * time.Second

	defaultProxyHeader = 3 * time.Second
	defaultClientHello = 5 * time.Second
	defaultUDPIdle     = tcplb.DefaultUDPIdleTimeout

	defaultHealthInterval = 2 * time.Second
	defaultHealthRise     = 2
	defaultHealthFall     = 3
	defaultHTTPPath       = "/"

	defaultMaxFails           = 3
	defaultFailWindow         = 10 * time.Second
	defaultCooldown           = 10 * time.Second
	defaultMaxCooldown        = 5 * time.Minute
	defaultMaxEjectionPercent = 50

	defaultEtcdDialTimeout = 5 * time.Second
)

// Default returns the configuration the daemon runs without a configuration
// file: listener "main" on 127.0.0.1:8080 forwarding round-robin to pool
// "default" of 127.0.0.1:3001, 127.0.0.1:3002 and 127.0.0.1:3003, with the
// default timeouts, passive checks and no active checks: every key at its
// default. Each call returns a new Config.
func Default() *Config {
	c := &Config{
		Listeners: []Listener{{Name: "main", Listen: "127.0.0.1:8080", Pool: "default"}},
		Pools:     []Pool{{Name: "default"}},
	}
	c.setDefaults()
	c.Listeners[0].setDefaults()
	p := &c.Pools[0]
	p.setDefaults()
	for _, addr := range []string{"127.0.0.1:3001", "127.0.0.1:3002", "127.0.0.1:3003"} {
		b := Backend{Addr: addr}
		b.setDefaults()
		p.Backends = append(p.Backends, b)
	}
	return c
}

// setDefaults methods fill in the defaults of a value before it is decoded,
// so that only the keys present in the file override them. The decoder
// calls setDefaults on each new element of a list or pointer target, and
// on a struct field it resets because a key replaces it; so a struct
// type's defaults are set by its own setDefaults method, which that of the
// struct holding it calls. See decode.go.

func (c *Config) setDefaults() { c.Timeouts.setDefaults() }

func (t *Timeouts) setDefaults() {
	*t = Timeouts{Connect: defaultConnect, Idle: defaultIdle, Drain: defaultDrain,
		ProxyHeader: defaultProxyHeader, ClientHello: defaultClientHello, UDPIdle: defaultUDPIdle}
}

func (p *Pool) setDefaults() {
	p.Strategy = tcplb.DefaultStrategy
	p.AllDown = AllDownFailOpen
	p.Passive.setDefaults()
}

func (ps *Passive) setDefaults() {
	*ps = Passive{
		MaxFails:           defaultMaxFails,
		FailWindow:         defaultFailWindow,
		Cooldown:           defaultCooldown,
		MaxCooldown:        defaultMaxCooldown,
		MaxEjectionPercent: defaultMaxEjectionPercent,
	}
}

func (h *Health) setDefaults() {
	h.Interval = defaultHealthInterval
	h.Rise = defaultHealthRise
	h.Fall = defaultHealthFall
}

func (h *HTTPHealth) setDefaults() { h.Path = defaultHTTPPath }

func (a *Admin) setDefaults() { a.Listen = DefaultAdminListen }

// Discovery has no setDefaults method: its DNSType and Interval default
// only with DNS, which fillDerived sees once the whole mapping is decoded.
// Left zero without DNS, they can be told apart from keys that were set.

func (e *Etcd) setDefaults() { e.DialTimeout = defaultEtcdDialTimeout }

func (b *Backend) setDefaults() { b.Weight = 1 }

func (l *Listener) setDefaults() { l.SNIFallback, l.Protocol = SNIFallbackPool, ProtocolTCP }

// SNIFallback values.
const (
	SNIFallbackPool  = "pool"
	SNIFallbackClose = "close"
)

// Pool ProxyProtocol values.
const (
	ProxyV1 = "v1"
	ProxyV2 = "v2"
)

// Listener ProxyProtocol values.
const (
	ProxyAccept   = "accept"
	ProxyOptional = "optional"
)

// decodeScalar lets a backend be written as just its address.
func (b *Backend) decodeScalar(s string) error {
	b.Addr = s
	return nil
}

// Parse decodes a YAML configuration, fills in defaults and validates the
// result. The error reports every problem found, one per line; see the
// package documentation for the format.
//
// Besides the per-key defaults, Parse sets each listener's Name to its
// Listen address if it is empty, and its Pool to the only pool's name if it
// is empty.
func Parse(data []byte) (*Config, error) {
	c, errs := parse(data)
	if len(errs) > 0 {
		return nil, errs.err()
	}
	return c, nil
}

// Load reads and parses the configuration file at path. Errors name the
// file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, errs := parse(data)
	if len(errs) > 0 {
		for _, e := range errs {
			e.File = path
		}
		return nil, errs.err()
	}
	return c, nil
}

// defaultName is the name of a listener without one: its address, and
// "/udp" after it for UDP.
func (l *Listener) defaultName() string {
	if l.Protocol == ProtocolUDP {
		return l.Listen + "/udp"
	}
	return l.Listen
}

// PoolProtocol returns the protocol of the listeners that use the named
// pool (ProtocolTCP if none does); validation makes it one.
func (c *Config) PoolProtocol(name string) string {
	for _, l := range c.Listeners {
		if l.Pool == name && l.Protocol == ProtocolUDP {
			return ProtocolUDP
		}
		if l.Pool == name {
			return ProtocolTCP
		}
	}
	return ProtocolTCP
}

// fillDerived sets the defaults that depend on other keys. It is called
// once c is valid.
func (c *Config) fillDerived() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Name == "" {
			l.Name = l.defaultName()
		}
		if l.Pool == "" && len(c.Pools) == 1 {
			l.Pool = c.Pools[0].Name
		}
		if l.Protocol == ProtocolUDP && l.MaxDatagram == 0 {
			l.MaxDatagram = DefaultMaxDatagram
		}
	}
	for _, p := range c.Pools {
		if d := p.Discovery; d != nil && d.DNS != "" {
			if d.DNSType == "" {
				d.DNSType = DNSTypeA
			}
			if d.Interval == 0 {
				d.Interval = DefaultDiscoveryInterval
			}
		}
	}
}
