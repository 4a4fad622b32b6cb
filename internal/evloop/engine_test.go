//go:build linux

package evloop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const testDeadline = 10 * time.Second

// testSession records what the engine tells it; targets are tried in
// order on DialFailed.
type testSession struct {
	h        *testHandler
	rest     []Target
	mu       sync.Mutex
	failures []error
	up, down atomic.Int64
	closed   chan Result
}

func (s *testSession) Connected() {}
func (s *testSession) DialFailed(err error) (Target, bool, bool) {
	s.mu.Lock()
	s.failures = append(s.failures, err)
	s.mu.Unlock()
	if len(s.rest) == 0 {
		return Target{}, false, true
	}
	t := s.rest[0]
	s.rest = s.rest[1:]
	return t, true, false
}
func (s *testSession) Moved(up bool, n int) {
	if up {
		s.up.Add(int64(n))
	} else {
		s.down.Add(int64(n))
	}
}
func (s *testSession) Closed(r Result) { s.closed <- r }

type testHandler struct {
	targets  []Target
	sessions chan *testSession
}

func (h *testHandler) Accept(id ID, client netip.AddrPort) Verdict {
	s := &testSession{h: h, rest: h.targets[1:], closed: make(chan Result, 1)}
	h.sessions <- s
	return Verdict{Session: s, Dial: true, Target: h.targets[0]}
}

// serve starts an engine with loops loops serving a new listening socket
// with h, and returns the socket's address.
func serve(t *testing.T, loops int, h Handler) (*Engine, string) {
	t.Helper()
	e, err := New(Config{Loops: loops})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1024); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	ln, err := e.Serve(fd, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ln.Stop()
		select {
		case <-ln.Done():
		case <-time.After(testDeadline):
			t.Error("listener not closed after Stop")
		}
	})
	return e, fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
}

func echoBackend(t *testing.T) netip.AddrPort {
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
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func deadBackend(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return ap
}

// TestManyConnectionsOnTwoLoops: concurrent clients on two loops each get
// their own bytes back, every session hears its end once, and the loops'
// accept counts add up to the clients.
func TestManyConnectionsOnTwoLoops(t *testing.T) {
	const n = 200
	h := &testHandler{targets: []Target{{Addr: echoBackend(t), Timeout: time.Second}}, sessions: make(chan *testSession, n)}
	e, addr := serve(t, 2, h)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, testDeadline)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(testDeadline))
			msg := fmt.Sprintf("client %d", i)
			io.WriteString(c, msg)
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != msg {
				errs <- fmt.Errorf("client %d: got %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for range n {
		s := <-h.sessions
		select {
		case r := <-s.closed:
			if r.Reason != ClientEOF && r.Reason != BackendEOF {
				t.Errorf("session ended with %+v, want a clean end", r)
			}
		case <-time.After(testDeadline):
			t.Fatal("a session was never told it closed")
		}
	}
	var sum uint64
	per := e.Accepted()
	for _, a := range per {
		sum += a
	}
	if len(per) != 2 || sum != n {
		t.Errorf("Accepted() = %v, want 2 loops accepting %d in all", per, n)
	}
}

// TestDialFailedTriesNext: a refused dial is reported, the next target is
// dialled, and the client's first bytes, read before the dial, reach it.
func TestDialFailedTriesNext(t *testing.T) {
	h := &testHandler{targets: []Target{{Addr: deadBackend(t)}, {Addr: echoBackend(t)}}, sessions: make(chan *testSession, 1)}
	_, addr := serve(t, 1, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testDeadline))
	io.WriteString(c, "hello")
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
	s := <-h.sessions
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) != 1 || !errors.Is(s.failures[0], unix.ECONNREFUSED) {
		t.Errorf("failures = %v, want one ECONNREFUSED", s.failures)
	}
}

// TestCloseFromAnotherGoroutine: Engine.Close ends an open connection,
// and the client sees the end.
func TestCloseFromAnotherGoroutine(t *testing.T) {
	h := &testHandler{targets: []Target{{Addr: echoBackend(t)}}, sessions: make(chan *testSession, 1)}
	e, addr := serve(t, 1, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testDeadline))
	s := <-h.sessions
	// The handler does not keep IDs; find this one through its loop.
	var id ID
	done := make(chan struct{})
	e.loops[0].post(func(l *loop) {
		for _, ch := range l.chunks {
			for i := range ch {
				if ch[i].sess == Session(s) {
					id = ID{loop: l.index, slot: ch[i].slot, gen: ch[i].gen}
				}
			}
		}
		close(done)
	})
	<-done
	e.Close(id, false)
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after Close = %v, want EOF", err)
	}
	if r := <-s.closed; r.Reason != Closed {
		t.Errorf("reason = %v, want Closed", r.Reason)
	}
	e.Close(id, false) // a closed connection: nothing happens
}

// TestNodelayBeforeSecondSend: a backend socket starts with Nagle's
// algorithm on (its first send cannot be held back by it) and has
// TCP_NODELAY before its second, so no later small write waits for an
// acknowledgement.
func TestNodelayBeforeSecondSend(t *testing.T) {
	h := &testHandler{targets: []Target{{Addr: echoBackend(t)}}, sessions: make(chan *testSession, 1)}
	e, addr := serve(t, 1, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testDeadline))
	s := <-h.sessions
	nodelay := func() int {
		got := make(chan int)
		e.loops[0].post(func(l *loop) {
			v := -1
			for _, ch := range l.chunks {
				for i := range ch {
					if ch[i].sess == Session(s) && ch[i].fd[backend] >= 0 {
						v, _ = unix.GetsockoptInt(int(ch[i].fd[backend]), unix.IPPROTO_TCP, unix.TCP_NODELAY)
					}
				}
			}
			got <- v
		})
		return <-got
	}
	buf := make([]byte, 5)
	for i, want := range []int{0, 1, 1} {
		io.WriteString(c, "hello")
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("echo %d = %q, %v", i, buf, err)
		}
		if got := nodelay(); got != want {
			t.Errorf("TCP_NODELAY after %d sends = %d, want %d", i+1, got, want)
		}
	}
}
