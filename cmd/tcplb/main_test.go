package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const testDeadline = 10 * time.Second

var binary string // the tcplb binary under test, built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tcplb-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tcplb")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building tcplb: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running tcplb process whose JSON log lines are collected.
type daemon struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	raw   []string
	more  chan struct{} // signalled on each new line
	exit  chan error
}

func startDaemon(t testing.TB, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"-log-format", "json"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, more: make(chan struct{}, 1), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			json.Unmarshal(sc.Bytes(), &rec)
			d.mu.Lock()
			d.lines = append(d.lines, rec)
			d.raw = append(d.raw, sc.Text())
			d.mu.Unlock()
			select {
			case d.more <- struct{}{}:
			default:
			}
		}
		d.exit <- cmd.Wait()
		close(d.more)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-d.more
	})
	return d
}

// waitLog waits for the n-th (from 1) log record with message msg.
func (d *daemon) waitLog(t testing.TB, msg string, n int) map[string]any {
	t.Helper()
	timeout := time.After(testDeadline)
	for {
		d.mu.Lock()
		seen := 0
		for _, rec := range d.lines {
			if rec["msg"] == msg {
				if seen++; seen == n {
					d.mu.Unlock()
					return rec
				}
			}
		}
		raw := strings.Join(d.raw, "\n")
		d.mu.Unlock()
		select {
		case _, ok := <-d.more:
			if !ok {
				t.Fatalf("tcplb exited before logging %q; its log:\n%s", msg, raw)
			}
		case <-timeout:
			t.Fatalf("no log record %q within %v; log:\n%s", msg, testDeadline, raw)
		}
	}
}

// records returns the log records with message msg so far.
func (d *daemon) records(msg string) []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []map[string]any
	for _, rec := range d.lines {
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// listenAddr returns the address of the listener named name.
func (d *daemon) listenAddr(t testing.TB, n int) string {
	t.Helper()
	return d.waitLog(t, "listening", n)["addr"].(string)
}

func (d *daemon) stop(t testing.TB) {
	t.Helper()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exit:
		if err != nil {
			t.Fatalf("tcplb exited with %v after SIGINT, want 0", err)
		}
		d.exit <- err
	case <-time.After(testDeadline):
		t.Fatal("tcplb did not stop after SIGINT")
	}
}

