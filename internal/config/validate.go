package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tcplb/tcplb"
)

// Validate checks c as Parse does after decoding, and returns every
// problem found joined with errors.Join, or nil. It does not change c and
// does not fill in defaults, so it also checks configurations built in Go:
// there an empty listener Name stands for the listen address and an empty
// listener Pool for the only pool, an empty listener Protocol for tcp, a
// zero MaxDatagram for 65535, a nil Health and a zero Passive turn the
// checks off, and with Discovery.DNS an empty DNSType stands for DNSTypeA
// and a zero Interval for DefaultDiscoveryInterval, but an empty pool
// Strategy or AllDown, an empty listener SNIFallback, a zero Weight, a
// zero Etcd.DialTimeout, or a zero Timeouts.ProxyHeader or ClientHello, is
// an error.
func (c *Config) Validate() error {
	return c.validate().err()
}

func (c *Config) validate() errorList {
	var errs, poolErrs errorList
	pools := c.validatePools(&poolErrs)
	c.validateListeners(&errs, pools)
	errs = append(errs, poolErrs...)
	c.Timeouts.validate(&errs)
	if c.Admin != nil {
		c.Admin.validate(&errs)
	}
	if _, err := tcplb.ParseEngine(c.Engine); err != nil {
		errs.add(0, "engine", "%v", err)
	}
	return errs
}

func (a *Admin) validate(errs *errorList) {
	if err := CheckListenAddr(a.Listen); err != nil {
		errs.add(0, "admin.listen", "%v", err)
	} else if err := CheckAdminExposure(a.Listen, a.Token); err != nil {
		errs.add(0, "admin.listen", "%v", err)
	}
	if strings.ContainsFunc(a.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		errs.add(0, "admin.token", "must not contain spaces or control characters")
	}
}

// CheckAdminExposure reports an error when an admin listener on addr would
// serve the network (its host is not a loopback address; an empty host is
// every interface) without a token.
func CheckAdminExposure(addr, token string) error {
	if token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s: not a loopback address, and no admin.token is set: the API would let anyone who can reach it drain backends; set a token or listen on 127.0.0.1", quote(addr))
}

// validatePools checks the pools and returns their distinct names in
// order.
func (c *Config) validatePools(errs *errorList) []string {
	if len(c.Pools) == 0 {
		errs.add(0, "pools", "at least one pool is required")
	}
	var names []string
	seen := make(map[string]bool)
	for i, p := range c.Pools {
		path := indexPath("pools", i)
		switch {
		case p.Name == "":
			errs.add(0, path+".name", "required")
		case seen[p.Name]:
			errs.add(0, path+".name", "%s: duplicate pool name", quote(p.Name))
		default:
			seen[p.Name] = true
			names = append(names, p.Name)
		}
		if _, err := tcplb.NewStrategy(p.Strategy); err != nil {
			errs.add(0, path+".strategy", "%v", err)
		}
		switch f := p.HashBalanceFactor; {
		case f == 0:
		case f < 100:
			errs.add(0, path+".hash_balance_factor", "%d: must be 0 (off) or at least 100", f)
		case p.Strategy != "hash":
			errs.add(0, path+".hash_balance_factor", "%d: only applies to strategy hash, not %s", f, quoteIfNeeded(p.Strategy))
		}
		switch p.AllDown {
		case AllDownFailOpen, AllDownRefuse:
		default:
			errs.add(0, path+".all_down", "%s: want %s or %s", quote(p.AllDown), AllDownFailOpen, AllDownRefuse)
		}
		switch s := p.SlowStart; {
		case s < 0:
			errs.add(0, path+".slow_start", "%s: must not be negative", quote(s.String()))
		case s > 0 && p.Strategy == "hash":
			errs.add(0, path+".slow_start", "%s: does not apply to strategy hash: ramping would move clients between backends", quote(s.String()))
		}
		if p.Health != nil {
			p.Health.validate(errs, path+".health")
		}
		p.Passive.validate(errs, path+".passive")
		switch p.ProxyProtocol {
		case "", ProxyV1, ProxyV2:
		default:
			errs.add(0, path+".proxy_protocol", "%s: want v1 or v2 (accepting headers is a listener's proxy_protocol)", quote(p.ProxyProtocol))
		}
		if p.Discovery != nil {
			p.validateDiscovery(errs, path+".discovery")
		}
		p.validateBackends(errs, path+".backends")
	}
	return names
}

