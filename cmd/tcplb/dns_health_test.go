//go:build linux

package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// dnsHealthQuery is a DNS query for name.test A (ID 0x7463, "tc", and
// recursion desired), as a YAML double-quoted string: every byte is below
// 0x80, so each escape is one byte.
const dnsHealthQuery = `"\x74\x63\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04name\x04test\x00\x00\x01\x00\x01"`

// apiBackend is a backend as the admin API lists it.
type apiBackend struct {
	Addr   string
	State  string
	Reason string
}

// apiPool returns the backends of the daemon's pool name, keyed by address.
func apiPool(t *testing.T, admin, name string) map[string]apiBackend {
	t.Helper()
	var pools struct {
		Pools []struct {
			Name     string
			Backends []apiBackend
		}
	}
	getJSON(t, "http://"+admin+"/api/v1/pools", &pools)
	for _, p := range pools.Pools {
		if p.Name == name {
			out := make(map[string]apiBackend)
			for _, b := range p.Backends {
				out[b.Addr] = b
			}
			return out
		}
	}
	t.Fatalf("/api/v1/pools = %+v: no pool %s", pools, name)
	return nil
}

// TestDNSHealthCheck: UDP health checks through the daemon's config, of
// real dnsmasq servers, with a real DNS query as send and the reply's ID
// and flags (0x8580: a response, authoritative, recursion desired and
// available, NOERROR) as expect_hex. Both servers pass; a pool that
// expects NXDOMAIN's flags takes its server down with the reply it got; a
// killed server goes down on its ICMP port unreachable, queries go to the
// other, and started again on its port it comes back up. Passive checks
// are off, so only the active checks move the backends.
func TestDNSHealthCheck(t *testing.T) {
	needDig(t)
	a, _ := dnsmasq(t, "127.0.0.1", "192.0.2.1")
	b, bp := dnsmasq(t, "127.0.0.1", "192.0.2.2")
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners:
  - {name: dns, protocol: udp, listen: 127.0.0.1:0, pool: dns, udp_responses: 1}
  - {name: wrong, protocol: udp, listen: 127.0.0.1:0, pool: wrong, udp_responses: 1}
pools:
  - name: dns
    passive: {max_fails: 0}
    health: &check
      network: udp
      interval: 50ms
      timeout: 1s
      rise: 2
      fall: 2
      send: %s
      expect_hex: "7463 8580"
    backends: [%q, %q]
  - name: wrong
    passive: {max_fails: 0}
    health:
      <<: *check
      expect_hex: "7463 8583"
    backends: [%q]
admin: {listen: 127.0.0.1:0}
`, dnsHealthQuery, a, b, a))
	d := startDaemon(t, "-config", cfg)
	lb := d.listenAddr(t, 1)
	admin := d.waitLog(t, "admin listening", 1)["addr"].(string)

	// The pool expecting the wrong flags: down at its first check, with
	// dnsmasq's real reply in the reason.
	rec := d.waitLog(t, "backend down", 1)
	wantErr := `expect "tc\x85\x83": got "tc\x85\x80\x00\x01\x00\x01`
	if rec["pool"] != "wrong" || rec["check"] != "udp send/expect" || !strings.Contains(fmt.Sprint(rec["err"]), wantErr) {
		t.Fatalf("first backend down %v, want pool wrong, check udp send/expect, an err with %s", rec, wantErr)
	}
	if st := apiPool(t, admin, "wrong")[a]; st.State != "down" || !strings.Contains(st.Reason, wantErr) {
		t.Errorf("API: pool wrong's backend %+v, want down with %s", st, wantErr)
	}

	// Both real checks pass: after several intervals (each backend's
	// first failure would have taken it down at once), both are up.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		for addr, st := range apiPool(t, admin, "dns") {
			if st.State != "up" {
				t.Fatalf("API: pool dns backend %s %+v while both servers answer, want up", addr, st)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, want := range []string{"192.0.2.1", "192.0.2.2"} {
		if ans, err := dig(lb, "name.test"); err != nil || ans != want {
			t.Fatalf("query %d, both up: %q, %v; want %s", i, ans, err, want)
		}
	}

	// Killed: the checks get ICMP port unreachable and take it down.
	bp.kill()
	rec = d.waitLog(t, "backend down", 2)
	wantErr = "udp " + b + ": connection refused (ICMP port unreachable)"
	if rec["pool"] != "dns" || rec["backend"] != b || rec["err"] != wantErr || rec["failures"] != float64(2) {
		t.Fatalf("backend down %v, want pool dns, backend %s, failures 2 (fall), err %s", rec, b, wantErr)
	}
	backends := apiPool(t, admin, "dns")
	if st := backends[b]; st.State != "down" || st.Reason != "check failed: "+wantErr {
		t.Errorf("API: killed server %+v, want down, reason check failed: %s", st, wantErr)
	}
	if st := backends[a]; st.State != "up" {
		t.Errorf("API: live server %+v, want up", st)
	}
	for i := range 3 {
		if ans, err := dig(lb, "name.test"); err != nil || ans != "192.0.2.1" {
			t.Fatalf("query %d with %s down: %q, %v; want 192.0.2.1 from the live server", i, b, ans, err)
		}
	}

	// Started again on its port: two passing checks bring it back.
	host, port, _ := net.SplitHostPort(b)
	if p := startDnsmasq(t, bp.name, host, port, "192.0.2.2"); !p.waitLine(t, "started") {
		t.Fatalf("dnsmasq did not start again on %s; its output:\n%s", b, p.output())
	}
	rec = d.waitLog(t, "backend up", 1)
	if rec["pool"] != "dns" || rec["backend"] != b || rec["successes"] != float64(2) {
		t.Fatalf("backend up %v, want pool dns, backend %s, successes 2 (rise)", rec, b)
	}
	if st := apiPool(t, admin, "dns")[b]; st.State != "up" {
		t.Errorf("API: restarted server %+v, want up", st)
	}
}
