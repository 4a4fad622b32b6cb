package tcplb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testDeadline bounds every blocking socket operation in these tests.
const testDeadline = 10 * time.Second

// startBackend serves each connection with serve on 127.0.0.1:0 until the
// test ends.
func startBackend(t *testing.T, serve func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(testDeadline))
			wg.Go(func() {
				defer c.Close()
				serve(c.(*net.TCPConn))
			})
		}
	})
	return ln.Addr().String()
}

// echo copies everything back and passes the client's FIN on. It copies
// through a buffer, not io.Copy's splice, so it holds no pipe while idle.
func echo(c *net.TCPConn) {
	io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
	c.CloseWrite()
}

// deadAddr returns a loopback address on which nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// logBuffer collects JSON log records.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records returns the records whose msg is msg.
func (l *logBuffer) records(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

type testLB struct {
	*Balancer
	addr string
	log  *logBuffer
	done chan error // Serve's result
}

// startLB serves lb on 127.0.0.1:0 over backends with round robin, and
// closes it when the test ends.
func startLB(t *testing.T, lb *Balancer, addrs ...string) *testLB {
	t.Helper()
	var bs []*Backend
	for _, a := range addrs {
		b, err := NewBackend(a, 1)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	if lb.Pool == nil {
		lb.Pool = NewPool("test", nil, bs...)
	}
	if lb.Name == "" {
		lb.Name = "main"
	}
	lbLog := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(lbLog, nil))
	lb.Logger, lb.AccessLog = logger, logger
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLB{Balancer: lb, addr: ln.Addr().String(), log: lbLog, done: make(chan error, 1)}
	go func() { tl.done <- lb.Serve(ln) }()
	t.Cleanup(func() {
		lb.Close()
		select {
		case err := <-tl.done:
			if !errors.Is(err, ErrBalancerClosed) {
				t.Errorf("Serve = %v, want ErrBalancerClosed", err)
			}
		case <-time.After(testDeadline):
			t.Error("Serve did not return after Close")
		}
	})
	return tl
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testDeadline))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// waitAccessLog waits until the balancer has finished n connections and
// returns their access-log records.
func (tl *testLB) waitAccessLog(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for {
		if recs := tl.log.records("connection"); len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d access-log records, want %d", testDeadline, len(tl.log.records("connection")), n)
		}
		time.Sleep(5 * time.Millisecond) // polling a log, not waiting for an event we could select on
	}
}

func TestForwardLargePayloadWithHalfClose(t *testing.T) {
	tl := startLB(t, &Balancer{}, startBackend(t, echo))
	payload := make([]byte, 16<<20)
	rand.Read(payload)

	c := dial(t, tl.addr)
	writeErr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.CloseWrite() // half-close: we still read the echo
		}
		writeErr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo of %d bytes differs: got %d bytes", len(payload), len(got))
	}
	rec := tl.waitAccessLog(t, 1)[0]
	if rec["end"] != string(EndClientClosed) || rec["client_bytes"] != float64(len(payload)) || rec["backend_bytes"] != float64(len(payload)) {
		t.Errorf("access log = %v, want end %q and %d bytes each way", rec, EndClientClosed, len(payload))
	}
	b := tl.Pool.Backends()[0].Stats()
	if b.BytesIn != uint64(len(payload)) || b.BytesOut != uint64(len(payload)) || b.Total != 1 || b.Active != 0 {
		t.Errorf("backend stats = %+v, want %d bytes each way, 1 total, 0 active", b, len(payload))
	}
}

func TestBackendSpeaksFirstThenCloses(t *testing.T) {
	greeting := "220 hello from the backend\r\n"
	tl := startLB(t, &Balancer{}, startBackend(t, func(c *net.TCPConn) {
		io.WriteString(c, greeting)
	}))
	c := dial(t, tl.addr)
	got, err := io.ReadAll(c) // we send nothing: the backend talks and closes
	if err != nil || string(got) != greeting {
		t.Fatalf("ReadAll = %q, %v; want %q, nil", got, err, greeting)
	}
	c.Close() // the client->backend direction ends only when the client closes
	if rec := tl.waitAccessLog(t, 1)[0]; rec["end"] != string(EndBackendClosed) {
		t.Errorf("end = %v, want %q", rec["end"], EndBackendClosed)
	}
}

