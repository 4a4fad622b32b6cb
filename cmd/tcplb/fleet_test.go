//go:build unix

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/tcplb/tcplb/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// poolBackends returns the backend addresses a daemon's admin API lists for
// its first pool.
func poolBackends(t *testing.T, admin string) []string {
	t.Helper()
	var pools struct {
		Pools []struct{ Backends []struct{ Addr string } }
	}
	getJSON(t, "http://"+admin+"/api/v1/pools", &pools)
	var out []string
	for _, b := range pools.Pools[0].Backends {
		out = append(out, b.Addr)
	}
	slices.Sort(out)
	return out
}

// greetingFrom connects to addr from the loopback address src and returns
// the backend's name.
func greetingFrom(t *testing.T, src, addr string) string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: testDeadline}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("from %s: %v", src, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testDeadline))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("from %s through %s: %v", src, addr, err)
	}
	name, _, _ := strings.Cut(string(buf[:n]), " ")
	return name
}

func TestDiscoveryFile(t *testing.T) {
	b1, b2 := backendServer(t, "b1"), backendServer(t, "b2")
	dir := t.TempDir()
	list := filepath.Join(dir, "backends.txt")
	writeConfig(t, list, "# app servers\n"+b1+"\n")
	cfg := writeFile(t, "file.yaml", fmt.Sprintf(`
listeners: [{listen: "127.0.0.1:0"}]
pools: [{name: app, discovery: {file: %q}}]
admin: {listen: "127.0.0.1:0"}
`, list))
	d := startDaemon(t, "-config", cfg)
	addr := d.listenAddr(t, 1)
	admin := d.waitLog(t, "admin listening", 1)["addr"].(string)
	if who := greeting(t, addr); who != "b1" {
		t.Fatalf("answered by %q, want b1 from the file", who)
	}
	writeConfig(t, list, b2+" 2\n")
	d.waitLog(t, "discovery: backends", 2)
	if got := poolBackends(t, admin); len(got) != 1 || got[0] != b2 {
		t.Fatalf("backends after the file changed: %v, want [%s]", got, b2)
	}
	if who := greeting(t, addr); who != "b2" {
		t.Errorf("answered by %q after the change, want b2", who)
	}
	writeConfig(t, list, b2+"\nnot an address\n")
	rec := d.waitLog(t, "invalid backend file; keeping the last set", 1)
	t.Logf("malformed file: %v", rec)
	if !strings.Contains(fmt.Sprint(rec), ":2:") {
		t.Errorf("malformed file log %v does not name line 2", rec)
	}
	if who := greeting(t, addr); who != "b2" {
		t.Errorf("after a malformed file: answered by %q, want b2 still", who)
	}
	d.stop(t)
}

// etcdDaemon starts a tcplb reading backends from etcd under prefix with
// strategy hash, and returns it with its listener and admin addresses.
func etcdDaemon(t *testing.T, endpoint, prefix string) (*daemon, string, string) {
	t.Helper()
	cfg := writeFile(t, "etcd.yaml", fmt.Sprintf(`
listeners: [{listen: "127.0.0.1:0"}]
pools:
  - name: app
    strategy: hash
    discovery: {etcd: {endpoints: [%q], prefix: %q}}
admin: {listen: "127.0.0.1:0"}
timeouts: {drain: 2s}
`, endpoint, prefix))
	d := startDaemon(t, "-config", cfg)
	return d, d.listenAddr(t, 1), d.waitLog(t, "admin listening", 1)["addr"].(string)
}

func TestFleetSameMappingThroughEtcd(t *testing.T) {
	e := etcdtest.Start(t)
	cli := e.Client()
	ctx := context.Background()
	names := map[string]string{}
	for _, n := range []string{"b1", "b2", "b3", "b4"} {
		addr := backendServer(t, n)
		names[addr] = n
		if _, err := cli.Put(ctx, "/tcplb/app/"+addr, ""); err != nil {
			t.Fatal(err)
		}
	}
	_, lbA, adminA := etcdDaemon(t, e.Endpoint(), "/tcplb/app/")
	_, lbB, adminB := etcdDaemon(t, e.Endpoint(), "/tcplb/app/")

	mapping := func() map[string]string {
		m := map[string]string{}
		for i := 1; i <= 100; i++ {
			src := fmt.Sprintf("127.0.3.%d", i)
			a, b := greetingFrom(t, src, lbA), greetingFrom(t, src, lbB)
			if a != b {
				t.Errorf("client %s: instance A sent it to %s, instance B to %s", src, a, b)
			}
			m[src] = a
		}
		return m
	}
	before := mapping()

	// Remove one backend: both instances must drop it within a second.
	var removed string
	for addr, n := range names {
		if n == "b3" {
			removed = addr
		}
	}
	start := time.Now()
	if _, err := cli.Delete(ctx, "/tcplb/app/"+removed); err != nil {
		t.Fatal(err)
	}
	for _, admin := range []string{adminA, adminB} {
		for slices.Contains(poolBackends(t, admin), removed) {
			if time.Since(start) > time.Second {
				t.Fatalf("instance %s still lists %s a second after its key was deleted", admin, removed)
			}
			time.Sleep(5 * time.Millisecond) // polling the admin API
		}
	}
	converged := time.Since(start)
	after := mapping()
	moved, onRemoved := 0, 0
	for src, was := range before {
		if was == "b3" {
			onRemoved++
		}
		switch {
		case after[src] == "b3":
			t.Errorf("client %s still sent to the removed backend", src)
		case was != "b3" && after[src] != was:
			moved++
		}
	}
	if onRemoved == 0 {
		t.Error("no client was on the removed backend: the test proves nothing")
	}
	t.Logf("both instances converged %v after the delete; %d clients were on the removed backend; %d of the other %d moved", converged, onRemoved, moved, 100-onRemoved)
}