func runTCPLB(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadInput(t *testing.T) {
	badAddr := writeFile(t, "bad.yaml", `
listeners:
  - {name: main, listen: 127.0.0.1:0, pool: app}
pools:
  - name: app
    backends:
      - addr: 127.0.0.1:3001
      - addr: x:y
`)
	good := writeFile(t, "good.yaml", `
listeners:
  - {name: main, listen: 127.0.0.1:0, pool: app}
pools:
  - {name: app, backends: [{addr: 127.0.0.1:3001}]}
`)
	badEngine := writeFile(t, "engine.yaml", `
listeners: [{listen: 127.0.0.1:0}]
pools: [{name: app, backends: [127.0.0.1:3001]}]
engine: uring
`)
	exposed := writeFile(t, "exposed.yaml", `
listeners: [{listen: 127.0.0.1:0}]
pools: [{name: app, backends: [127.0.0.1:3001]}]
admin: {listen: ":9090"}
`)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad backend port", []string{"-backends", "127.0.0.1:3001,x:y"}, `-backends: "x:y": invalid port`},
		{"backend without port", []string{"-backends", "127.0.0.1"}, `-backends: "127.0.0.1"`},
		{"empty backend", []string{"-backends", "127.0.0.1:3001,"}, `-backends: ""`},
		{"duplicate backend", []string{"-backends", "127.0.0.1:3001,127.0.0.1:3001"}, `"127.0.0.1:3001": listed twice`},
		{"bad listen", []string{"-listen", "8080"}, `-listen: "8080"`},
		{"unknown strategy", []string{"-strategy", "bogus"}, `-strategy: unknown strategy "bogus" (known: `},
		{"bad log format", []string{"-log-format", "xml"}, `-log-format: "xml": want text or json`},
		{"unknown flag", []string{"-nosuch"}, "flag provided but not defined: -nosuch"},
		{"positional argument", []string{"extra"}, `unexpected argument "extra"`},
		{"config and listen", []string{"-config", good, "-listen", "127.0.0.1:1"}, "-listen cannot be combined with -config"},
		{"missing config", []string{"-config", "/nonexistent/tcplb.yaml"}, "/nonexistent/tcplb.yaml"},
		{"bad config", []string{"-config", badAddr}, `pools[0].backends[1].addr: "x:y": invalid port`},
		{"check bad config", []string{"-check", "-config", badAddr}, `pools[0].backends[1].addr: "x:y": invalid port`},
		{"bad admin address", []string{"-admin", "127.0.0.1"}, `-admin: "127.0.0.1"`},
		{"exposed admin without token", []string{"-admin", "0.0.0.0:9090"}, `-admin: "0.0.0.0:9090": not a loopback address, and no admin.token is set`},
		{"exposed admin in config", []string{"-config", exposed}, `admin.listen: ":9090": not a loopback address`},
		{"unknown engine", []string{"-engine", "uring"}, `-engine: "uring": want epoll or goroutines`},
		{"empty engine", []string{"-engine", ""}, `-engine: "": want epoll or goroutines`},
		{"unknown engine in config", []string{"-config", badEngine}, `engine: engine "uring": want epoll or goroutines`},
		{"unknown protocol", []string{"-protocol", "sctp"}, `-protocol: "sctp": want tcp or udp`},
		{"udp responses without udp", []string{"-udp-responses", "1"}, "-udp-responses: only with -protocol udp"},
		{"negative udp responses", []string{"-protocol", "udp", "-udp-responses", "-1"}, "-udp-responses: -1: want 0"},
		{"config and protocol", []string{"-config", good, "-protocol", "udp"}, "-protocol cannot be combined with -config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runTCPLB(t, tt.args...)
			if code != exitUsage || !strings.Contains(out, tt.want) {
				t.Errorf("tcplb %q = exit %d, output:\n%s\nwant exit 2 and output containing %q", tt.args, code, out, tt.want)
			}
		})
	}
}

func TestCheckValid(t *testing.T) {
	good := writeFile(t, "good.yaml", `
listeners:
  - {name: main, listen: 127.0.0.1:0, pool: app}
pools:
  - {name: app, backends: [{addr: 127.0.0.1:3001}]}
`)
	for _, args := range [][]string{{"-check"}, {"-check", "-config", good}, {"-check", "-backends", "[::1]:3001,localhost:3002"}} {
		if code, out := runTCPLB(t, args...); code != exitOK {
			t.Errorf("tcplb %q = exit %d, output:\n%s\nwant exit 0", args, code, out)
		}
	}
}

func TestAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, out := runTCPLB(t, "-listen", ln.Addr().String())
	if code != exitRuntime || !strings.Contains(out, "address already in use") {
		t.Errorf("tcplb on a busy address = exit %d, output:\n%s\nwant exit 1 naming the problem", code, out)
	}
}