// validateBackends checks the static backends, which a pool with discovery
// need not have.
func (p *Pool) validateBackends(errs *errorList, path string) {
	if len(p.Backends) == 0 && p.Discovery == nil {
		errs.add(0, path, "at least one backend is required")
	}
	seen := make(map[string]bool)
	for i, b := range p.Backends {
		bpath := indexPath(path, i)
		if b.Addr == "" {
			errs.add(0, bpath+".addr", "required")
		} else if err := tcplb.CheckAddr(b.Addr); err != nil {
			errs.add(0, bpath+".addr", "%v", err)
		} else if seen[b.Addr] {
			errs.add(0, bpath+".addr", "%s: duplicate backend address", quote(b.Addr))
		}
		seen[b.Addr] = true
		if b.Weight < 1 || b.Weight > tcplb.MaxWeight {
			errs.add(0, bpath+".weight", "%d: must be between 1 and %d", b.Weight, tcplb.MaxWeight)
		}
		if b.MaxConns < 0 {
			errs.add(0, bpath+".max_conns", "%d: must not be negative", b.MaxConns)
		}
	}
}

// validateDiscovery checks p.Discovery, which is not nil. Its errors come
// in the order of the keys in Discovery.
func (p *Pool) validateDiscovery(errs *errorList, path string) {
	d := p.Discovery
	if len(p.Backends) > 0 {
		errs.add(0, path, "backends and discovery cannot both be set")
	}
	switch n := countSet(d.File != "", d.DNS != "", d.Etcd != nil); {
	case n == 0:
		errs.add(0, path, "one of file, dns or etcd is required")
	case n > 1:
		errs.add(0, path, "file, dns and etcd are alternatives: set one")
	}
	if d.DNS == "" {
		// Parse leaves the DNS keys zero without dns: see fillDerived.
		if d.DNSType != "" {
			errs.add(0, path+".dns_type", "%s: only applies with dns", quote(d.DNSType))
		}
		if d.Port != 0 {
			errs.add(0, path+".port", "%d: only applies with dns", d.Port)
		}
		if d.Interval != 0 {
			errs.add(0, path+".interval", "%s: only applies with dns", quote(d.Interval.String()))
		}
		if d.DNSServer != "" {
			errs.add(0, path+".dns_server", "%s: only applies with dns", quote(d.DNSServer))
		}
	} else {
		d.validateDNS(errs, path)
	}
	if d.Etcd != nil {
		d.Etcd.validate(errs, path+".etcd")
	}
}

// validateDNS checks the keys of a discovery by DNS.
func (d *Discovery) validateDNS(errs *errorList, path string) {
	if name := serverNameKey(d.DNS); strings.HasPrefix(name, "*.") || !validServerName(name) {
		errs.add(0, path+".dns", "%s: want a host name", quote(d.DNS))
	}
	switch d.DNSType {
	case "", DNSTypeA:
		switch {
		case d.Port == 0:
			errs.add(0, path+".port", "required with dns_type %s: the port of the backends", DNSTypeA)
		case d.Port < 0 || d.Port > 65535:
			errs.add(0, path+".port", "%d: must be between 1 and 65535", d.Port)
		}
	case DNSTypeSRV:
		if d.Port != 0 {
			errs.add(0, path+".port", "%d: not allowed with dns_type %s, whose records carry the ports", d.Port, DNSTypeSRV)
		}
	default:
		errs.add(0, path+".dns_type", "%s: want %s or %s", quote(d.DNSType), DNSTypeA, DNSTypeSRV)
		if d.Port < 0 || d.Port > 65535 {
			errs.add(0, path+".port", "%d: must be between 1 and 65535", d.Port)
		}
	}
	if d.Interval != 0 && d.Interval < minDiscoveryInterval {
		errs.add(0, path+".interval", "%s: must be at least %s (0 means %s)", quote(d.Interval.String()), minDiscoveryInterval, DefaultDiscoveryInterval)
	}
	if d.DNSServer != "" {
		if err := checkDNSServer(d.DNSServer); err != nil {
			errs.add(0, path+".dns_server", "%v", err)
		}
	}
}

