package tcplb

import (
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tests of what an event loop gets wrong. Like every test of the package
// they run on each engine (TestMain); on the event loops, the test process
// has one loop, so the connections of a test share it.

// TestSlowReaderDoesNotDelayOthers: a client that reads nothing while its
// backend streams keeps the proxy's buffers toward it full; another client
// on the same loop must still get every answer at once.
func TestSlowReaderDoesNotDelayOthers(t *testing.T) {
	flood := startBackend(t, func(c *net.TCPConn) {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	lb := startLB(t, &Balancer{}, flood)
	slow := dial(t, lb.addr)
	slow.SetReadBuffer(4 << 10)
	// Let the flood fill every buffer on the way.
	waitFor(t, "the flood to stall", func() bool {
		c := lb.Connections(0)
		if len(c) != 1 || c[0].BackendBytes == 0 {
			return false
		}
		before := c[0].BackendBytes
		time.Sleep(50 * time.Millisecond) // sampling a counter, not waiting for an event
		return lb.Connections(0)[0].BackendBytes == before
	})

	lb.SetPool(NewPool("echo", nil, mustBackend(t, startBackend(t, echo))))
	other := dial(t, lb.addr)
	buf := make([]byte, 64)
	for i := range 200 {
		start := time.Now()
		if _, err := other.Write(buf); err != nil {
			t.Fatal(err)
		}
		other.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(other, buf); err != nil {
			t.Fatalf("request %d beside a stalled connection: %v after %v", i, err, time.Since(start))
		}
	}
}

// TestBackendThatNeverReadsKeepsMemoryBounded: a client pushes into a
// backend that never reads. The proxy stops reading the client once what it
// holds cannot be written (the kernel's buffers, one pipe or pending
// buffer), so the client's writes block, and the heap does not grow.
func TestBackendThatNeverReadsKeepsMemoryBounded(t *testing.T) {
	hold := make(chan struct{})
	lb := startLB(t, &Balancer{}, startBackend(t, func(c *net.TCPConn) {
		c.SetReadBuffer(4 << 10)
		<-hold
	}))
	t.Cleanup(func() { close(hold) }) // first of the cleanups: the backend's waits for it
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := dial(t, lb.addr)
	c.SetWriteBuffer(4 << 10)
	chunk := make([]byte, 256<<10)
	written := 0
	for written < 512<<20 {
		c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Write(chunk)
		written += n
		if err != nil {
			if !isTimeout(err) {
				t.Fatalf("write after %d bytes: %v", written, err)
			}
			break
		}
	}
	if written >= 512<<20 {
		t.Fatalf("the client wrote %d MiB into a backend that never reads: no backpressure", written>>20)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("client blocked after %d KiB; heap in use grew %d KiB", written>>10, grew>>10)
	if grew > 8<<20 {
		t.Errorf("heap in use grew %d KiB holding one stalled connection, want under 8 MiB", grew>>10)
	}
}

// TestClientResetReachesBackend: a client that closes with a reset makes
// the backend see a reset, not a clean end of stream.
func TestClientResetReachesBackend(t *testing.T) {
	got := make(chan error, 1)
	lb := startLB(t, &Balancer{}, startBackend(t, func(c *net.TCPConn) {
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil {
			got <- err
			return
		}
		c.Write(buf)
		_, err := io.ReadAll(c)
		got <- err
	}))
	c := dial(t, lb.addr)
	io.WriteString(c, "hi")
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	c.SetLinger(0)
	c.Close()
	select {
	case err := <-got:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("backend's read after the client's reset = %v, want ECONNRESET", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("the backend saw nothing of the client's reset")
	}
	if rec := lb.waitAccessLog(t, 1)[0]; rec["end"] != string(EndReset) {
		t.Errorf("end = %v, want %q", rec["end"], EndReset)
	}
}

// TestHalfCloseBothWays: each side ends its stream in turn, and what the
// other sends afterwards still arrives, byte-exact.
func TestHalfCloseBothWays(t *testing.T) {
	for _, size := range []int{1, 1500, 64 << 10, 1 << 20} {
		payload := strings.Repeat("x", size)
		got := make(chan string, 1)
		lb := startLB(t, &Balancer{}, startBackend(t, func(c *net.TCPConn) {
			b, _ := io.ReadAll(c) // until the client's FIN
			got <- string(b)
			io.WriteString(c, payload) // then answer, and end
			c.CloseWrite()
		}))
		c := dial(t, lb.addr)
		io.WriteString(c, payload)
		c.CloseWrite()
		if s := <-got; len(s) != size {
			t.Fatalf("size %d: backend read %d bytes before the FIN", size, len(s))
		}
		b, err := io.ReadAll(c)
		if err != nil || len(b) != size {
			t.Fatalf("size %d: client read %d bytes, %v, after its own FIN", size, len(b), err)
		}
		if rec := lb.waitAccessLog(t, 1)[0]; rec["end"] != string(EndClientClosed) {
			t.Errorf("size %d: end = %v, want %q", size, rec["end"], EndClientClosed)
		}
	}
}

func mustBackend(t *testing.T, addr string) *Backend {
	t.Helper()
	b, err := NewBackend(addr, 1)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
