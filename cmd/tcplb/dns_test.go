//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// dnsmasq starts a real dnsmasq on a free port of host that answers
// name.test with answer, and returns its address and process (killed at
// cleanup). The port is picked free just before (for UDP and TCP: dnsmasq
// binds both); should something take it in between, dnsmasq exits, and it
// is started once more on another port.
func dnsmasq(t *testing.T, host, answer string) (string, *proc) {
	t.Helper()
	bin := lookTool(t, "dnsmasq", "dnsmasq not found: install the Debian package dnsmasq (apt-get install dnsmasq)")
	for attempt := 1; ; attempt++ {
		port := freeDualPort(t, host)
		p := startDnsmasq(t, bin, host, port, answer)
		// dnsmasq binds its sockets before it logs "started".
		if p.waitLine(t, "started") {
			addr := net.JoinHostPort(host, port)
			// It answers (directly, not through tcplb) with its own address.
			if got, err := dig(addr, "name.test"); err != nil || got != answer {
				t.Fatalf("dnsmasq %s asked directly: %q, %v, want %s; its output:\n%s", addr, got, err, answer, p.output())
			}
			return addr, p
		}
		if attempt == 2 {
			t.Fatalf("dnsmasq on %s exited twice before it started; its output:\n%s", host, p.output())
		}
		t.Logf("dnsmasq on %s port %s exited before it started (port taken?), trying another port; its output:\n%s", host, port, p.output())
	}
}