// checkDNSServer reports why addr is not the "ip:port" address of a DNS
// server, or nil if it is. A name is not accepted: it would need a DNS
// server of its own.
func checkDNSServer(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if ae, ok := err.(*net.AddrError); ok {
			err = fmt.Errorf("%s", ae.Err) // without the address again
		}
		return fmt.Errorf("%s: %v", quote(addr), err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("%s: want an IP address and a port, as in 10.0.0.53:53 or [2001:db8::53]:53", quote(addr))
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%s: invalid port", quote(addr))
	}
	return nil
}

func (e *Etcd) validate(errs *errorList, path string) {
	if len(e.Endpoints) == 0 {
		errs.add(0, path+".endpoints", "at least one endpoint is required")
	}
	seen := make(map[string]bool)
	for i, ep := range e.Endpoints {
		if err := checkEtcdEndpoint(ep); err != nil {
			errs.add(0, indexPath(path+".endpoints", i), "%v", err)
		} else if seen[ep] {
			errs.add(0, indexPath(path+".endpoints", i), "%s: duplicate endpoint", quote(ep))
		}
		seen[ep] = true
	}
	switch {
	case e.Prefix == "":
		errs.add(0, path+".prefix", "required")
	case !strings.HasPrefix(e.Prefix, "/"):
		errs.add(0, path+".prefix", "%s: must start with \"/\"", quote(e.Prefix))
	}
	if e.DialTimeout <= 0 {
		errs.add(0, path+".dial_timeout", "%s: must be greater than 0", quote(e.DialTimeout.String()))
	}
}

// checkEtcdEndpoint reports why s is not the URL of an etcd server,
// "http://" or "https://", a host and a port, and nothing more, or nil if
// it is.
func checkEtcdEndpoint(s string) error {
	const want = "want an http:// or https:// URL with a host and a port, as in http://127.0.0.1:2379"
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("%s: %s", quote(s), want)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s: %s", quote(s), want)
	}
	switch {
	case u.User != nil || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Errorf("%s: want only a scheme, a host and a port", quote(s))
	case u.Hostname() == "":
		return fmt.Errorf("%s: missing host", quote(s))
	case u.Port() == "":
		return fmt.Errorf("%s: missing port", quote(s))
	}
	if p, err := strconv.ParseUint(u.Port(), 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%s: invalid port", quote(s))
	}
	return nil
}

// countSet returns how many of the conditions hold.
func countSet(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}