func TestClientHalfCloseStillGetsReply(t *testing.T) {
	// The backend reads until the client's FIN and only then answers.
	tl := startLB(t, &Balancer{}, startBackend(t, func(c *net.TCPConn) {
		req, _ := io.ReadAll(c)
		fmt.Fprintf(c, "got %d bytes", len(req))
	}))
	c := dial(t, tl.addr)
	io.WriteString(c, "question")
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got 8 bytes" {
		t.Fatalf("reply = %q, %v; want %q", got, err, "got 8 bytes")
	}
}

func TestDeadBackendSkipped(t *testing.T) {
	live := startBackend(t, echo)
	dead := deadAddr(t)
	tl := startLB(t, &Balancer{}, dead, live, deadAddr(t))
	for i := range 6 {
		c := dial(t, tl.addr)
		msg := fmt.Sprintf("ping %d", i)
		io.WriteString(c, msg)
		c.CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != msg {
			t.Fatalf("connection %d: echo = %q, %v; want %q", i, got, err, msg)
		}
	}
	for _, b := range tl.Pool.Backends() {
		if b.Addr() != live && b.Stats().ConnectErrors == 0 {
			t.Errorf("dead backend %v has no connect errors", b)
		}
	}
}

func TestAllBackendsDeadClosesClient(t *testing.T) {
	tl := startLB(t, &Balancer{}, deadAddr(t), deadAddr(t), deadAddr(t))
	c := dial(t, tl.addr)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("Read = %d, %v; want the connection closed at once", n, err)
	}
	rec := tl.waitAccessLog(t, 1)[0]
	if rec["end"] != string(EndConnectFailed) || rec["err"] == nil {
		t.Errorf("access log = %v, want end %q with the error", rec, EndConnectFailed)
	}
	if got := len(tl.log.records("backend connect failed")); got != 3 {
		t.Errorf("%d connect-failure log lines, want 3 (each backend tried once)", got)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	tl := startLB(t, &Balancer{IdleTimeout: idle}, startBackend(t, echo))

	// A connection that keeps talking outlives the timeout several times.
	busy := dial(t, tl.addr)
	start := time.Now()
	buf := make([]byte, 4)
	for time.Since(start) < 4*idle {
		if _, err := io.WriteString(busy, "ping"); err != nil {
			t.Fatalf("busy connection write after %v: %v", time.Since(start), err)
		}
		if _, err := io.ReadFull(busy, buf); err != nil {
			t.Fatalf("busy connection read after %v: %v", time.Since(start), err)
		}
		time.Sleep(idle / 6) // pacing the traffic, not synchronising
	}

	// A silent one is closed after idle, plus scheduling slack. The clock
	// starts before the dial: the proxy's starts at its accept, later.
	start = time.Now()
	quiet := dial(t, tl.addr)
	n, err := quiet.Read(buf)
	took := time.Since(start)
	if n != 0 || err != io.EOF {
		t.Fatalf("quiet connection Read = %d, %v; want EOF", n, err)
	}
	if took < idle || took > 2*idle {
		t.Errorf("quiet connection closed after %v, want between %v and %v", took, idle, 2*idle)
	}
	recs := tl.waitAccessLog(t, 1)
	if recs[0]["end"] != string(EndIdle) {
		t.Errorf("end = %v, want %q", recs[0]["end"], EndIdle)
	}
}

func TestIdleTimeoutOneWayStream(t *testing.T) {
	// Only the backend talks, steadily: the client->backend direction is
	// silent the whole time, and the connection must not be cut.
	const idle = 300 * time.Millisecond
	tl := startLB(t, &Balancer{IdleTimeout: idle}, startBackend(t, func(c *net.TCPConn) {
		for range 24 {
			if _, err := io.WriteString(c, "tick"); err != nil {
				return
			}
			time.Sleep(idle / 6) // pacing
		}
	}))
	c := dial(t, tl.addr)
	got, err := io.ReadAll(c)
	if err != nil || len(got) != 24*4 {
		t.Fatalf("ReadAll = %d bytes, %v; want 96 bytes then EOF", len(got), err)
	}
	c.Close()
	if rec := tl.waitAccessLog(t, 1)[0]; rec["end"] != string(EndBackendClosed) {
		t.Errorf("end = %v, want %q", rec["end"], EndBackendClosed)
	}
}