// startDnsmasq starts the dnsmasq at bin on host and port, answering
// name.test with answer, without waiting for it to start.
func startDnsmasq(t *testing.T, bin, host, port, answer string) *proc {
	t.Helper()
	return startProc(t, bin, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--bind-interfaces", "--listen-address="+host, "--port="+port, "--user=root",
		"--pid-file=", "--host-record=name.test,"+answer)
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
			a, _ := dnsmasq(t, host, "192.0.2.1")
			b, _ := dnsmasq(t, host, "192.0.2.2")
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

// TestDNSBackendDown: a dnsmasq that is killed answers with ICMP port
// unreachable; with passive max_fails 1 that ends the session that reached
// it and ejects it, and every later query is answered by the other server.
func TestDNSBackendDown(t *testing.T) {
	needDig(t)
	a, _ := dnsmasq(t, "127.0.0.1", "192.0.2.1")
	b, bp := dnsmasq(t, "127.0.0.1", "192.0.2.2")
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners: [{protocol: udp, listen: 127.0.0.1:0, pool: dns, udp_responses: 1}]
pools: [{name: dns, passive: {max_fails: 1, cooldown: 1m}, backends: [%q, %q]}]
`, a, b))
	d := startDaemon(t, "-config", cfg)
	lb := d.listenAddr(t, 1)
	// Both up: round robin (starting at a) answers from each in turn.
	for i, want := range []string{"192.0.2.1", "192.0.2.2"} {
		if ans, err := dig(lb, "name.test"); err != nil || ans != want {
			t.Fatalf("query %d, both servers up: %q, %v; want %s", i, ans, err, want)
		}
	}
	bp.kill()
	// Round robin: the next query goes to a, the one after to the killed
	// b: no answer, dig gives up after its 2 s; the ICMP error ends that
	// session and ejects b.
	if ans, err := dig(lb, "name.test"); err != nil || ans != "192.0.2.1" {
		t.Fatalf("third query (to the live server): %q, %v; want 192.0.2.1", ans, err)
	}
	if ans, err := dig(lb, "name.test"); err == nil {
		t.Fatalf("fourth query (to the killed server) answered %q", ans)
	}
	d.waitLog(t, "udp session", 4)
	unreachable := 0
	for _, rec := range d.records("udp session") {
		if rec["end"] == "backend unreachable" {
			if unreachable++; rec["backend"] != b {
				t.Errorf("session %v ended backend unreachable, want only the killed server %s's", rec, b)
			}
		}
	}
	if unreachable != 1 {
		t.Fatalf("%d of the first four sessions ended backend unreachable, want 1; sessions: %v", unreachable, d.records("udp session"))
	}
	if rec := d.waitLog(t, "backend ejected", 1); rec["backend"] != b {
		t.Fatalf("ejection %v, want the killed server %s", rec, b)
	}
	for i := range 4 {
		if ans, err := dig(lb, "name.test"); err != nil || ans != "192.0.2.1" {
			t.Fatalf("query %d after the ejection: %q, %v; want 192.0.2.1 from the live server", i, ans, err)
		}
	}
	// The first four sessions were logged before these began.
	d.waitLog(t, "udp session", 8)
	for _, rec := range d.records("udp session")[4:] {
		if rec["end"] != "responses" || rec["backend"] != a {
			t.Errorf("session after the ejection %v, want end responses on %s", rec, a)
		}
	}
}

// lookTool returns the path of the program name, also looking in the sbin
// directories (dnsmasq is in /usr/sbin, which a user's PATH may lack), or
// fails the test with missing.
func lookTool(t *testing.T, name, missing string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatal(missing)
	return ""
}

// freeDualPort returns a port on ip that was free a moment ago for both TCP
// and UDP (dnsmasq and iperf3 bind both).
func freeDualPort(t *testing.T, ip string) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, port))
		l.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatalf("no port on %s free for both TCP and UDP in 20 tries", ip)
	return ""
}

// proc is a program run by a test, its stdout and stderr collected by
// line. It is killed at the test's cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the program has exited
	mu   sync.Mutex
	out  []string
	more chan struct{} // signalled on each new line
}

func startProc(t *testing.T, path string, args ...string) *proc {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	p := &proc{name: path, cmd: cmd, done: make(chan struct{}), more: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
		r.Close()
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill kills the program and waits until it has exited.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.out, "\n")
}

// waitLine waits up to testDeadline for an output line containing s. It
// returns false if the program exits first.
func (p *proc) waitLine(t *testing.T, s string) bool {
	t.Helper()
	timeout := time.After(testDeadline)
	for {
		p.mu.Lock()
		for _, l := range p.out {
			if strings.Contains(l, s) {
				p.mu.Unlock()
				return true
			}
		}
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-p.done:
			// Lines written just before the exit may not be collected yet;
			// done is closed only after the reader has seen EOF, so one
			// more look is complete.
			return strings.Contains(p.output(), s)
		case <-timeout:
			t.Fatalf("%s wrote no line with %q within %v; its output:\n%s", p.name, s, testDeadline, p.output())
		}
	}
}

// iperfSum is the part of iperf3's --json output the test reads.
type iperfSum struct {
	Bytes       int64   `json:"bytes"`
	Packets     int64   `json:"packets"`
	LostPackets int64   `json:"lost_packets"`
	LostPercent float64 `json:"lost_percent"`
}

// TestIperf3UDP runs iperf3's UDP test through tcplb. iperf3 talks over a
// TCP control connection and sends its UDP data to the same port, so tcplb
// has a TCP and a UDP listener on one address, each with a pool (a pool
// serves one protocol) of the one iperf3 server.
func TestIperf3UDP(t *testing.T) {
	bin := lookTool(t, "iperf3", "iperf3 not found: install the Debian package iperf3 (apt-get install iperf3)")
	var srv string
	for attempt := 1; ; attempt++ {
		port := freeDualPort(t, "127.0.0.1")
		p := startProc(t, bin, "-s", "-1", "-B", "127.0.0.1", "-p", port, "--forceflush")
		if p.waitLine(t, "Server listening on "+port) {
			srv = net.JoinHostPort("127.0.0.1", port)
			break
		}
		if attempt == 2 {
			t.Fatalf("iperf3 -s exited twice before listening; its output:\n%s", p.output())
		}
		t.Logf("iperf3 -s on port %s exited before listening (port taken?), trying another; its output:\n%s", port, p.output())
	}
	lb := net.JoinHostPort("127.0.0.1", freeDualPort(t, "127.0.0.1"))
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners:
  - {name: control, listen: %q, pool: control}
  - {name: data, protocol: udp, listen: %q, pool: data}
pools:
  - {name: control, backends: [%q]}
  - {name: data, backends: [%q]}
timeouts: {udp_idle: 1s}
`, lb, lb, srv, srv))
	d := startDaemon(t, "-config", cfg)
	d.waitLog(t, "listening", 2)
	_, lbPort, _ := net.SplitHostPort(lb)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-c", "127.0.0.1", "-p", lbPort,
		"-u", "-b", "50M", "-t", "2", "-l", "1200", "--json").Output()
	var res struct {
		Error string `json:"error"`
		End   struct {
			Sent     iperfSum `json:"sum_sent"`
			Received iperfSum `json:"sum_received"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			out = append(out, ee.Stderr...)
		}
		t.Fatalf("iperf3 -c (%v) wrote no JSON result (%v):\n%s", err, jerr, out)
	}
	if err != nil || res.Error != "" {
		t.Fatalf("iperf3 -c through tcplb: %v: %s", err, res.Error)
	}
	sent, got := res.End.Sent, res.End.Received
	t.Logf("iperf3 UDP through tcplb: sent %d datagrams (%d bytes), the server got %d bytes, lost %d (%.2f%%)",
		sent.Packets, sent.Bytes, got.Bytes, got.LostPackets, got.LostPercent)
	if got.Bytes == 0 || got.Packets == 0 {
		t.Fatalf("the iperf3 server received nothing: %+v", got)
	}
	if got.LostPercent >= 5 {
		t.Errorf("iperf3 lost %.2f%% of its datagrams through tcplb, want under 5%%", got.LostPercent)
	}

	// The data went through tcplb's UDP listener, as one session, which
	// ends a second after the test.
	rec := d.waitLog(t, "udp session", 1)
	if rec["listener"] != "data" || rec["backend"] != srv || rec["end"] != "idle timeout" {
		t.Errorf("access log %v, want a session of listener data to %s ended by idle timeout", rec, srv)
	}
	if n, _ := rec["client_datagrams"].(float64); int64(n) < got.Packets-got.LostPackets {
		t.Errorf("tcplb relayed %v client datagrams, fewer than the %d the server got", rec["client_datagrams"], got.Packets-got.LostPackets)
	}
	if c := d.waitLog(t, "connection", 1); c["listener"] != "control" || c["backend"] != srv {
		t.Errorf("access log %v, want iperf3's control connection on listener control to %s", c, srv)
	}
}