func (h *Health) validate(errs *errorList, path string) {
	if h.Interval <= 0 {
		errs.add(0, path+".interval", "%s: must be greater than 0", quote(h.Interval.String()))
	}
	if h.Timeout < 0 {
		errs.add(0, path+".timeout", "%s: must not be negative (0 means the interval)", quote(h.Timeout.String()))
	}
	if h.Rise < 1 {
		errs.add(0, path+".rise", "%d: must be at least 1", h.Rise)
	}
	if h.Fall < 1 {
		errs.add(0, path+".fall", "%d: must be at least 1", h.Fall)
	}
	if h.Port < 0 || h.Port > 65535 {
		errs.add(0, path+".port", "%d: must be between 1 and 65535, or 0 for the backend's port", h.Port)
	}
	if len(h.Expect) > MaxExpect {
		errs.add(0, path+".expect", "%s: %d bytes: must be at most %d", quote(h.Expect), len(h.Expect), MaxExpect)
	}
	hexOK := true
	for _, k := range []struct {
		key, hex, plain string
	}{
		{"send", h.SendHex, h.Send},
		{"expect", h.ExpectHex, h.Expect},
	} {
		b, err := decodeHex(k.hex)
		switch {
		case err != nil:
			hexOK = false
			errs.add(0, path+"."+k.key+"_hex", "%s: %v", quote(k.hex), err)
		case len(b) > 0 && k.plain != "":
			errs.add(0, path+"."+k.key+"_hex", "cannot be combined with %s (give the payload once)", k.key)
		case k.key == "expect" && len(b) > MaxExpect:
			errs.add(0, path+".expect_hex", "%d bytes: must be at most %d", len(b), MaxExpect)
		}
	}
	send, _ := h.Payloads()
	switch h.Network {
	case "", NetworkTCP:
	case NetworkUDP:
		switch {
		case h.HTTP != nil:
			errs.add(0, path+".network", "udp: cannot be combined with http (an HTTP check connects over TCP)")
		case send == "" && hexOK:
			errs.add(0, path+".send", "required with network udp (a UDP check learns nothing without a datagram to send)")
		case len(send) > MaxUDPSend:
			errs.add(0, path+".send", "%d bytes: must be at most %d with network udp (one datagram)", len(send), MaxUDPSend)
		}
	default:
		errs.add(0, path+".network", "%s: want %s or %s", quote(h.Network), NetworkTCP, NetworkUDP)
	}
	if h.HTTP == nil {
		return
	}
	if h.Send != "" || h.Expect != "" {
		errs.add(0, path+".http", "cannot be combined with send or expect")
	}
	if h.SendHex != "" || h.ExpectHex != "" {
		errs.add(0, path+".http", "cannot be combined with send_hex or expect_hex")
	}
	hp := h.HTTP
	switch {
	case !strings.HasPrefix(hp.Path, "/"):
		errs.add(0, path+".http.path", "%s: must start with \"/\"", quote(hp.Path))
	case !isRequestToken(hp.Path):
		errs.add(0, path+".http.path", "%s: must be printable ASCII without spaces", quote(hp.Path))
	}
	if !isRequestToken(hp.Host) {
		errs.add(0, path+".http.host", "%s: must be printable ASCII without spaces", quote(hp.Host))
	}
	if hp.Status != 0 && (hp.Status < 100 || hp.Status > 599) {
		errs.add(0, path+".http.status", "%d: must be between 100 and 599, or 0 for any 2xx or 3xx", hp.Status)
	}
}

// isRequestToken reports whether s can go into an HTTP request line or
// header as it is: whether it is printable ASCII without spaces.
func isRequestToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// validate checks the passive checks, unless they are off.
func (ps *Passive) validate(errs *errorList, path string) {
	if ps.MaxFails < 0 {
		errs.add(0, path+".max_fails", "%d: must not be negative (0 disables passive checks)", ps.MaxFails)
	}
	if ps.UDPUnanswered < 0 {
		errs.add(0, path+".udp_unanswered", "%d: must not be negative (0: off)", ps.UDPUnanswered)
	}
	if ps.MaxFails <= 0 {
		return
	}
	if ps.FailWindow <= 0 {
		errs.add(0, path+".fail_window", "%s: must be greater than 0", quote(ps.FailWindow.String()))
	}
	if ps.Cooldown <= 0 {
		errs.add(0, path+".cooldown", "%s: must be greater than 0", quote(ps.Cooldown.String()))
	}
	switch {
	case ps.Cooldown > 0 && ps.MaxCooldown < ps.Cooldown:
		errs.add(0, path+".max_cooldown", "%s: must be at least cooldown (%s)", quote(ps.MaxCooldown.String()), quote(ps.Cooldown.String()))
	case ps.MaxCooldown <= 0:
		errs.add(0, path+".max_cooldown", "%s: must be greater than 0", quote(ps.MaxCooldown.String()))
	}
	if p := ps.MaxEjectionPercent; p < 1 || p > 100 {
		errs.add(0, path+".max_ejection_percent", "%d: must be between 1 and 100", p)
	}
}

