package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/tcplb/tcplb"
)

// Defaults for DNS.
const (
	dnsInterval   = 30 * time.Second // DNSConfig.Interval's default
	dnsMinWait    = time.Second      // the shortest wait between lookups
	dnsTimeout    = 5 * time.Second  // for one query, UDP or TCP
	dnsUDPSize    = 1232             // EDNS0 buffer size, as DNS Flag Day 2020 advises
	dnsResolvConf = "/etc/resolv.conf"
)

// DNSConfig says what a DNS source looks up, and where.
type DNSConfig struct {
	Name     string        // the name to resolve
	Type     string        // "a" (A and AAAA) or "srv"
	Port     int           // for "a": the backends' port (required); ignored for srv
	Interval time.Duration // re-resolve every Interval (default 30s), or sooner when the records' TTL runs out (min 1s)
	Server   string        // "host:port" of the DNS server to ask; "" = the first nameserver of /etc/resolv.conf
}

// Validate reports what is wrong with c, or nil if DNS can use it.
func (c DNSConfig) Validate() error {
	if c.Name == "" {
		return errors.New("dns: name: required")
	}
	if _, ok := dns.IsDomainName(c.Name); !ok {
		return fmt.Errorf("dns: name %q: not a domain name", c.Name)
	}
	switch strings.ToLower(c.Type) {
	case "a":
		if c.Port < 1 || c.Port > 65535 {
			return fmt.Errorf("dns: port %d: type a needs the backends' port, 1 to 65535", c.Port)
		}
	case "srv":
	default:
		return fmt.Errorf("dns: type %q: must be \"a\" or \"srv\"", c.Type)
	}
	if c.Server != "" {
		if _, _, err := net.SplitHostPort(c.Server); err != nil {
			return fmt.Errorf("dns: server %q: %v", c.Server, err)
		}
	}
	return nil
}

// DNS is a Source that looks a pool's backends up in DNS, again and again.
//
// With Type "a" the backends are the name's A and AAAA addresses, each
// with Port and weight 1. With Type "srv" they are the addresses of the
// SRV records' targets (from the answer's additional section, or looked up
// when it has none), each with its record's port. The name is used as
// given, as a fully qualified name: no search domains are tried. CNAME
// chains in answers are followed.
//
// Only the SRV records of the lowest priority value are used, as RFC 2782
// asks: the others are fallbacks, and a backend that fails is the health
// checks' business, not DNS's. SRV weights (0 to 65535) become tcplb
// weights (1 to [tcplb.MaxWeight]): if every weight in that group is at
// most MaxWeight they are taken as they are, 0 becoming 1; otherwise each
// is scaled by MaxWeight/largest, rounded, and at least 1, so the shares
// keep their proportions. An address reached through several records gets
// the sum of their weights, at most MaxWeight. A target that does not
// exist (NXDOMAIN) or has no address is skipped and logged.
//
// Queries go over UDP with EDNS0, and are retried over TCP when the answer
// is truncated. A lookup that fails (a timeout, SERVFAIL, a refusal) is
// logged and changes nothing, and so does one that finds no backend
// (NXDOMAIN, an empty answer): an empty DNS answer never empties a pool,
// since it is more often a broken zone than an intended drain. A failure
// while resolving one SRV target fails the whole lookup, so a backend is
// never dropped because its name timed out once.
//
// After a lookup, the next one is due when the shortest TTL among the
// records used runs out, or after Interval if that is sooner, but never in
// less than a second. After a failed lookup, DNS retries after 1s, then 2s,
// 4s and so on up to Interval. update is called only when the set differs
// from the last one passed, ignoring order (DNS servers rotate records).
type DNS struct {
	cfg DNSConfig
	log *slog.Logger

	timeout time.Duration // for one query
}

// NewDNS returns a DNS source for cfg, logging to log. cfg is checked by
// Run (and by cfg.Validate).
func NewDNS(cfg DNSConfig, log *slog.Logger) *DNS {
	return &DNS{cfg: cfg, log: log, timeout: dnsTimeout}
}

// String returns "dns", the type and the name (with the port for type
// "a"), for logs: "dns srv _app._tcp.example", "dns a app.example:3001".
func (d *DNS) String() string {
	if strings.EqualFold(d.cfg.Type, "a") {
		return "dns a " + net.JoinHostPort(d.cfg.Name, strconv.Itoa(d.cfg.Port))
	}
	return "dns " + strings.ToLower(d.cfg.Type) + " " + d.cfg.Name
}

