package config

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, that what it accepts is a
// usable configuration, and that what it rejects it explains one problem
// per line.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tt := range parseTests {
		f.Add([]byte(tt.in))
	}
	for _, tt := range parseErrorTests {
		f.Add([]byte(tt.in))
	}
	// Checks and limits in forms the tables do not use: anchors of the
	// sections themselves, flow style, nulls and merges of each.
	for _, pools := range []string{
		"pools: [{name: p, health: &h {http: &x {}}, passive: &s {}, backends: [a:1]}, {name: q, health: *h, passive: *s, backends: [a:1]}]\n",
		"pools: [{name: p, health: {http: ~, send: ~}, passive: {max_fails: ~}, backends: [{addr: a:1, max_conns: 1}]}]\n",
		"pools:\n  - &p {name: p, health: {rise: 1}, passive: {max_fails: 0}, backends: [a:1]}\n  - <<: [*p, {health: {}}]\n    name: q\n    passive: {}\n",
		"pools: [{name: p, strategy: hash, slow_start: 0s, all_down: refuse, health: {expect: \"\\0\"}, backends: [a:1]}]\ntimeouts: {queue: 1ns}\n",
		"pools: [{name: p, health: {http: {path: /, host: h, status: 100}, port: 1, timeout: 1h}, backends: [a:1]}]\n",
	} {
		f.Add([]byte(okListeners + pools))
	}
	// The edge keys: PROXY protocol, access lists, limits, SNI routes and
	// their timeouts, in the same kinds of forms, and numbers as floats.
	for _, listeners := range []string{
		"listeners: [{listen: \":1\", proxy_protocol: accept, trusted: &t [10.0.0.0/8, \"::1\"], allow: *t, deny: [192.0.2.1]}]\n",
		"listeners: [{listen: \":1\", proxy_protocol: optional, trusted: [\"2001:db8::/32\"], allow: [], deny: ~}]\n",
		"listeners: [{listen: \":1\", max_conns: 1, max_conns_per_source: 0x10, rate_per_source: .5, burst_per_source: 1_0}]\n",
		"listeners: [{listen: \":1\", rate_per_source: -.inf}, {listen: \":2\", rate_per_source: .NaN}, {listen: \":3\", rate_per_source: 1e308}]\n",
		"listeners: [{listen: \":1\", sni_routes: [{server_name: A.Example., pool: p}, {server_name: \"*.a.example\", pool: p}], sni_fallback: close}]\n",
		"listeners:\n  - &l {listen: \":1\", sni_routes: &r [{server_name: a, pool: p}], trusted: [\"10.0.0.1/8\"]}\n  - <<: *l\n    listen: \":2\"\n    sni_routes: [{<<: *r, pool: q}]\n",
		"listeners: [{listen: \":1\", sni_routes: [{server_name: \"\\u212a.example\"}, {server_name: \"*\"}, {pool: ~}], sni_fallback: ~}]\n",
	} {
		f.Add([]byte(listeners + "pools: [{name: p, proxy_protocol: v2, backends: [a:1]}]\ntimeouts: {proxy_header: 1ms, client_hello: ~}\n"))
	}

	// Discovery in the same kinds of forms: each source, nulls, empty
	// values, anchors of the section and its etcd part, and merges.
	for _, pools := range []string{
		"pools: [{name: p, discovery: {file: /a, dns: ~, etcd: ~}, backends: []}]\n",
		"pools: [{name: p, discovery: {dns: A.Example., port: 0x50, interval: 1m30s, dns_server: \"[fe80::1%eth0]:53\"}}]\n",
		"pools: [{name: p, strategy: hash, discovery: {dns: _a._tcp.b, dns_type: srv, interval: 0s, dns_server: \"10.0.0.53:53\"}}]\n",
		"pools: [{name: p, discovery: &d {etcd: &e {endpoints: [\"http://e:1\", \"https://[::1]:2/\"], prefix: /, dial_timeout: 1ns}}}, {name: q, discovery: *d}, {name: r, discovery: {etcd: *e}}]\n",
		"pools:\n  - &p {name: p, discovery: {dns: a, port: 1}}\n  - <<: *p\n    name: q\n    discovery: {file: /b}\n  - {<<: *p, name: r, discovery: ~}\n",
		"pools: [{name: p, discovery: {}, backends: [a:1]}, {name: q, discovery: {file: /a, dns_type: srv, port: -1, interval: 1ms, etcd: {}}}]\n",
		"pools: [{name: p, discovery: {dns: \"*.a\", dns_type: SRV, port: 65536, dns_server: a:53}}, {name: q, discovery: {etcd: {endpoints: [e:1, \"http://e\"], prefix: a}}}]\n",
	} {
		f.Add([]byte("listeners: [{listen: \":1\", pool: p}]\n" + pools))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse(%q) = %+v, %v, want nil config with an error", data, *c, err)
			}
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			if len(errs) == 0 || len(errs) > maxErrors+1 {
				t.Fatalf("Parse(%q) = _, %d errors, want 1 to %d", data, len(errs), maxErrors+1)
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) || ce.Msg == "" || strings.ContainsAny(e.Error(), "\r\n") {
					t.Fatalf("Parse(%q) = _, error %q (%T), want an *Error on one line", data, e, e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %+v, nil, but Validate() = %v", data, *c, err)
		}
		if len(c.Listeners) == 0 || len(c.Pools) == 0 {
			t.Fatalf("Parse(%q) = %+v, nil, want at least one listener and pool", data, *c)
		}
		hasPool := func(name string) bool {
			return slices.ContainsFunc(c.Pools, func(p Pool) bool { return p.Name == name })
		}
		for _, l := range c.Listeners {
			if l.Name == "" || !hasPool(l.Pool) {
				t.Fatalf("Parse(%q) = %+v, nil, want listeners named and with a pool", data, *c)
			}
			// What the daemon builds its edge from must hold.
			for _, list := range [][]string{l.Trusted, l.Allow, l.Deny} {
				for _, s := range list {
					if p, err := ParsePrefix(s); err != nil || !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
						t.Fatalf("Parse(%q) = %+v, nil, with prefix %q: ParsePrefix = %v, %v", data, *c, s, p, err)
					}
				}
			}
			if (l.ProxyProtocol != "") != (len(l.Trusted) > 0) || l.RatePerSource < 0 || l.RatePerSource != l.RatePerSource {
				t.Fatalf("Parse(%q) = %+v, nil, with a bad PROXY protocol or rate", data, *c)
			}
			for _, r := range l.SNIRoutes {
				if !hasPool(r.Pool) || !validServerName(serverNameKey(r.ServerName)) {
					t.Fatalf("Parse(%q) = %+v, nil, with a bad SNI route %+v", data, *c, r)
				}
			}
		}
		if c.Timeouts.ProxyHeader <= 0 || c.Timeouts.ClientHello <= 0 {
			t.Fatalf("Parse(%q) = %+v, nil, with a timeout that is not positive", data, *c)
		}
		// Pools do not share health or discovery settings, even through
		// aliases, so that changing one pool's does not change another's.
		seen := make(map[any]bool)
		for _, p := range c.Pools {
			if h := p.Health; h != nil {
				if seen[h] || h.HTTP != nil && seen[h.HTTP] {
					t.Fatalf("Parse(%q) = %+v, nil, with pools sharing health settings", data, *c)
				}
				seen[h] = true
				if h.HTTP != nil {
					seen[h.HTTP] = true
				}
			}
			if d := p.Discovery; d != nil {
				if seen[d] || d.Etcd != nil && seen[d.Etcd] {
					t.Fatalf("Parse(%q) = %+v, nil, with pools sharing discovery settings", data, *c)
				}
				seen[d] = true
				if d.Etcd != nil {
					seen[d.Etcd] = true
				}
			}
			checkDiscovery(t, data, p)
		}
	})
}