// validateListeners checks the listeners against the pool names.
func (c *Config) validateListeners(errs *errorList, pools []string) {
	if len(c.Listeners) == 0 {
		errs.add(0, "listeners", "at least one listener is required")
	}
	poolList := make([]string, len(pools))
	for i, name := range pools {
		poolList[i] = quoteIfNeeded(name)
	}
	known := fmt.Sprintf("(pools: %s)", strings.Join(poolList, ", "))

	names := make(map[string]bool)
	addrs := make(map[string]bool)     // by protocol and address: TCP and UDP may share one
	poolUse := make(map[string]string) // pool name: the first listener (path and protocol) using it
	usePool := func(errs *errorList, path, key, pool, proto string) {
		if pool == "" || !slices.Contains(pools, pool) {
			return
		}
		first, ok := poolUse[pool]
		if !ok {
			poolUse[pool] = path + " " + proto
			return
		}
		if fpath, fproto, _ := strings.Cut(first, " "); fproto != proto {
			errs.add(0, path+"."+key, "%s: pool serves %s (%s); a pool serves one protocol, so give this %s listener a pool of its own",
				quote(pool), fproto, fpath, proto)
		}
	}
	for i, l := range c.Listeners {
		path := indexPath("listeners", i)
		protoOK := true
		switch l.Protocol {
		case ProtocolTCP, ProtocolUDP:
		case "":
			l.Protocol = ProtocolTCP // l is a copy: an empty Protocol stands for tcp
		default:
			errs.add(0, path+".protocol", "%s: want %s or %s", quote(l.Protocol), ProtocolTCP, ProtocolUDP)
			protoOK = false
		}
		listenOK := false
		if l.Listen == "" {
			errs.add(0, path+".listen", "required")
		} else if port, err := checkListen(l.Listen); err != nil {
			errs.add(0, path+".listen", "%v", err)
		} else if addrs[l.Protocol+" "+l.Listen] {
			errs.add(0, path+".listen", "%s: duplicate %s listen address", quote(l.Listen), l.Protocol)
		} else {
			listenOK = true
			if port != 0 { // port 0 picks a free port each time
				addrs[l.Protocol+" "+l.Listen] = true
			}
		}

		// A name defaults to the listen address, which may be reused
		// only with port 0. Say nothing more about a bad address.
		switch {
		case l.Name != "" && names[l.Name]:
			errs.add(0, path+".name", "%s: duplicate listener name", quote(l.Name))
		case l.Name == "" && listenOK && names[l.defaultName()]:
			errs.add(0, path+".name", "%s: duplicate listener name (it defaults to the listen address)", quote(l.defaultName()))
		}
		if l.Name != "" {
			names[l.Name] = true
		} else {
			names[l.defaultName()] = true
		}

		switch {
		case len(pools) == 0:
			// Nothing to check against; the pools are reported.
		case l.Pool == "" && len(pools) > 1:
			errs.add(0, path+".pool", "required when there is more than one pool %s", known)
		case l.Pool == "":
		case !slices.Contains(pools, l.Pool):
			errs.add(0, path+".pool", "%s: no such pool %s", quote(l.Pool), known)
		}
		if !protoOK {
			continue // which keys apply depends on the protocol
		}
		pool := l.Pool
		if pool == "" && len(pools) == 1 {
			pool = pools[0]
		}
		if l.Protocol == ProtocolUDP {
			l.validateUDP(errs, path)
			usePool(errs, path, "pool", pool, ProtocolUDP)
			if pc := c.pool(pool); pc != nil && pc.ProxyProtocol == ProxyV1 {
				errs.add(0, path+".pool", "%s: its proxy_protocol v1 has no UDP form: use v2, which goes in front of each datagram",
					quote(pool))
			}
			if pc := c.pool(pool); pc != nil && pc.Health != nil && pc.Health.Port == 0 && pc.Health.Network != NetworkUDP {
				errs.add(0, path+".pool", "%s: its health checks would connect over TCP to the UDP backends' own port: set health.network: udp with a send (and an expect) for a UDP check of that port, or health.port to a TCP port that tells the backend's health",
					quote(pool))
			}
			continue
		}
		l.validateTCPOnly(errs, path)
		usePool(errs, path, "pool", pool, ProtocolTCP)
		for j, r := range l.SNIRoutes {
			usePool(errs, indexPath(path+".sni_routes", j), "pool", r.Pool, ProtocolTCP)
		}
		l.validateEdge(errs, path, pools, known)
	}
}

