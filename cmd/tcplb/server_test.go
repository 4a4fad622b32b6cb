package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tcplb/tcplb"
	"github.com/tcplb/tcplb/internal/config"
)

// newTestServer returns a server with no inherited sockets, logging
// nowhere, shut down when the test ends.
func newTestServer(t *testing.T) *server {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	socks, err := inheritSockets()
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(discard, discard, socks)
	t.Cleanup(func() { s.shutdown(0) })
	return s
}

func mustParse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A pool's hash_balance_factor reaches its hash strategy.
func TestApplyHashBalanceFactor(t *testing.T) {
	s := newTestServer(t)
	err := s.apply(mustParse(t, `
listeners:
  - {name: bounded, listen: "127.0.0.1:0", pool: bounded}
  - {name: plain, listen: "127.0.0.1:0", pool: plain}
pools:
  - {name: bounded, strategy: hash, hash_balance_factor: 125, backends: [127.0.0.1:1]}
  - {name: plain, strategy: hash, backends: [127.0.0.1:1]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"bounded": 125, "plain": 0} {
		p := s.pools[name]
		m, ok := p.Strategy().(*tcplb.Maglev)
		if !ok || m.BalanceFactor() != want {
			t.Errorf("pool %s: strategy %#v, want hash with balance factor %d", name, p.Strategy(), want)
		}
	}
}

// backendServer greets each connection with its name and the time it
// accepted it (UnixNano), then echoes.
func backendServer(t testing.TB, name string) string {
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
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(testDeadline))
				fmt.Fprintf(c, "%s %d\n", name, time.Now().UnixNano())
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// greeting connects to addr and returns the backend's name.
func greeting(t *testing.T, addr string) string {
	t.Helper()
	c := dialT(t, addr)
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("connection through %s: %v", addr, err)
	}
	name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	return name
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestApplyReloadInPlace(t *testing.T) {
	b1, b2, b3 := backendServer(t, "b1"), backendServer(t, "b2"), backendServer(t, "b3")
	main, second := freePort(t), freePort(t)
	s := newTestServer(t)
	if err := s.apply(mustParse(t, fmt.Sprintf(`
listeners: [{name: main, listen: %q}]
pools: [{name: app, backends: [%q, %q]}]
`, main, b1, b2))); err != nil {
		t.Fatal(err)
	}
	ln := s.listeners[main].ln
	lb := s.listeners[main].lb
	kept := s.pools["app"].Backend(b2)

	// A long-lived connection, on b1 (round robin starts there).
	long := dialT(t, main)
	r := bufio.NewReader(long)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "b1 ") {
		t.Fatalf("first connection greeted by %q, want b1", line)
	}
	greeting(t, main) // b2

	err := s.apply(mustParse(t, fmt.Sprintf(`
listeners:
  - {name: renamed, listen: %q, pool: app}
  - {name: second, listen: %q, pool: other}
pools:
  - {name: app, strategy: least-conn, backends: [%q, {addr: %q, weight: 3}]}
  - {name: other, backends: [%q]}
timeouts: {idle: 1m}
`, main, second, b2, b3, b1)))
	if err != nil {
		t.Fatal(err)
	}
	if s.listeners[main].ln != ln || s.listeners[main].lb != lb {
		t.Error("the listener whose address stayed got a new socket or balancer")
	}
	p := s.pools["app"]
	if p.Backend(b2) != kept || kept.Stats().Total != 1 {
		t.Errorf("backend b2 kept = %v, total %d; want the same *Backend with its 1 connection", p.Backend(b2) == kept, kept.Stats().Total)
	}
	if w := p.Backend(b3).Weight(); w != 3 {
		t.Errorf("b3 weight = %d, want 3", w)
	}
	if _, ok := p.Strategy().(*tcplb.LeastConn); !ok {
		t.Errorf("strategy %T after reload, want least-conn", p.Strategy())
	}
	for range 6 {
		if who := greeting(t, main); who == "b1" {
			t.Fatal("a new connection reached b1 after the reload removed it")
		}
	}
	if who := greeting(t, second); who != "b1" {
		t.Errorf("new listener second answered by %q, want b1 (pool other)", who)
	}
	// The connection from before the reload still works.
	io.WriteString(long, "still\n")
	if line, err := r.ReadString('\n'); err != nil || line != "still\n" {
		t.Fatalf("long-lived connection after reload: %q, %v", line, err)
	}

	// Removing a listener closes its socket.
	if err := s.apply(mustParse(t, fmt.Sprintf(`
listeners: [{name: main, listen: %q}]
pools: [{name: app, backends: [%q]}]
`, main, b2))); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", second, testDeadline); err == nil {
		c.Close()
		t.Error("the removed listener still accepts connections")
	}
}

func TestApplyPortInUseKeepsRunningConfig(t *testing.T) {
	b1 := backendServer(t, "b1")
	main := freePort(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := newTestServer(t)
	if err := s.apply(mustParse(t, fmt.Sprintf(`
listeners: [{name: main, listen: %q}]
pools: [{name: app, backends: [%q]}]
`, main, b1))); err != nil {
		t.Fatal(err)
	}
	before := s.cfg
	err = s.apply(mustParse(t, fmt.Sprintf(`
listeners:
  - {name: main, listen: %q, pool: other}
  - {name: clash, listen: %q, pool: other}
pools: [{name: other, backends: [%q]}]
`, main, taken.Addr(), b1)))
	if err == nil || !strings.Contains(err.Error(), "listener clash") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("apply with a taken port = %v, want an error naming the listener and the address in use", err)
	}
	if s.cfg != before || s.pools["other"] != nil || len(s.listeners) != 1 {
		t.Error("a failed apply changed the running configuration")
	}
	if who := greeting(t, main); who != "b1" {
		t.Errorf("after the failed reload: answered by %q, want b1", who)
	}
}

func TestApplyKeepsHealthState(t *testing.T) {
	_, port, _ := net.SplitHostPort(freePort(t)) // nothing listens there: checks fail
	b1 := backendServer(t, "b1")
	cfg := fmt.Sprintf(`
listeners: [{listen: "127.0.0.1:0"}]
pools: [{name: app, health: {interval: 10ms, port: %s}, backends: [%q]}]
`, port, b1)
	s := newTestServer(t)
	if err := s.apply(mustParse(t, cfg)); err != nil {
		t.Fatal(err)
	}
	b := s.pools["app"].Backend(b1)
	deadline := time.Now().Add(testDeadline)
	for b.State().State != tcplb.StateDown {
		if time.Now().After(deadline) {
			t.Fatal("backend never went down")
		}
		time.Sleep(time.Millisecond)
	}
	before := b.State()
	if err := s.apply(mustParse(t, cfg)); err != nil {
		t.Fatal(err)
	}
	if got := s.pools["app"].Backend(b1); got != b || got.State().Since != before.Since || got.State().State != tcplb.StateDown {
		t.Errorf("after reload: %+v, want the same backend still down since %v", got.State(), before.Since)
	}
}

// TestApplyAdminMoveFreesPort: a reload that moves the admin listener
// frees its old port (the daemon's duplicate of the socket is closed too).
func TestApplyAdminMoveFreesPort(t *testing.T) {
	b1 := backendServer(t, "b1")
	first, second := freePort(t), freePort(t)
	s := newTestServer(t)
	cfg := `
listeners: [{listen: "127.0.0.1:0"}]
pools: [{name: app, backends: [%q]}]
admin: {listen: %q}
`
	if err := s.apply(mustParse(t, fmt.Sprintf(cfg, b1, first))); err != nil {
		t.Fatal(err)
	}
	if err := s.apply(mustParse(t, fmt.Sprintf(cfg, b1, second))); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", first)
	if err != nil {
		t.Fatalf("the admin listener's old address %s is still bound after it moved: %v", first, err)
	}
	ln.Close()
}