// Run looks the name up, calls update with the backends found, and looks
// again when the TTL or Interval says, until ctx ends; then it returns
// ctx.Err(). An invalid DNSConfig is returned at once, since retrying
// cannot fix it. See DNS for what is looked up when.
func (d *DNS) Run(ctx context.Context, update func([]tcplb.BackendSpec)) error {
	if err := d.cfg.Validate(); err != nil {
		return err
	}
	interval := d.cfg.Interval
	if interval == 0 {
		interval = dnsInterval
	}
	interval = max(interval, dnsMinWait)

	var last []tcplb.BackendSpec
	var backoff time.Duration
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		specs, ttl, err := d.lookup(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			backoff = min(max(2*backoff, dnsMinWait), interval)
			d.log.Warn("dns lookup failed; keeping the last set", "source", d.String(), "retry", backoff, "err", err)
			timer.Reset(backoff)
			continue
		}
		backoff = 0
		wait := max(min(interval, ttl), dnsMinWait)
		if last != nil && sameBackendSet(specs, last) {
			d.log.Debug("dns lookup; set unchanged", "source", d.String(), "backends", len(specs), "next", wait)
		} else {
			last = specs
			d.log.Info("backend set changed", "source", d.String(), "backends", len(specs), "next", wait)
			update(specs)
		}
		timer.Reset(wait)
	}
}

// lookup finds the backends once. It returns them sorted by address,
// with the shortest TTL among the records used, or an error if there are
// none.
func (d *DNS) lookup(ctx context.Context) ([]tcplb.BackendSpec, time.Duration, error) {
	server, err := d.server()
	if err != nil {
		return nil, 0, err
	}
	q := &dnsQuerier{server: server, timeout: d.timeout, ttl: math.MaxUint32}
	name := dns.Fqdn(d.cfg.Name)
	var specs []tcplb.BackendSpec
	if strings.EqualFold(d.cfg.Type, "srv") {
		specs, err = d.lookupSRV(ctx, q, name)
	} else {
		var ips []net.IP
		ips, err = q.addrs(ctx, name, nil)
		for _, ip := range ips {
			specs = addBackend(specs, net.JoinHostPort(ip.String(), strconv.Itoa(d.cfg.Port)), 1)
		}
		if err == nil && len(specs) == 0 {
			err = fmt.Errorf("%s: no A or AAAA records", name)
		}
	}
	if err != nil {
		return nil, 0, err
	}
	slices.SortFunc(specs, func(a, b tcplb.BackendSpec) int { return cmp.Compare(a.Addr, b.Addr) })
	return specs, time.Duration(q.ttl) * time.Second, nil
}