func (c *Config) pool(name string) *Pool {
	for i := range c.Pools {
		if c.Pools[i].Name == name {
			return &c.Pools[i]
		}
	}
	return nil
}

// validateUDP checks a UDP listener: its own keys, and none of those that
// are about TCP connections.
func (l *Listener) validateUDP(errs *errorList, path string) {
	tcpOnly := []struct {
		key, why string
		set      bool
	}{
		{"proxy_protocol", "PROXY headers are read from TCP connections", l.ProxyProtocol != ""},
		{"trusted", "it goes with proxy_protocol", len(l.Trusted) > 0},
		{"max_conns", "use max_sessions", l.MaxConns != 0},
		{"max_conns_per_source", "use max_sessions_per_source", l.MaxConnsPerSource != 0},
		{"sni_routes", "SNI is TLS over TCP", len(l.SNIRoutes) > 0},
		{"sni_fallback", "SNI is TLS over TCP", l.SNIFallback != SNIFallbackPool},
	}
	for _, k := range tcpOnly {
		if k.set {
			errs.add(0, path+"."+k.key, "does not apply to protocol udp (%s)", k.why)
		}
	}
	for _, list := range []struct {
		key      string
		prefixes []string
	}{{"allow", l.Allow}, {"deny", l.Deny}} {
		for i, s := range list.prefixes {
			if _, err := ParsePrefix(s); err != nil {
				errs.add(0, indexPath(path+"."+list.key, i), "%v", err)
			}
		}
	}
	if l.UDPResponses < 0 {
		errs.add(0, path+".udp_responses", "%d: must not be negative (0: sessions end on timeouts.udp_idle)", l.UDPResponses)
	}
	if l.MaxSessions < 0 {
		errs.add(0, path+".max_sessions", "%d: must not be negative (0: no limit)", l.MaxSessions)
	}
	if l.MaxSessionsPerSource < 0 {
		errs.add(0, path+".max_sessions_per_source", "%d: must not be negative (0: no limit)", l.MaxSessionsPerSource)
	}
	l.validateRate(errs, path, "datagrams")
	if l.MaxDatagram < 0 || l.MaxDatagram > DefaultMaxDatagram {
		errs.add(0, path+".max_datagram", "%d: must be between 1 and %d (0: %d)", l.MaxDatagram, DefaultMaxDatagram, DefaultMaxDatagram)
	}
}

// validateRate checks rate_per_source and burst_per_source, a rate of
// what (connections, or datagrams on UDP) per second.
func (l *Listener) validateRate(errs *errorList, path, what string) {
	switch r := l.RatePerSource; {
	case math.IsNaN(r) || math.IsInf(r, 0):
		errs.add(0, path+".rate_per_source", "%v: want a number of %s per second, 0 for no limit", r, what)
	case r < 0:
		errs.add(0, path+".rate_per_source", "%v: must not be negative (0: no limit)", r)
	}
	switch b := l.BurstPerSource; {
	case b < 0:
		errs.add(0, path+".burst_per_source", "%d: must not be negative (0: the rate, at least 1)", b)
	case b > 0 && l.RatePerSource == 0:
		errs.add(0, path+".burst_per_source", "%d: only applies with rate_per_source", b)
	}
}

