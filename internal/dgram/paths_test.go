package dgram

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a Handler that forwards everything to backend behind
// prefix, and records drops and how sessions ended.
type recorder struct {
	backend netip.AddrPort
	prefix  []byte

	mu      sync.Mutex
	opened  int
	replies int
	ends    map[Reason]int
	drops   map[Drop]int
	changed chan struct{} // a value after each change
}

func newRecorder(backend netip.AddrPort) *recorder {
	return &recorder{backend: backend, ends: map[Reason]int{}, drops: map[Drop]int{}, changed: make(chan struct{}, 1)}
}

func (h *recorder) update(f func()) {
	h.mu.Lock()
	f()
	h.mu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// await waits up to 5s for cond, checked under h.mu after each change.
func (h *recorder) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		h.mu.Lock()
		ok := cond()
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-h.changed:
		case <-timeout:
			h.mu.Lock()
			defer h.mu.Unlock()
			t.Fatalf("%s: not within 5s (opened %d, replies %d, ends %v, drops %v)", what, h.opened, h.replies, h.ends, h.drops)
		}
	}
}

func (h *recorder) Open(netip.AddrPort, []byte) Verdict {
	h.update(func() { h.opened++ })
	return Verdict{Session: recSession{h}, Backend: h.backend, Prefix: h.prefix}
}

func (h *recorder) Dropped(_ netip.AddrPort, why Drop, _ int) { h.update(func() { h.drops[why]++ }) }

type recSession struct{ h *recorder }

func (recSession) FromClient(int) Pass { return Forward }
func (s recSession) FromBackend(int)   { s.h.update(func() { s.h.replies++ }) }
func (s recSession) Ended(why Reason, _ error) {
	s.h.update(func() { s.h.ends[why]++ })
}

func dialProxy(t *testing.T, lb *net.UDPAddr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, lb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

// TestManyClientsAtOnce: 32 clients each send 4 datagrams without
// waiting, then read; each gets exactly its own 4 echoes back, however
// the proxy batches reads and replies across sessions.
func TestManyClientsAtOnce(t *testing.T) { eachPath(t, testManyClientsAtOnce) }

func testManyClientsAtOnce(t *testing.T, loop bool) {
	const clients, each = 32, 4 // 128 in flight: within default socket buffers
	h := newRecorder(echoServer(t))
	lb := serve(t, h, Config{EventLoop: loop})
	conns := make([]*net.UDPConn, clients)
	for i := range conns {
		conns[i] = dialProxy(t, lb)
	}
	for k := range each {
		for i, c := range conns {
			if _, err := fmt.Fprintf(c, "client %d datagram %d", i, k); err != nil {
				t.Fatal(err)
			}
		}
	}
	buf := make([]byte, 100)
	for i, c := range conns {
		got := map[string]bool{}
		for range each {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("client %d after %d replies: %v", i, len(got), err)
			}
			got[string(buf[:n])] = true
		}
		for k := range each {
			if want := fmt.Sprintf("client %d datagram %d", i, k); !got[want] {
				t.Errorf("client %d: no echo of %q; got %v", i, want, got)
			}
		}
	}
	h.await(t, "every reply counted", func() bool { return h.replies == clients*each && h.opened == clients })
}

// TestResponsesEnd: with Responses 1, each of 64 clients' query gets its
// one reply and its session ends (Responses); a second query from one of
// them opens a new session.
func TestResponsesEnd(t *testing.T) { eachPath(t, testResponsesEnd) }

func testResponsesEnd(t *testing.T, loop bool) {
	const clients = 64
	h := newRecorder(echoServer(t))
	lb := serve(t, h, Config{EventLoop: loop, Responses: 1})
	conns := make([]*net.UDPConn, clients)
	for i := range conns {
		conns[i] = dialProxy(t, lb)
		fmt.Fprintf(conns[i], "query %d", i)
	}
	buf := make([]byte, 100)
	for i, c := range conns {
		n, err := c.Read(buf)
		if want := fmt.Sprintf("query %d", i); err != nil || string(buf[:n]) != want {
			t.Fatalf("client %d: reply %q, %v; want %q", i, buf[:n], err, want)
		}
	}
	h.await(t, "every session ended after its reply", func() bool { return h.ends[Responses] == clients })
	fmt.Fprint(conns[0], "again")
	if n, err := conns[0].Read(buf); err != nil || string(buf[:n]) != "again" {
		t.Fatalf("second query: %q, %v", buf[:n], err)
	}
	h.await(t, "a new session for the second query", func() bool { return h.opened == clients+1 && h.ends[Responses] == clients+1 })
}

// TestPrefix: a Verdict's prefix goes in front of every datagram to the
// backend, short (in the loop's headroom) or long (beyond it).
func TestPrefix(t *testing.T) {
	eachPath(t, func(t *testing.T, loop bool) {
		for _, size := range []int{12, 52, 200} {
			h := newRecorder(echoServer(t))
			h.prefix = bytes.Repeat([]byte{'P'}, size)
			c := dialProxy(t, serve(t, h, Config{EventLoop: loop}))
			buf := make([]byte, 300)
			for _, msg := range []string{"one", "two"} {
				c.Write([]byte(msg))
				n, err := c.Read(buf)
				if want := string(h.prefix) + msg; err != nil || string(buf[:n]) != want {
					t.Fatalf("prefix of %d: the backend got %q, %v; want %q", size, buf[:n], err, want)
				}
			}
		}
	})
}

