package tcplb

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idleChildEnv makes the test binary a balancer for TestIdleMemory: its
// value is the backend address.
const idleChildEnv = "TCPLB_IDLE_CHILD"

// TestIdleMemory holds 8000 idle proxied connections through a balancer
// in a child process and reads what they cost it in /proc: resident
// memory and descriptors per connection. On the event loops the target is
// half of HAProxy's 3.3 KB, about 1.7 KB; the goroutine engine parks
// quiet connections and stays under 16 KiB.
func TestIdleMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector multiplies memory use")
	}
	if os.Getenv(idleChildEnv) != "" {
		idleChild()
		return
	}
	const n = 8000
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	held := make(chan net.Conn, n)
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			c.Write([]byte{'!'}) // a greeting: the client knows it got through
			held <- c
		}
	}()
	t.Cleanup(func() {
		for range len(held) {
			(<-held).Close()
		}
	})

	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleMemory$")
	cmd.Env = append(os.Environ(), idleChildEnv+"="+backend.Addr().String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	var addr string
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("the child balancer did not start")
	}
	pid := cmd.Process.Pid
	rss0, fds0 := procUse(t, pid)
	clients := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	buf := make([]byte, 1)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, testDeadline)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		clients = append(clients, c)
		c.SetReadDeadline(time.Now().Add(testDeadline))
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("connection %d: no greeting: %v", i, err)
		}
	}
	rss1, fds1 := procUse(t, pid)
	perConn := float64(rss1-rss0) / n
	fdsPer := float64(fds1-fds0) / n
	t.Logf("%v: %d idle connections: %.0f B and %.2f descriptors each (RSS %d -> %d KiB)",
		defaultEngine, n, perConn, fdsPer, rss0>>10, rss1>>10)
	limit := 16 << 10
	if defaultEngine == EngineEpoll {
		limit = 1700
	}
	if perConn > float64(limit) {
		t.Errorf("%.0f B per idle connection, want at most %d", perConn, limit)
	}
	if fdsPer > 2.01 {
		t.Errorf("%.2f descriptors per idle connection, want 2", fdsPer)
	}
}

// idleChild runs the balancer of TestIdleMemory and never returns.
func idleChild() {
	b, err := NewBackend(os.Getenv(idleChildEnv), 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	discard := slog.New(slog.DiscardHandler)
	lb := &Balancer{Pool: NewPool("p", nil, b), Logger: discard, AccessLog: discard}
	fmt.Println("listening", ln.Addr())
	lb.Serve(ln)
	os.Exit(0)
}

// procUse returns a process's resident memory in bytes and its number of
// open descriptors.
func procUse(t *testing.T, pid int) (rss int64, fds int) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			rss = kb << 10
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return rss, len(ents)
}