func TestBackendResetReachesClient(t *testing.T) {
	tl := startLB(t, &Balancer{}, startBackend(t, func(c *net.TCPConn) {
		// Read first, so the reset cannot race the balancer's connect.
		if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
			return
		}
		io.WriteString(c, "partial")
		c.SetLinger(0) // close with RST
	}))
	c := dial(t, tl.addr)
	io.WriteString(c, "go")
	got, err := io.ReadAll(c)
	if err == nil {
		t.Fatalf("ReadAll = %q, nil; want a reset after the partial reply", got)
	}
	if rec := tl.waitAccessLog(t, 1)[0]; rec["end"] != string(EndReset) {
		t.Errorf("end = %v, want %q", rec["end"], EndReset)
	}
}

func TestShutdownWaitsForOpenConnection(t *testing.T) {
	tl := startLB(t, &Balancer{}, startBackend(t, echo))
	c := dial(t, tl.addr)
	io.WriteString(c, "before")
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		shutdown <- tl.Shutdown(ctx)
	}()
	select {
	case err := <-tl.done:
		if !errors.Is(err, ErrBalancerClosed) {
			t.Fatalf("Serve = %v, want ErrBalancerClosed", err)
		}
		tl.done <- err // for the cleanup
	case <-time.After(testDeadline):
		t.Fatal("Serve did not return after Shutdown")
	}
	if c2, err := net.DialTimeout("tcp", tl.addr, time.Second); err == nil {
		c2.Close()
		t.Error("new connection accepted after Shutdown began")
	}
	// The open connection still works.
	io.WriteString(c, "during")
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "during" {
		t.Fatalf("echo during shutdown = %q, %v", buf, err)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a connection still open", err)
	default:
	}
	c.CloseWrite()
	io.ReadAll(c)
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("Shutdown = %v, want nil", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("Shutdown did not return after the last connection closed")
	}
}

func TestShutdownDeadlineForcesClose(t *testing.T) {
	tl := startLB(t, &Balancer{}, startBackend(t, echo))
	c := dial(t, tl.addr)
	io.WriteString(c, "x")
	io.ReadFull(c, make([]byte, 1))

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := tl.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("Read after forced shutdown = %d, %v; want the connection closed", n, err)
	}
	if got := tl.ActiveConns(); got != 0 {
		t.Errorf("ActiveConns after Shutdown = %d, want 0", got)
	}
	if rec := tl.waitAccessLog(t, 1)[0]; rec["end"] != string(EndShutdown) {
		t.Errorf("end = %v, want %q", rec["end"], EndShutdown)
	}
}

func TestServeAfterShutdown(t *testing.T) {
	lb := &Balancer{Pool: NewPool("p", nil)}
	lb.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := lb.Serve(ln); !errors.Is(err, ErrBalancerClosed) {
		t.Fatalf("Serve after Close = %v, want ErrBalancerClosed", err)
	}
}

func TestIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	backend, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		c, err := backend.Accept()
		if err == nil {
			echo(c.(*net.TCPConn))
			c.Close()
		}
	}()
	b, err := NewBackend(backend.Addr().String(), 1)
	if err != nil {
		t.Fatalf("NewBackend(%q): %v", backend.Addr(), err)
	}
	lb := &Balancer{Pool: NewPool("v6", nil, b), Logger: slog.New(slog.DiscardHandler)}
	front, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	go lb.Serve(front)
	defer lb.Close()
	c := dial(t, front.Addr().String())
	io.WriteString(c, "v6")
	c.CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "v6" {
		t.Fatalf("echo over IPv6 = %q, %v", got, err)
	}
}