// checkDiscovery fails t unless the pool p, parsed from data, has either
// static backends or one complete discovery source, with the DNS defaults
// filled in, as the daemon builds its sources from.
func checkDiscovery(t *testing.T, data []byte, p Pool) {
	t.Helper()
	d := p.Discovery
	if d == nil {
		if len(p.Backends) == 0 {
			t.Fatalf("Parse(%q): pool %q has neither backends nor discovery", data, p.Name)
		}
		return
	}
	n := 0
	for _, set := range []bool{d.File != "", d.DNS != "", d.Etcd != nil} {
		if set {
			n++
		}
	}
	ok := n == 1 && len(p.Backends) == 0
	if d.DNS == "" {
		ok = ok && d.DNSType == "" && d.Port == 0 && d.Interval == 0 && d.DNSServer == ""
	} else {
		name := serverNameKey(d.DNS)
		ok = ok && validServerName(name) && !strings.HasPrefix(name, "*") && d.Interval >= time.Second
		switch d.DNSType {
		case DNSTypeA:
			ok = ok && d.Port >= 1 && d.Port <= 65535
		case DNSTypeSRV:
			ok = ok && d.Port == 0
		default:
			ok = false
		}
		if d.DNSServer != "" {
			host, _, err := net.SplitHostPort(d.DNSServer)
			_, perr := netip.ParseAddr(host)
			ok = ok && err == nil && perr == nil
		}
	}
	if e := d.Etcd; e != nil {
		ok = ok && len(e.Endpoints) > 0 && strings.HasPrefix(e.Prefix, "/") && e.DialTimeout > 0
		for _, ep := range e.Endpoints {
			u, err := url.Parse(ep)
			ok = ok && err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" && u.Port() != ""
		}
	}
	if !ok {
		t.Fatalf("Parse(%q): pool %q has a bad discovery %+v (etcd %+v)", data, p.Name, *d, d.Etcd)
	}
}