// validateTCPOnly refuses the UDP keys on a TCP listener.
func (l *Listener) validateTCPOnly(errs *errorList, path string) {
	for _, k := range []struct {
		key string
		set bool
	}{{"udp_responses", l.UDPResponses != 0}, {"max_sessions", l.MaxSessions != 0}, {"max_sessions_per_source", l.MaxSessionsPerSource != 0}, {"max_datagram", l.MaxDatagram != 0}} {
		if k.set {
			errs.add(0, path+"."+k.key, "only applies to protocol udp")
		}
	}
}

// validateEdge checks a listener's PROXY protocol, access control, limits
// and SNI routes. Its errors come in the order of the keys in Listener, and
// a list's in the order of its elements, so that they read the same every
// time.
func (l *Listener) validateEdge(errs *errorList, path string, pools []string, known string) {
	switch l.ProxyProtocol {
	case "":
		if len(l.Trusted) > 0 {
			errs.add(0, path+".trusted", "only applies with proxy_protocol (accept or optional)")
		}
	case ProxyAccept, ProxyOptional:
		if len(l.Trusted) == 0 {
			errs.add(0, path+".trusted", "required with proxy_protocol %s: the upstreams allowed to send PROXY headers", l.ProxyProtocol)
		}
	default:
		errs.add(0, path+".proxy_protocol", "%s: want accept or optional (sending headers is a pool's proxy_protocol: v1 or v2)", quote(l.ProxyProtocol))
	}
	for _, list := range []struct {
		key      string
		prefixes []string
	}{{"trusted", l.Trusted}, {"allow", l.Allow}, {"deny", l.Deny}} {
		for i, s := range list.prefixes {
			if _, err := ParsePrefix(s); err != nil {
				errs.add(0, indexPath(path+"."+list.key, i), "%v", err)
			}
		}
	}
	if l.MaxConns < 0 {
		errs.add(0, path+".max_conns", "%d: must not be negative (0: no limit)", l.MaxConns)
	}
	if l.MaxConnsPerSource < 0 {
		errs.add(0, path+".max_conns_per_source", "%d: must not be negative (0: no limit)", l.MaxConnsPerSource)
	}
	l.validateRate(errs, path, "connections")
	switch l.SNIFallback {
	case SNIFallbackPool:
	case SNIFallbackClose:
		if len(l.SNIRoutes) == 0 {
			// Every connection would match no route and be closed.
			errs.add(0, path+".sni_fallback", "%s: only applies with sni_routes", quote(l.SNIFallback))
		}
	default:
		errs.add(0, path+".sni_fallback", "%s: want %s or %s", quote(l.SNIFallback), SNIFallbackPool, SNIFallbackClose)
	}
	seen := make(map[string]bool)
	for i, r := range l.SNIRoutes {
		rpath := indexPath(path+".sni_routes", i)
		name := serverNameKey(r.ServerName)
		switch {
		case r.ServerName == "":
			errs.add(0, rpath+".server_name", "required")
		case !validServerName(name):
			errs.add(0, rpath+".server_name", "%s: want a host name, or *. and a host name", quote(r.ServerName))
		case seen[name]:
			errs.add(0, rpath+".server_name", "%s: duplicate server name", quote(r.ServerName))
		}
		seen[name] = true
		switch {
		case r.Pool == "":
			errs.add(0, rpath+".pool", "required")
		case len(pools) > 0 && !slices.Contains(pools, r.Pool):
			errs.add(0, rpath+".pool", "%s: no such pool %s", quote(r.Pool), known)
		}
	}
}

