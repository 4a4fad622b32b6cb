package dgram

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// reopener is a Handler whose sessions forward their first datagram and
// ask for a new session on the second.
type reopener struct {
	backend netip.AddrPort
	ended   chan Reason
}

func (h *reopener) Open(netip.AddrPort, []byte) Verdict {
	return Verdict{Session: &reopenSession{ended: h.ended}, Backend: h.backend}
}

func (h *reopener) Dropped(netip.AddrPort, Drop, int) {}

type reopenSession struct {
	n     atomic.Int32
	ended chan Reason
}

func (s *reopenSession) FromClient(int) Pass {
	if s.n.Add(1) > 1 {
		return Reopen
	}
	return Forward
}

func (s *reopenSession) FromBackend(int) {}

func (s *reopenSession) Ended(why Reason, _ error) { s.ended <- why }

// echoServer starts a UDP echo server on loopback and returns its address.
func echoServer(t *testing.T) netip.AddrPort {
	t.Helper()
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return echo.LocalAddr().(*net.UDPAddr).AddrPort()
}

// paths are the proxies this platform has: Config.EventLoop false and,
// on Linux, true. Every test runs on each.
var paths = func() []bool {
	if runtime.GOOS == "linux" {
		return []bool{false, true}
	}
	return []bool{false}
}()

func pathName(loop bool) string {
	if loop {
		return "loop"
	}
	return "goroutines"
}

// eachPath runs f as a subtest on each path.
func eachPath(t *testing.T, f func(t *testing.T, loop bool)) {
	for _, loop := range paths {
		t.Run(pathName(loop), func(t *testing.T) { f(t, loop) })
	}
}

// serve runs a Proxy with Handler h (idle timeout a minute unless cfg
// says) on a new loopback socket until the test ends, and returns the
// socket's address.
func serve(t *testing.T, h Handler, cfg Config) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr)
	cfg.Handler = h
	if cfg.Idle == 0 {
		cfg.Idle = time.Minute
	}
	p, err := New(pc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve()
	t.Cleanup(func() { p.Close() })
	return addr
}

// TestReopenEndsPromptly: a session ended while its reply reader is
// between a reply and its next read (it has just sent a reply on) ends at
// once, not at the idle timeout. The reader re-arms its read deadline
// after each reply, and that must not undo the wake-up of an end that
// came meanwhile; the window is small, so the test goes through it many
// times.
func TestReopenEndsPromptly(t *testing.T) { eachPath(t, testReopenEndsPromptly) }

func testReopenEndsPromptly(t *testing.T, loop bool) {
	h := &reopener{backend: echoServer(t), ended: make(chan Reason, 4)}
	lb := serve(t, h, Config{EventLoop: loop})
	c, err := net.DialUDP("udp", nil, lb)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for i := range 300 {
		// Each datagram is the second of the session the previous one
		// opened, just after its reply came back: it ends that session and
		// opens the next.
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			select {
			case why := <-h.ended:
				if why != Closed {
					t.Fatalf("round %d: session ended %v, want Closed", i, why)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: the reopened session did not end within 5s (idle is 1m)", i)
			}
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("round %d: no reply: %v", i, err)
		}
	}
}

// TestIdleSessionMemory: an idle session holds no reply buffer (64 KiB),
// only its goroutine (none on the loop), socket and accounting. Measured
// over 2,000 idle sessions as the heap and stack memory they add.
func TestIdleSessionMemory(t *testing.T) { eachPath(t, testIdleSessionMemory) }

func testIdleSessionMemory(t *testing.T, loop bool) {
	if runtime.GOOS == "windows" {
		t.Skip("on Windows a session keeps its own reply buffer")
	}
	const sessions = 2000
	h := &counter{backend: echoServer(t)}
	lb := serve(t, h, Config{EventLoop: loop})
	clients := make([]*net.UDPConn, sessions)
	var err error
	for i := range clients {
		if clients[i], err = net.DialUDP("udp", nil, lb); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
	}
	before := inUse()
	buf := make([]byte, 64)
	for i, c := range clients {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("client %d: no reply: %v", i, err)
		}
	}
	if n := h.open.Load(); n != sessions {
		t.Fatalf("%d sessions open, want %d", n, sessions)
	}
	per := (inUse() - before) / sessions
	t.Logf("%d idle sessions: %d bytes each (heap and stacks)", sessions, per)
	if per > 16<<10 {
		t.Errorf("an idle session holds %d bytes, want under 16 KiB (a reply buffer alone is 64 KiB)", per)
	}
	// On the loop a session is a struct, a map entry and a timer slot.
	if loop && per > 1<<10 {
		t.Errorf("an idle session on the loop holds %d bytes, want under 1 KiB (no goroutine, no buffer)", per)
	}
}

// inUse returns the heap and stack memory in use after a collection.
func inUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// counter is a Handler whose sessions forward everything; it counts the
// open ones.
type counter struct {
	backend netip.AddrPort
	open    atomic.Int64
}

func (h *counter) Open(netip.AddrPort, []byte) Verdict {
	h.open.Add(1)
	return Verdict{Session: countedSession{h}, Backend: h.backend}
}

func (h *counter) Dropped(netip.AddrPort, Drop, int) {}

type countedSession struct{ h *counter }

func (countedSession) FromClient(int) Pass   { return Forward }
func (countedSession) FromBackend(int)       {}
func (s countedSession) Ended(Reason, error) { s.h.open.Add(-1) }