// lookupSRV finds the backends of SRV name: the lowest priority group's
// targets' addresses.
func (d *DNS) lookupSRV(ctx context.Context, q *dnsQuerier, name string) ([]tcplb.BackendSpec, error) {
	r, err := q.query(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var group []*dns.SRV
	for _, rr := range q.answers(r, name, dns.TypeSRV) {
		srv := rr.(*dns.SRV)
		// Target "." says the service is not offered there (RFC 2782);
		// port 0 cannot be dialled.
		if srv.Target == "." || srv.Port == 0 {
			continue
		}
		switch {
		case len(group) == 0 || srv.Priority == group[0].Priority:
			group = append(group, srv)
		case srv.Priority < group[0].Priority:
			group = append(group[:0], srv)
		}
	}
	if len(group) == 0 {
		return nil, fmt.Errorf("%s: no usable SRV records", name)
	}
	var largest uint16
	for _, srv := range group {
		largest = max(largest, srv.Weight)
	}
	var specs []tcplb.BackendSpec
	for _, srv := range group {
		ips, err := q.addrs(ctx, srv.Target, r)
		if errors.Is(err, errNoSuchName) || err == nil && len(ips) == 0 {
			d.log.Warn("srv target has no address; skipping it", "source", d.String(), "target", srv.Target, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		w := srvWeight(srv.Weight, largest)
		for _, ip := range ips {
			specs = addBackend(specs, net.JoinHostPort(ip.String(), strconv.Itoa(int(srv.Port))), w)
		}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("%s: no SRV target has an address", name)
	}
	return specs, nil
}

// srvWeight maps SRV weight w, in a priority group whose largest weight
// is largest, to a tcplb weight: as it is if largest fits, else scaled by
// MaxWeight/largest; 0 becomes 1.
func srvWeight(w, largest uint16) int {
	if largest <= tcplb.MaxWeight {
		return max(int(w), 1)
	}
	return max(int(math.Round(float64(w)*tcplb.MaxWeight/float64(largest))), 1)
}

// addBackend appends addr with weight w to specs, or, if specs has addr
// already, adds w to its weight (at most MaxWeight).
func addBackend(specs []tcplb.BackendSpec, addr string, w int) []tcplb.BackendSpec {
	for i := range specs {
		if specs[i].Addr == addr {
			specs[i].Weight = min(specs[i].Weight+w, tcplb.MaxWeight)
			return specs
		}
	}
	return append(specs, tcplb.BackendSpec{Addr: addr, Weight: w})
}

// server returns the address of the DNS server to ask: the configured
// one, or the first nameserver of /etc/resolv.conf, read again each time
// so an edit is followed.
func (d *DNS) server() (string, error) {
	if d.cfg.Server != "" {
		return d.cfg.Server, nil
	}
	conf, err := dns.ClientConfigFromFile(dnsResolvConf)
	if err != nil {
		return "", fmt.Errorf("no server configured and %v", err)
	}
	if len(conf.Servers) == 0 {
		return "", fmt.Errorf("no server configured and no nameserver in %s", dnsResolvConf)
	}
	return net.JoinHostPort(conf.Servers[0], conf.Port), nil
}

// errNoSuchName is the error of a query answered NXDOMAIN.
var errNoSuchName = errors.New("no such name (NXDOMAIN)")

// dnsQuerier asks one server, and keeps the shortest TTL of the records
// its callers used.
type dnsQuerier struct {
	server  string
	timeout time.Duration
	ttl     uint32
}

// query asks for name's records of type qtype, over UDP and, if the
// answer is truncated, over TCP. An answer other than NOERROR is an
// error; NXDOMAIN's wraps errNoSuchName.
func (q *dnsQuerier) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(dnsUDPSize, false)
	r, err := q.exchange(ctx, "udp", m)
	if err == nil && r.Truncated {
		r, err = q.exchange(ctx, "tcp", m)
	}
	what := dns.TypeToString[qtype] + " " + name
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
		return r, nil
	case dns.RcodeNameError:
		return nil, fmt.Errorf("%s: %w", what, errNoSuchName)
	default:
		return nil, fmt.Errorf("%s: server answered %s", what, dns.RcodeToString[r.Rcode])
	}
}

// exchange sends m to the server over network and reads the answer, within
// q.timeout, and giving up at once when ctx ends.
func (q *dnsQuerier) exchange(ctx context.Context, network string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: q.timeout}
	conn, err := c.DialContext(ctx, q.server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The client obeys ctx's deadline only; end a read when ctx is cancelled.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	return r, err
}

// answers returns r's answer records of type qtype for name, following
// any CNAME chain from name, and lowers q.ttl to the shortest TTL among
// them and the chain.
func (q *dnsQuerier) answers(r *dns.Msg, name string, qtype uint16) []dns.RR {
	owner := name
	for range len(r.Answer) { // a chain is at most as long as the answer
		var next string
		for _, rr := range r.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, owner) {
				q.ttl = min(q.ttl, c.Hdr.Ttl)
				next = c.Target
				break
			}
		}
		if next == "" {
			break
		}
		owner = next
	}
	var rrs []dns.RR
	for _, rr := range r.Answer {
		if h := rr.Header(); h.Rrtype == qtype && strings.EqualFold(h.Name, owner) {
			q.ttl = min(q.ttl, h.Ttl)
			rrs = append(rrs, rr)
		}
	}
	return rrs
}

// addrs returns name's IPv4 and IPv6 addresses, each once: those in the
// additional section of srv (an SRV answer, or nil) if it has any for
// name, else the answers to A and AAAA queries. Both queries must succeed;
// NODATA is success with no address.
func (q *dnsQuerier) addrs(ctx context.Context, name string, srv *dns.Msg) ([]net.IP, error) {
	var ips []net.IP
	add := func(ip net.IP) {
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	if srv != nil {
		for _, rr := range srv.Extra {
			if !strings.EqualFold(rr.Header().Name, name) {
				continue
			}
			switch rr := rr.(type) {
			case *dns.A:
				q.ttl = min(q.ttl, rr.Hdr.Ttl)
				add(rr.A)
			case *dns.AAAA:
				q.ttl = min(q.ttl, rr.Hdr.Ttl)
				add(rr.AAAA)
			}
		}
		if len(ips) > 0 {
			return ips, nil
		}
	}
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r, err := q.query(ctx, name, qtype)
		if err != nil {
			return nil, err
		}
		for _, rr := range q.answers(r, name, qtype) {
			switch rr := rr.(type) {
			case *dns.A:
				add(rr.A)
			case *dns.AAAA:
				add(rr.AAAA)
			}
		}
	}
	return ips, nil
}