// ParsePrefix parses a CIDR ("10.0.0.0/8", "2001:db8::/32") or a single
// address ("10.0.0.1", "2001:db8::1"), which stands for itself alone: a /32
// or a /128. It rejects a CIDR with host bits set ("10.0.0.1/8"), an IPv6
// zone ("fe80::1%eth0"), and IPv4-mapped IPv6 forms ("::ffff:10.0.0.1"),
// which would match no client since clients are matched as IPv4. Its
// errors quote s, say why, and suggest a fix where there is one.
func ParsePrefix(s string) (netip.Prefix, error) {
	addr, _, isCIDR := strings.Cut(s, "/")
	if a, err := netip.ParseAddr(addr); err == nil && a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%s: an IPv6 zone is not allowed", quote(s))
	}
	var p netip.Prefix
	if isCIDR {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%s: not a CIDR", quote(s))
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("%s: host bits set (did you mean %s?)", quote(s), m)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%s: not an address or a CIDR", quote(s))
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		// A masked prefix of a mapped address is at least a /96.
		hint := a.Unmap().String()
		if isCIDR {
			hint = netip.PrefixFrom(a.Unmap(), p.Bits()-96).String()
		}
		return netip.Prefix{}, fmt.Errorf("%s: IPv4-mapped IPv6, which no client is matched as (did you mean %s?)", quote(s), hint)
	}
	return p, nil
}

// maxServerName is the longest server name, in bytes without a trailing
// dot (RFC 1035 2.3.4).
const maxServerName = 253

// serverNameKey returns a server name as validServerName takes it and
// routes compare it: without one trailing dot, and with ASCII letters alone
// lower-cased, so that no Unicode case folding (the Kelvin sign to "k")
// turns a name that is not ASCII into one that is.
func serverNameKey(s string) string {
	b := []byte(strings.TrimSuffix(s, "."))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// validServerName reports whether name (lower case, no trailing dot) is a
// DNS host name or a wildcard "*." followed by one: labels of 1 to 63
// letters, digits, '_' and '-' (not first or last), at most 253 bytes in
// all, wildcard included, since a longer one could match no name.
func validServerName(name string) bool {
	if len(name) > maxServerName {
		return false
	}
	name = strings.TrimPrefix(name, "*.")
	if name == "" {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkListen returns the port of a listen address, "host:port" with an
// optional host and a port from 0 to 65535, or an error saying why addr is
// not one.
func checkListen(addr string) (port uint64, err error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		if ae, ok := err.(*net.AddrError); ok {
			err = fmt.Errorf("%s", ae.Err) // without the address again
		}
		return 0, fmt.Errorf("%s: %v", quote(addr), err)
	}
	port, err = strconv.ParseUint(p, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%s: invalid port", quote(addr))
	}
	return port, nil
}

func (t *Timeouts) validate(errs *errorList) {
	if t.Connect <= 0 {
		errs.add(0, "timeouts.connect", "%s: must be greater than 0", quote(t.Connect.String()))
	}
	if t.Idle < 0 {
		errs.add(0, "timeouts.idle", "%s: must not be negative (0 disables the timeout)", quote(t.Idle.String()))
	}
	if t.Drain < 0 {
		errs.add(0, "timeouts.drain", "%s: must not be negative", quote(t.Drain.String()))
	}
	if t.Queue < 0 {
		errs.add(0, "timeouts.queue", "%s: must not be negative", quote(t.Queue.String()))
	}
	if t.ProxyHeader <= 0 {
		errs.add(0, "timeouts.proxy_header", "%s: must be greater than 0", quote(t.ProxyHeader.String()))
	}
	if t.ClientHello <= 0 {
		errs.add(0, "timeouts.client_hello", "%s: must be greater than 0", quote(t.ClientHello.String()))
	}
	if t.UDPIdle <= 0 {
		errs.add(0, "timeouts.udp_idle", "%s: must be greater than 0 (a UDP session has no end of its own)", quote(t.UDPIdle.String()))
	}
}

// CheckListenAddr reports why addr is not a listen address ("host:port"
// with an optional host and a port from 0 to 65535), or nil if it is. The
// daemon uses it for its -listen flag.
func CheckListenAddr(addr string) error {
	_, err := checkListen(addr)
	return err
}