func TestEtcdChangesUnderLoad(t *testing.T) {
	e := etcdtest.Start(t)
	cli := e.Client()
	ctx := context.Background()
	b1, b2, b3 := backendServer(t, "b1"), backendServer(t, "b2"), backendServer(t, "b3")
	for _, a := range []string{b1, b2} {
		if _, err := cli.Put(ctx, "/tcplb/load/"+a, ""); err != nil {
			t.Fatal(err)
		}
	}
	d, addr, _ := etcdDaemon(t, e.Endpoint(), "/tcplb/load/")
	ld := startLoad(t, addr, 16)
	ld.waitServed(t, 200)
	for i := range 20 {
		// Alternate {b1,b2} and {b2,b3}: b2 always stays.
		var err error
		if i%2 == 0 {
			_, err = cli.Txn(ctx).Then(putOp("/tcplb/load/"+b3), deleteOp("/tcplb/load/"+b1)).Commit()
		} else {
			_, err = cli.Txn(ctx).Then(putOp("/tcplb/load/"+b1), deleteOp("/tcplb/load/"+b3)).Commit()
		}
		if err != nil {
			t.Fatal(err)
		}
		d.waitLog(t, "discovery: backends", i+2)
		ld.waitServed(t, 200)
	}
	ld.finish()
	if len(ld.failed) > 0 {
		t.Errorf("%d of %d client connections failed across 20 etcd changes, want 0; first: %s", len(ld.failed), ld.started.Load(), ld.failed[0])
	}
	t.Logf("etcd changes under load: %d connections attempted, %d served, %d failed", ld.started.Load(), len(ld.served), len(ld.failed))
}

func putOp(key string) clientv3.Op    { return clientv3.OpPut(key, "") }
func deleteOp(key string) clientv3.Op { return clientv3.OpDelete(key) }

func TestDiscoveryDNS(t *testing.T) {
	b1 := backendServer(t, "b1")
	host, port, _ := net.SplitHostPort(b1)
	// A real DNS server on loopback, answering app.test. with b1's address.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Name == "app.test." && q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("app.test. 1 IN A " + host)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	cfg := writeFile(t, "dns.yaml", fmt.Sprintf(`
listeners: [{listen: "127.0.0.1:0"}]
pools: [{name: app, discovery: {dns: app.test, port: %s, dns_server: %q}}]
`, port, pc.LocalAddr()))
	d := startDaemon(t, "-config", cfg)
	if who := greeting(t, d.listenAddr(t, 1)); who != "b1" {
		t.Errorf("answered by %q, want b1 found in DNS", who)
	}
	d.stop(t)
}

// BenchmarkFleet measures short connections (connect, read the greeting,
// close) through one tcplb and through two tcplb processes sharing the
// backends, with 16 clients spread evenly over the instances, as DNS round
// robin or ECMP would spread them. It reports connections per second and
// the instances' CPU per connection (from /proc).
func BenchmarkFleet(b *testing.B) {
	backends := []string{backendServer(b, "b1"), backendServer(b, "b2"), backendServer(b, "b3")}
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			var addrs []string
			var pids []int
			for range n {
				d := startDaemon(b, "-listen", "127.0.0.1:0", "-backends", strings.Join(backends, ","), "-strategy", "hash")
				addrs = append(addrs, d.listenAddr(b, 1))
				pids = append(pids, d.cmd.Process.Pid)
				b.Cleanup(func() { d.cmd.Process.Signal(os.Interrupt) })
			}
			cpu0 := cpuSeconds(pids)
			start := time.Now()
			var next atomic.Int64
			b.ResetTimer()
			b.SetParallelism(8) // 16 clients on 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				addr := addrs[int(next.Add(1))%n]
				buf := make([]byte, 64)
				for pb.Next() {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						b.Error(err)
						return
					}
					c.Read(buf)
					c.Close()
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "conn/s")
			b.ReportMetric((cpuSeconds(pids)-cpu0)/float64(b.N)*1e6, "proxy-cpu-µs/conn")
		})
	}
}

// cpuSeconds is the user+system CPU time of the processes, from
// /proc/PID/stat.
func cpuSeconds(pids []int) float64 {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		var utime, stime float64
		fmt.Sscan(fields[11], &utime)
		fmt.Sscan(fields[12], &stime)
		total += (utime + stime) / 100 // clock ticks; 100 per second on Linux
	}
	return total
}
