package tcplb

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// blackhole returns a loopback address whose SYNs go unanswered: a listener
// with a backlog of 0 that never accepts, its queue filled first.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for range 10 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full: SYNs are now dropped
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("could not fill the accept queue of the blackhole listener")
	return ""
}

func TestConnectTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	hole := blackhole(t)

	t.Run("next backend", func(t *testing.T) {
		live := startBackend(t, echo)
		tl := startLB(t, &Balancer{ConnectTimeout: timeout}, hole, live)
		start := time.Now() // before the dial: the proxy's clock starts at its accept
		c := dial(t, tl.addr)
		io.WriteString(c, "hi")
		c.CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "hi" {
			t.Fatalf("echo = %q, %v; want the live backend's echo", got, err)
		}
		if took := time.Since(start); took < timeout || took > timeout+time.Second {
			t.Errorf("answer after %v, want about the connect timeout %v", took, timeout)
		}
		if b := tl.Pool.Backend(hole); b.Stats().ConnectErrors != 1 {
			t.Errorf("blackhole connect errors = %d, want 1", b.Stats().ConnectErrors)
		}
	})

	t.Run("only backend", func(t *testing.T) {
		tl := startLB(t, &Balancer{ConnectTimeout: timeout}, hole)
		start := time.Now() // before the dial: the proxy's clock starts at its accept
		c := dial(t, tl.addr)
		n, err := c.Read(make([]byte, 1))
		took := time.Since(start)
		if n != 0 || err == nil || isTimeout(err) {
			t.Fatalf("Read = %d, %v; want the connection closed", n, err)
		}
		if took < timeout || took > timeout+time.Second {
			t.Errorf("closed after %v, want about the connect timeout %v", took, timeout)
		}
		rec := tl.waitAccessLog(t, 1)[0]
		if rec["end"] != string(EndConnectFailed) {
			t.Errorf("end = %v, want %q", rec["end"], EndConnectFailed)
		}
	})
}
