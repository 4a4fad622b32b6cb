//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// dnsmasq starts a real dnsmasq on a free UDP port of host that answers
// name.test with answer, and returns its address.
func dnsmasq(t *testing.T, host, answer string) string {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Fatal("dnsmasq not found: install the Debian package dnsmasq (apt-get install dnsmasq)")
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(host)})
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	cmd := exec.Command("dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--bind-interfaces", "--listen-address="+host, fmt.Sprintf("--port=%d", port), "--user=root",
		"--pid-file=", "--host-record=name.test,"+answer)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	// Ready once it answers (directly, not through tcplb).
	waitFor(t, "dnsmasq on "+addr+" to answer", func() bool {
		got, err := dig(addr, "name.test")
		return err == nil && got == answer
	})
	return addr
}

// dig asks server (host:port) for name's A record, one try, and returns
// the answer; no reply within 2 s is an error (dig exits 9).
func dig(server, name string) (string, error) {
	host, port, _ := net.SplitHostPort(server)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", "@"+host, "-p", port, name, "A", "+short", "+tries=1", "+time=2").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("dig @%s: %v: %s", server, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func needDig(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatal("dig not found: install the Debian package bind9-dnsutils (apt-get install bind9-dnsutils)")
	}
}

// TestDNSBalancer runs the README's one-line DNS balancer in front of two
// real dnsmasq servers, on IPv4 and IPv6, and asks it with dig: every
// query is answered, each is a session of its own (dig uses a new port per
// run) ended by its one reply, and round robin alternates the servers.
func TestDNSBalancer(t *testing.T) {
	needDig(t)
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			if pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(host)}); err != nil {
				t.Skipf("no %s loopback here: %v", host, err)
			} else {
				pc.Close()
			}
			a, b := dnsmasq(t, host, "192.0.2.1"), dnsmasq(t, host, "192.0.2.2")
			d := startDaemon(t, "-protocol", "udp", "-udp-responses", "1",
				"-listen", net.JoinHostPort(host, "0"), "-backends", a+","+b)
			lb := d.listenAddr(t, 1)
			var got []string
			for range 4 {
				ans, err := dig(lb, "name.test")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ans)
			}
			if want := "192.0.2.1 192.0.2.2 192.0.2.1 192.0.2.2"; strings.Join(got, " ") != want {
				t.Errorf("answers %v, want %s (round robin over the two servers)", got, want)
			}
			for i := range 4 {
				if rec := d.waitLog(t, "udp session", i+1); rec["end"] != "responses" {
					t.Errorf("session %d: %v, want end responses", i, rec)
				}
			}
		})
	}
}

// TestDNSBackendDown: a dnsmasq that has stopped answers with ICMP port
// unreachable; with passive max_fails 1 that ejects it, and every later
// query is answered by the other server.
func TestDNSBackendDown(t *testing.T) {
	needDig(t)
	a := dnsmasq(t, "127.0.0.1", "192.0.2.1")
	// b: a port where nothing listens (a stopped server).
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b := pc.LocalAddr().String()
	pc.Close()
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners: [{protocol: udp, listen: 127.0.0.1:0, pool: dns, udp_responses: 1}]
pools: [{name: dns, passive: {max_fails: 1, cooldown: 1m}, backends: [%q, %q]}]
`, b, a))
	d := startDaemon(t, "-config", cfg)
	lb := d.listenAddr(t, 1)
	// The first query goes to b (round robin starts there): no answer,
	// dig gives up after its 2 s; the ICMP error ejects b.
	if ans, err := dig(lb, "name.test"); err == nil {
		t.Fatalf("first query (to the stopped server) answered %q", ans)
	}
	if rec := d.waitLog(t, "udp session", 1); rec["end"] != "backend unreachable" || rec["backend"] != b {
		t.Fatalf("first session %v, want end backend unreachable on %s", rec, b)
	}
	for i := range 4 {
		if ans, err := dig(lb, "name.test"); err != nil || ans != "192.0.2.1" {
			t.Fatalf("query %d after the ejection: %q, %v; want 192.0.2.1 from the live server", i, ans, err)
		}
	}
}