func dialT(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testDeadline))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// TestDemo runs what the README tells a new user to run: the demo
// backends greet in turn, then echo.
func TestDemo(t *testing.T) {
	for _, a := range demoAddrs {
		if ln, err := net.Listen("tcp", a); err != nil {
			t.Fatalf("demo port %s is busy (%v): stop what uses it, e.g. another tcplb -demo", a, err)
		} else {
			ln.Close()
		}
	}
	d := startDaemon(t, "-demo", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	addr := d.listenAddr(t, 1)
	adminAddr := d.waitLog(t, "admin listening", 1)["addr"].(string)
	for i := range 6 {
		c := dialT(t, addr)
		r := bufio.NewReader(c)
		greeting, err := r.ReadString('\n')
		want := fmt.Sprintf("hello from demo backend %s\n", demoAddrs[i%3])
		if err != nil || greeting != want {
			t.Fatalf("connection %d greeting = %q, %v; want %q", i, greeting, err, want)
		}
		fmt.Fprintf(c, "echo %d\n", i)
		if line, err := r.ReadString('\n'); err != nil || line != fmt.Sprintf("echo %d\n", i) {
			t.Fatalf("connection %d echo = %q, %v", i, line, err)
		}
		c.Close()
	}
	rec := d.waitLog(t, "connection", 6)
	for _, k := range []string{"client", "listener", "backend", "client_bytes", "backend_bytes", "duration", "end"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("access log record %v lacks %q", rec, k)
		}
	}

	// The admin listener: the API sees the demo pool and the six
	// connections, the metrics count them, the dashboard is served.
	var pools struct {
		Pools []struct {
			Name     string
			Backends []struct {
				Addr  string
				State string
				Total int
			}
		}
	}
	getJSON(t, "http://"+adminAddr+"/api/v1/pools", &pools)
	// The demo's UDP listener has a pool of its own, after the TCP one.
	if len(pools.Pools) != 2 || pools.Pools[0].Name != "default" || len(pools.Pools[0].Backends) != 3 || pools.Pools[1].Name != "default-udp" {
		t.Fatalf("/api/v1/pools = %+v, want the default pool with 3 backends and default-udp", pools)
	}
	for _, b := range pools.Pools[0].Backends {
		if b.State != "up" || b.Total != 2 {
			t.Errorf("backend %+v, want up with 2 connections", b)
		}
	}
	if body := get(t, "http://"+adminAddr+"/metrics"); !strings.Contains(body, `tcplb_connections_total{listener="main"} 6`) {
		t.Errorf("/metrics lacks tcplb_connections_total 6 for listener main:\n%s", body)
	}
	if body := get(t, "http://"+adminAddr+"/"); !strings.Contains(body, "tcplb") {
		t.Errorf("dashboard page = %.200q, want the tcplb page", body)
	}
	d.stop(t)
}

// TestGracefulStop: SIGINT stops accepting at once but lets an open
// connection finish; the process then exits 0.
func TestGracefulStop(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	d := startDaemon(t, "-listen", "127.0.0.1:0", "-backends", backend.Addr().String())
	addr := d.listenAddr(t, 1)
	c := dialT(t, addr)
	fmt.Fprint(c, "a")
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(os.Interrupt)
	d.waitLog(t, "shutting down: no new connections; waiting for open ones", 1)
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Error("new connection accepted after SIGINT")
	}
	fmt.Fprint(c, "b")
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'b' {
		t.Fatalf("echo after SIGINT = %q, %v; want the open connection to keep working", buf, err)
	}
	select {
	case err := <-d.exit:
		t.Fatalf("tcplb exited (%v) with a connection still open", err)
	default:
	}
	c.Close()
	select {
	case err := <-d.exit:
		if err != nil {
			t.Fatalf("exit = %v, want 0", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("tcplb did not exit after its last connection closed")
	}
}

// TestConfigSeveralListenersAndPools serves two listeners, each on its own
// pool, from one config file.
func TestConfigSeveralListenersAndPools(t *testing.T) {
	var addrs [2]string
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "pool %d\n", i)
				c.Close()
			}
		}()
	}
	cfg := writeFile(t, "two.yaml", fmt.Sprintf(`
listeners:
  - {name: first, listen: 127.0.0.1:0, pool: one}
  - {name: second, listen: "127.0.0.1:0", pool: two}
pools:
  - name: one
    strategy: round-robin
    backends: [{addr: %q, weight: 2}]
  - name: two
    backends: [{addr: %q}]
timeouts:
  connect: 2s
  idle: 0s
  drain: 1s
`, addrs[0], addrs[1]))
	d := startDaemon(t, "-config", cfg)
	for i := range 2 {
		rec := d.waitLog(t, "listening", i+1)
		c := dialT(t, rec["addr"].(string))
		got, err := io.ReadAll(c)
		idx := map[string]int{"first": 0, "second": 1}[rec["listener"].(string)]
		if want := fmt.Sprintf("pool %d\n", idx); err != nil || string(got) != want {
			t.Errorf("listener %v: got %q, %v; want %q", rec["listener"], got, err, want)
		}
	}
	d.stop(t)
}

