package tcplb

import (
	"io"
	"net"
	"testing"
	"time"
)

// parkedCount returns how many directions of tl's connections wait in the
// parking lot.
func parkedCount(tl *testLB) int {
	lot.mu.Lock()
	defer lot.mu.Unlock()
	n := 0
	for _, d := range lot.parked {
		if d.pc.lb == tl.Balancer {
			n++
		}
	}
	return n
}

// waitParked waits until n directions of tl's connections are parked.
func waitParked(t *testing.T, tl *testLB, n int) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for parkedCount(tl) != n {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d directions parked, want %d", testDeadline, parkedCount(tl), n)
		}
		time.Sleep(parkAfter / 5) // polling: parking has no event to wait on
	}
}

// TestParkAndResume: quiet connections give up their goroutines, then carry
// on as soon as either side sends.
func TestParkAndResume(t *testing.T) {
	tl := startLB(t, &Balancer{Engine: EngineGoroutines}, startBackend(t, echo))
	const n = 10
	conns := make([]*net.TCPConn, n)
	buf := make([]byte, 4)
	for i := range conns {
		conns[i] = dial(t, tl.addr)
		io.WriteString(conns[i], "ping")
		if _, err := io.ReadFull(conns[i], buf); err != nil {
			t.Fatal(err)
		}
	}
	waitParked(t, tl, 2*n)
	for round := range 3 {
		for i, c := range conns {
			io.WriteString(c, "pong")
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
				t.Fatalf("round %d, connection %d after parking: %q, %v", round, i, buf, err)
			}
		}
		waitParked(t, tl, 2*n)
	}
	// Half-close while parked: the FIN wakes the direction and passes on.
	for _, c := range conns {
		c.CloseWrite()
		if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
			t.Fatalf("after CloseWrite: %q, %v; want EOF", rest, err)
		}
	}
	recs := tl.waitAccessLog(t, n)
	for _, r := range recs {
		if r["end"] != string(EndClientClosed) || r["client_bytes"] != float64(16) || r["backend_bytes"] != float64(16) {
			t.Errorf("access log %v, want client closed and 16 bytes each way", r)
		}
	}
	waitParked(t, tl, 0)
}

// TestParkedIdleTimeout: the idle timeout closes a parked connection.
func TestParkedIdleTimeout(t *testing.T) {
	idle := 4 * parkAfter
	tl := startLB(t, &Balancer{Engine: EngineGoroutines, IdleTimeout: idle}, startBackend(t, echo))
	start := time.Now() // before the dial: the proxy's clock starts at its accept
	c := dial(t, tl.addr)
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err != io.EOF {
		t.Fatalf("Read = %d, %v; want EOF from the idle timeout", n, err)
	}
	if took := time.Since(start); took < idle || took > idle+time.Second {
		t.Errorf("closed after %v, want about %v", took, idle)
	}
	if r := tl.waitAccessLog(t, 1)[0]; r["end"] != string(EndIdle) {
		t.Errorf("end = %v, want %q", r["end"], EndIdle)
	}
	waitParked(t, tl, 0)
}

// TestParkedDirectionAbortedByOther: the backend resets while the
// client-to-backend direction is parked; the parked direction must not hold
// the connection open.
func TestParkedDirectionAbortedByOther(t *testing.T) {
	reset := make(chan struct{})
	tl := startLB(t, &Balancer{Engine: EngineGoroutines}, startBackend(t, func(c *net.TCPConn) {
		io.ReadFull(c, make([]byte, 2))
		io.WriteString(c, "ok")
		<-reset
		c.SetLinger(0)
	}))
	c := dial(t, tl.addr)
	io.WriteString(c, "hi")
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	waitParked(t, tl, 2)
	close(reset)
	if _, err := io.ReadAll(c); err == nil {
		t.Error("client saw a clean end, want a reset")
	}
	if r := tl.waitAccessLog(t, 1)[0]; r["end"] != string(EndReset) {
		t.Errorf("end = %v, want %q", r["end"], EndReset)
	}
	waitParked(t, tl, 0)
	if got := tl.ActiveConns(); got != 0 {
		t.Errorf("ActiveConns = %d, want 0", got)
	}
}
