package tcplb

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test after testDeadline.
// It is for state that changes on a timer inside the pool (checks,
// cooldowns), which offers no event to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", testDeadline, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// greeter writes name and a newline, then echoes.
func greeter(name string) func(c *net.TCPConn) {
	return func(c *net.TCPConn) {
		io.WriteString(c, name+"\n")
		echo(c)
	}
}

// pingOrGreet answers a health check's "PING\r\n" with "PONG" while healthy
// (counting probes), "ERR" otherwise; any other first line gets name.
func pingOrGreet(name string, healthy *atomic.Bool, probes *atomic.Int64) func(c *net.TCPConn) {
	return func(c *net.TCPConn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		switch {
		case err != nil:
		case line != "PING\r\n":
			io.WriteString(c, name+"\n")
		case healthy.Load():
			probes.Add(1)
			io.WriteString(c, "PONG ok\r\n")
		default:
			probes.Add(1)
			io.WriteString(c, "ERR busy\r\n")
		}
	}
}

// whoAnswers connects through the balancer, sends a line, and returns the
// first line the backend sends, or "" if the connection is closed without
// one.
func whoAnswers(t *testing.T, addr string) string {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	io.WriteString(c, "who\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(line, "\n")
}

// newTestPool builds a pool of backends at addrs, with opts, logging to the
// returned buffer.
func newTestPool(t *testing.T, opts PoolOptions, addrs ...string) (*Pool, *logBuffer) {
	t.Helper()
	var bs []*Backend
	for _, a := range addrs {
		b, err := NewBackend(a, 1)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	p := NewPool("test", nil, bs...)
	logs := &logBuffer{}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	if err := p.SetOptions(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, logs
}

func stateOf(p *Pool, addr string) State { return p.Backend(addr).State().State }

func TestActiveCheckSendExpectRiseFall(t *testing.T) {
	var healthy, alwaysHealthy atomic.Bool
	healthy.Store(true)
	alwaysHealthy.Store(true)
	var probes atomic.Int64
	checked := startBackend(t, pingOrGreet("checked", &healthy, &probes))
	other := startBackend(t, pingOrGreet("other", &alwaysHealthy, new(atomic.Int64)))
	hc := &HealthCheck{Interval: 10 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 3, Send: "PING\r\n", Expect: "PONG"}
	p, logs := newTestPool(t, PoolOptions{Health: hc}, checked, other)
	tl := startLB(t, &Balancer{Pool: p})

	waitFor(t, "a first passing check", func() bool { return probes.Load() >= 1 && stateOf(p, checked) == StateUp })
	healthy.Store(false)
	waitFor(t, "the backend to go down", func() bool { return stateOf(p, checked) == StateDown })
	down := logs.records("backend down")
	if len(down) != 1 || down[0]["failures"] != float64(3) || down[0]["backend"] != checked {
		t.Fatalf("backend down log = %v, want one record with failures 3 (fall)", down)
	}
	if st := p.Backend(checked).State(); !strings.Contains(st.Reason, `expect "PONG"`) || st.Since.IsZero() {
		t.Errorf("State() = %+v, want the failed expect as reason and a since time", st)
	}
	if got := p.Available(); len(got) != 1 || got[0].Addr() != other {
		t.Fatalf("Available() = %v while %s is down, want just %s", got, checked, other)
	}
	for range 6 {
		if who := whoAnswers(t, tl.addr); who != "other" {
			t.Fatalf("a connection reached %q while the checked backend was down, want other", who)
		}
	}

	healthy.Store(true)
	waitFor(t, "the backend to come back up", func() bool { return stateOf(p, checked) == StateUp })
	up := logs.records("backend up")
	if len(up) != 1 || up[0]["successes"] != float64(2) {
		t.Fatalf("backend up log = %v, want one record with successes 2 (rise)", up)
	}
	if got := len(p.Available()); got != 2 {
		t.Errorf("Available() has %d backends after recovery, want 2", got)
	}
}

func TestActiveCheckClosedListenerGoesDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	p, logs := newTestPool(t, PoolOptions{Health: &HealthCheck{Interval: 10 * time.Millisecond, Timeout: time.Second}}, addr, startBackend(t, echo))
	waitFor(t, "a passing check", func() bool { return p.Backend(addr).checkedState() })
	if got := logs.records("backend down"); got != nil {
		t.Fatalf("down before the listener closed: %v", got)
	}
	ln.Close()
	waitFor(t, "the backend to go down", func() bool { return stateOf(p, addr) == StateDown })
	if r := p.Backend(addr).State().Reason; !strings.Contains(r, "refused") {
		t.Errorf("reason = %q, want connection refused", r)
	}
}

func TestNewBackendDownAtFirstFailedCheck(t *testing.T) {
	dead := deadAddr(t)
	p, logs := newTestPool(t, PoolOptions{Health: &HealthCheck{Interval: 10 * time.Millisecond, Fall: 3}}, dead, startBackend(t, echo))
	waitFor(t, "the dead backend to go down", func() bool { return stateOf(p, dead) == StateDown })
	if r := logs.records("backend down"); len(r) != 1 || r[0]["failures"] != float64(1) {
		t.Errorf("backend down log = %v, want it down after its first check (failures 1), as HAProxy at start-up", r)
	}
}

func TestAllDown(t *testing.T) {
	for _, policy := range []AllDownPolicy{FailOpen, Refuse} {
		t.Run(policy.String(), func(t *testing.T) {
			// Traffic reaches live backends, but their checks go to a
			// closed port: every backend is down.
			a, b := startBackend(t, greeter("a")), startBackend(t, greeter("b"))
			_, deadPort, _ := net.SplitHostPort(deadAddr(t))
			var port int
			fmt.Sscan(deadPort, &port)
			hc := &HealthCheck{Interval: 10 * time.Millisecond, Port: port}
			p, logs := newTestPool(t, PoolOptions{Health: hc, AllDown: policy}, a, b)
			tl := startLB(t, &Balancer{Pool: p})
			waitFor(t, "both backends down", func() bool {
				// The snapshot is published just after the states change.
				return stateOf(p, a) == StateDown && stateOf(p, b) == StateDown && (policy == FailOpen || len(p.Available()) == 0)
			})

			for i := range 4 {
				who := whoAnswers(t, tl.addr)
				switch {
				case policy == FailOpen && who != "a" && who != "b":
					t.Fatalf("connection %d: answered by %q, want a backend (fail open)", i, who)
				case policy == Refuse && who != "":
					t.Fatalf("connection %d: answered by %q, want closed (refuse)", i, who)
				}
			}
			if policy == Refuse {
				recs := tl.waitAccessLog(t, 4)
				if recs[0]["end"] != string(EndNoBackend) {
					t.Errorf("end = %v, want %q", recs[0]["end"], EndNoBackend)
				}
			}
			if got := logs.records("every backend is down"); len(got) != 1 || got[0]["policy"] != policy.String() {
				t.Errorf("all-down log = %v, want exactly one record (once per transition) with policy %s", got, policy)
			}
		})
	}
}

func TestPassiveEjectionWithDoublingCooldown(t *testing.T) {
	dead := deadAddr(t)
	live := startBackend(t, greeter("live"))
	passive := PassiveCheck{MaxFails: 2, FailWindow: 10 * time.Second, Cooldown: 50 * time.Millisecond, MaxCooldown: 200 * time.Millisecond, MaxEjectionPercent: 50}
	p, logs := newTestPool(t, PoolOptions{Passive: passive}, dead, live)
	tl := startLB(t, &Balancer{Pool: p})

	// Each connection that picks the dead backend fails over to the live
	// one; every second failure ejects the dead one for a cooldown that
	// doubles: 50ms, 100ms, 200ms, then stays at the 200ms cap. (The run
	// of ejections restarts after MaxCooldown without one, so the cap is
	// also how slow a loaded machine may be between two ejections.)
	deadline := time.Now().Add(testDeadline)
	for len(logs.records("backend ejected")) < 4 {
		if who := whoAnswers(t, tl.addr); who != "live" {
			t.Fatalf("answered by %q, want live", who)
		}
		if stateOf(p, dead) == StateEjected {
			for _, b := range p.Available() {
				if b.Addr() == dead {
					t.Fatal("an ejected backend is in Available()")
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d ejections, want 4", testDeadline, len(logs.records("backend ejected")))
		}
	}
	var cooldowns []string
	for _, r := range logs.records("backend ejected") {
		cooldowns = append(cooldowns, time.Duration(r["cooldown"].(float64)).String())
	}
	if got, want := strings.Join(cooldowns, " "), "50ms 100ms 200ms 200ms"; got != want {
		t.Errorf("cooldowns = %s, want %s", got, want)
	}
	if r := logs.records("backend ejected")[0]["why"].(string); !strings.Contains(r, "2 failures within 10s") || !strings.Contains(r, "connect") {
		t.Errorf("ejection reason = %q, want the failure count, window and last error", r)
	}
	if got := len(logs.records("backend back from ejection: cooldown over")); got < 3 {
		t.Errorf("%d returns after cooldown, want at least 3", got)
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	// 3 of 4 backends fail; at 50% at most 2 of 4 may be ejected.
	dead := []string{deadAddr(t), deadAddr(t), deadAddr(t)}
	live := startBackend(t, greeter("live"))
	passive := PassiveCheck{MaxFails: 1, FailWindow: time.Minute, Cooldown: time.Minute, MaxCooldown: time.Minute, MaxEjectionPercent: 50}
	p, logs := newTestPool(t, PoolOptions{Passive: passive}, dead[0], dead[1], dead[2], live)
	tl := startLB(t, &Balancer{Pool: p})
	for range 8 {
		if who := whoAnswers(t, tl.addr); who != "live" {
			t.Fatalf("answered by %q, want live", who)
		}
	}
	ejected := 0
	for _, a := range dead {
		if stateOf(p, a) == StateEjected {
			ejected++
		}
	}
	if ejected != 2 {
		t.Errorf("%d backends ejected, want 2 (50%% of 4)", ejected)
	}
	if got := logs.records("backend failing but not ejected: max ejection percent reached"); len(got) != 1 {
		t.Errorf("cap log = %v, want one record", got)
	}
}

func TestResetBeforeFirstByteCountsAsFailure(t *testing.T) {
	resetter := startBackend(t, func(c *net.TCPConn) {
		c.Read(make([]byte, 1)) // take the client's first byte, then reset
		c.SetLinger(0)
	})
	speaker := startBackend(t, func(c *net.TCPConn) {
		io.WriteString(c, "hi\n")
		c.Read(make([]byte, 1))
		c.SetLinger(0)
	})
	passive := PassiveCheck{MaxFails: 2, FailWindow: time.Minute, Cooldown: time.Minute, MaxCooldown: time.Minute, MaxEjectionPercent: 100}
	p, _ := newTestPool(t, PoolOptions{Passive: passive}, resetter, speaker)
	tl := startLB(t, &Balancer{Pool: p})
	for range 6 {
		c := dial(t, tl.addr)
		c.Write([]byte("x"))
		io.ReadAll(c) // until the backend's reset reaches us
		c.Close()
	}
	tl.waitAccessLog(t, 6)
	if got := stateOf(p, resetter); got != StateEjected {
		t.Errorf("backend that resets before its first byte: %v, want ejected", got)
	}
	if got := stateOf(p, speaker); got != StateUp {
		t.Errorf("backend that resets after answering: %v, want up (not a passive failure)", got)
	}
}

func TestActiveSuccessEndsEjection(t *testing.T) {
	// The backend refuses traffic on its port but passes checks on
	// another: it is ejected by passive checks, and the next passing
	// check brings it back before the (long) cooldown.
	dead := deadAddr(t)
	checkPort := startBackend(t, echo)
	_, port, _ := net.SplitHostPort(checkPort)
	var n int
	fmt.Sscan(port, &n)
	passive := PassiveCheck{MaxFails: 1, FailWindow: time.Minute, Cooldown: time.Hour, MaxCooldown: time.Hour, MaxEjectionPercent: 100}
	// Checks every 50ms, so the ejection is observed before the check ends it.
	p, logs := newTestPool(t, PoolOptions{Passive: passive, Health: &HealthCheck{Interval: 50 * time.Millisecond, Port: n}}, dead)
	waitFor(t, "a first passing check", func() bool { return p.Backend(dead).checkedState() })
	p.passiveFailure(p.Backend(dead), "test")
	if got := stateOf(p, dead); got != StateEjected {
		t.Fatalf("after a failure with max fails 1: %v, want ejected", got)
	}
	waitFor(t, "a check to end the ejection", func() bool { return stateOf(p, dead) == StateUp })
	if got := logs.records("backend back from ejection: check passed"); len(got) != 1 {
		t.Errorf("log = %v, want one return by check", got)
	}
}

// checkedState reports whether an active check has passed or failed.
func (b *Backend) checkedState() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.checked
}

func TestStatePrecedenceAndStrings(t *testing.T) {
	for s, want := range map[State]string{StateUp: "up", StateDown: "down", StateDraining: "draining", StateEjected: "ejected", State(9): "State(9)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
	p, _ := newTestPool(t, PoolOptions{DrainTimeout: time.Hour}, "127.0.0.1:1", "127.0.0.1:2")
	b := p.Backend("127.0.0.1:1")
	p.mu.Lock()
	b.mu.Lock()
	b.down, b.downReason = true, "check failed"
	b.mu.Unlock()
	p.publishLocked()
	p.mu.Unlock()
	if err := p.Drain(b.Addr()); err != nil {
		t.Fatal(err)
	}
	if st := b.State(); st.State != StateDraining || st.Reason != "drained" {
		t.Errorf("down and drained: State() = %+v, want draining, reason drained", st)
	}
	if err := p.Drain("127.0.0.1:9"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:9") {
		t.Errorf("Drain(unknown) = %v, want an error naming the address", err)
	}
}

func TestSetOptionsRejectsBadValues(t *testing.T) {
	p := NewPool("p", nil)
	defer p.Close()
	for _, o := range []PoolOptions{
		{Health: &HealthCheck{Rise: -1}},
		{Passive: PassiveCheck{MaxFails: 2, Cooldown: time.Minute, MaxCooldown: time.Second}},
		{Passive: PassiveCheck{MaxFails: 2, MaxEjectionPercent: 101}},
		{SlowStart: -time.Second},
		{AllDown: 7},
	} {
		if err := p.SetOptions(o); err == nil {
			t.Errorf("SetOptions(%+v) = nil, want an error", o)
		}
	}
	if p.Options().Health != nil || p.Options().SlowStart != 0 {
		t.Errorf("a rejected SetOptions changed the options: %+v", p.Options())
	}
}