func TestConfigHealthChecks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "live\n")
			c.Close()
		}
	}()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	cfg := writeFile(t, "health.yaml", fmt.Sprintf(`
listeners: [{listen: 127.0.0.1:0}]
pools:
  - name: app
    all_down: refuse
    slow_start: 1s
    health: {interval: 20ms, timeout: 1s, rise: 1, fall: 2}
    passive: {max_fails: 5}
    backends:
      - %q
      - {addr: %q, max_conns: 10}
timeouts: {queue: 1s}
`, deadAddr, ln.Addr().String()))
	d := startDaemon(t, "-config", cfg)
	addr := d.listenAddr(t, 1)
	down := d.waitLog(t, "backend down", 1)
	if down["backend"] != deadAddr || down["pool"] != "app" || !strings.Contains(down["err"].(string), "refused") {
		t.Errorf("backend down record = %v, want %s refused", down, deadAddr)
	}
	for i := range 4 {
		c := dialT(t, addr)
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "live\n" {
			t.Fatalf("connection %d: %q, %v; want live", i, got, err)
		}
	}
	d.stop(t)
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: testDeadline}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s, %v", url, resp.Status, err)
	}
	return string(body)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, url)), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestConfigEdge(t *testing.T) {
	// The backend reads the PROXY header tcplb sends and answers with the
	// client address it carries.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, line)
			}()
		}
	}()
	cfg := writeFile(t, "edge.yaml", fmt.Sprintf(`
listeners:
  - listen: 127.0.0.1:0
    proxy_protocol: accept
    trusted: [127.0.0.1]
    deny: [127.0.0.2]
    max_conns_per_source: 10
pools:
  - name: app
    proxy_protocol: v1
    backends: [%q]
`, ln.Addr()))
	d := startDaemon(t, "-config", cfg)
	addr := d.listenAddr(t, 1)

	c := dialT(t, addr)
	io.WriteString(c, "PROXY TCP4 203.0.113.9 198.51.100.1 5555 443\r\n")
	got, err := bufio.NewReader(c).ReadString('\n')
	if want := "PROXY TCP4 203.0.113.9 198.51.100.1 5555 443\r\n"; err != nil || got != want {
		t.Errorf("backend saw %q, %v; want the upstream's client passed on: %q", got, err, want)
	}
	c.Close()

	// Without the header the trusted upstream is refused.
	c = dialT(t, addr)
	io.WriteString(c, "hello\n")
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Errorf("a trusted peer without a header got %q, want the connection closed", b)
	}
	d.waitLog(t, "connection", 2)
	ends := map[any]int{}
	for _, rec := range d.records("connection") {
		ends[rec["end"]]++
	}
	if ends["bad proxy header"] != 1 {
		t.Errorf("access log ends = %v, want one bad proxy header", ends)
	}
	d.stop(t)
}

// TestEngines serves a connection through the daemon on each engine, as
// chosen by -engine and by the config's engine key.
func TestEngines(t *testing.T) {
	backend := startEcho(t)
	for _, engine := range []string{"epoll", "goroutines"} {
		for _, how := range []string{"flag", "config"} {
			t.Run(engine+"/"+how, func(t *testing.T) {
				if engine == "epoll" && runtime.GOOS != "linux" {
					t.Skip("the event loops are Linux-only")
				}
				args := []string{"-engine", engine, "-listen", "127.0.0.1:0", "-backends", backend}
				if how == "config" {
					args = []string{"-config", writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners: [{listen: 127.0.0.1:0}]
pools: [{name: app, backends: [%s]}]
engine: %s
`, backend, engine))}
				}
				d := startDaemon(t, args...)
				c := dialT(t, d.listenAddr(t, 1))
				fmt.Fprint(c, "ping")
				buf := make([]byte, 4)
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
					t.Fatalf("echo through -engine %s = %q, %v", engine, buf, err)
				}
				c.Close()
				d.stop(t)
			})
		}
	}
}

// startEcho runs an echo backend until the test ends and returns its
// address.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}