// TestTooLarge: a datagram over MaxDatagram is dropped and counted, not
// truncated; one at the limit passes.
func TestTooLarge(t *testing.T) {
	eachPath(t, func(t *testing.T, loop bool) {
		h := newRecorder(echoServer(t))
		c := dialProxy(t, serve(t, h, Config{EventLoop: loop, MaxDatagram: 100}))
		c.Write(make([]byte, 101))
		c.Write(bytes.Repeat([]byte{'x'}, 100))
		buf := make([]byte, 200)
		if n, err := c.Read(buf); err != nil || n != 100 {
			t.Fatalf("reply %d bytes, %v; want the 100-byte datagram's echo", n, err)
		}
		h.await(t, "the 101-byte datagram dropped", func() bool { return h.drops[TooLarge] == 1 })
	})
}

// TestUnreachable: a backend that refuses (ICMP port unreachable) ends
// the session with Unreachable.
func TestUnreachable(t *testing.T) {
	eachPath(t, func(t *testing.T, loop bool) {
		dead, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		addr := dead.LocalAddr().(*net.UDPAddr).AddrPort()
		dead.Close()
		h := newRecorder(addr)
		c := dialProxy(t, serve(t, h, Config{EventLoop: loop}))
		c.Write([]byte("anyone?"))
		h.await(t, "the session ended Unreachable", func() bool { return h.ends[Unreachable] == 1 })
	})
}

// TestStopAndClose: after Stop, Serve has returned ErrStopped and the
// socket is no longer read, but a reply still reaches an open session's
// client; Empty closes when the last session ends; Close ends the rest.
func TestStopAndClose(t *testing.T) {
	eachPath(t, func(t *testing.T, loop bool) {
		// A backend that answers each datagram when told to.
		bc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer bc.Close()
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		lb := pc.LocalAddr().(*net.UDPAddr)
		h := newRecorder(bc.LocalAddr().(*net.UDPAddr).AddrPort())
		p, err := New(pc, Config{Handler: h, Idle: time.Minute, EventLoop: loop})
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- p.Serve() }()
		c := dialProxy(t, lb)
		c.Write([]byte("held"))
		buf := make([]byte, 100)
		bc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := bc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		p.Stop()
		select {
		case err := <-served:
			if err != ErrStopped {
				t.Errorf("Serve = %v, want ErrStopped", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return within 5s of Stop")
		}
		if p.Len() != 1 {
			t.Errorf("Len = %d after Stop, want the open session", p.Len())
		}
		bc.WriteToUDPAddrPort(buf[:n], from)
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "held" {
			t.Fatalf("reply after Stop: %q, %v", buf[:n], err)
		}
		select {
		case <-p.Empty():
			t.Fatal("Empty closed with a session open")
		default:
		}
		if n := p.CloseIf(func(Session) bool { return true }); n != 1 {
			t.Errorf("CloseIf ended %d sessions, want 1", n)
		}
		select {
		case <-p.Empty():
		case <-time.After(5 * time.Second):
			t.Fatal("Empty not closed within 5s of the last session's end")
		}
		h.await(t, "the session ended Closed", func() bool { return h.ends[Closed] == 1 })
		if err := p.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
}

// resolver is a Handler whose first session's backend is found by a
// Resolve that waits for release; later sessions go to backend at once.
type resolver struct {
	*recorder
	release chan struct{}
	first   atomic.Bool
}

func (h *resolver) Open(client netip.AddrPort, b []byte) Verdict {
	v := h.recorder.Open(client, b)
	if h.first.CompareAndSwap(false, true) {
		backend := v.Backend
		v.Backend = netip.AddrPort{}
		v.Resolve = func() (netip.AddrPort, error) {
			<-h.release
			return backend, nil
		}
	}
	return v
}

// TestResolve: a session whose backend is resolved (Verdict.Resolve)
// gets the datagrams it sent meanwhile delivered once the lookup is done;
// on the event loop the lookup blocks no other session.
func TestResolve(t *testing.T) {
	eachPath(t, func(t *testing.T, loop bool) {
		h := &resolver{recorder: newRecorder(echoServer(t)), release: make(chan struct{})}
		lb := serve(t, h, Config{EventLoop: loop})
		first := dialProxy(t, lb)
		first.Write([]byte("one"))
		h.await(t, "the first session to open", func() bool { return h.opened == 1 })
		first.Write([]byte("two"))
		if loop {
			other := dialProxy(t, lb)
			other.Write([]byte("meanwhile"))
			buf := make([]byte, 100)
			if n, err := other.Read(buf); err != nil || string(buf[:n]) != "meanwhile" {
				t.Fatalf("another client during the lookup: %q, %v", buf[:n], err)
			}
		}
		close(h.release)
		buf := make([]byte, 100)
		for _, want := range []string{"one", "two"} {
			if n, err := first.Read(buf); err != nil || string(buf[:n]) != want {
				t.Fatalf("after the lookup: %q, %v; want %q", buf[:n], err, want)
			}
		}
	})
}
