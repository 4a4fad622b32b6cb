package tcplb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDescriptorGate runs a balancer in a child process whose open-file
// limit is a couple of hundred above what it uses at start, and fills it
// with connections: near the limit the balancer stops accepting (it says so
// once, and never gets EMFILE or spins), a connection beyond waits in the
// kernel's queue, and it is served once an earlier one closes.
func TestDescriptorGate(t *testing.T) {
	if os.Getenv("TCPLB_FDGATE_CHILD") != "" {
		fdGateChild(os.Getenv("TCPLB_FDGATE_CHILD"))
		return
	}
	backend := startBackend(t, echo) // here: its descriptors are not the child's
	cmd := exec.Command(os.Args[0], "-test.run=^TestDescriptorGate$")
	cmd.Env = append(os.Environ(), "TCPLB_FDGATE_CHILD="+backend)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	timer := time.AfterFunc(2*testDeadline, func() { cmd.Process.Kill() })
	defer timer.Stop()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child did not report its address: %v", err)
	}
	addr := strings.TrimSpace(line)

	exchange := func(c *net.TCPConn, wait time.Duration) error {
		c.SetDeadline(time.Now().Add(wait))
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, 1))
		return err
	}
	var served []*net.TCPConn
	var blocked *net.TCPConn
	for i := 0; i < 200 && blocked == nil; i++ {
		c := dial(t, addr)
		// A served connection answers in well under a second; one the
		// balancer does not accept gets no answer.
		if err := exchange(c, time.Second); err != nil {
			if !isTimeout(err) {
				t.Fatalf("connection %d: %v, want served or left waiting", i, err)
			}
			blocked = c
			break
		}
		served = append(served, c)
	}
	if blocked == nil {
		t.Fatalf("200 connections all served under a limit of about 200 descriptors")
	}
	t.Logf("%d connections served before the gate closed", len(served))
	if len(served) < 40 {
		t.Errorf("the gate closed after %d connections, want most of the limit used (about 60)", len(served))
	}
	served[0].Close()
	if err := exchange(blocked, testDeadline); err != nil {
		t.Fatalf("the waiting connection after one closed: %v, want served", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, logs.String())
	}
	out := logs.String()
	if n := strings.Count(out, "near the descriptor limit"); n != 1 {
		t.Errorf("%d near-limit log lines, want 1:\n%s", n, out)
	}
	if strings.Contains(out, "accept failed") {
		t.Errorf("accept failed (EMFILE) although the gate should have paused first:\n%s", out)
	}
}

// fdGateChild is the child side of TestDescriptorGate.
func fdGateChild(backend string) {
	fail := func(err error) { fmt.Fprintln(os.Stderr, "child:", err); os.Exit(3) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fail(err)
	}
	lim := syscall.Rlimit{Cur: uint64(len(open) + 200), Max: uint64(len(open) + 200)}
	var old syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old)
	lim.Max = old.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fail(err)
	}
	b, err := NewBackend(backend, 1)
	if err != nil {
		fail(err)
	}
	lb := &Balancer{Pool: NewPool("p", nil, b), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), IdleTimeout: -1}
	go lb.Serve(ln)
	fmt.Println(ln.Addr())
	io.Copy(io.Discard, os.Stdin) // until the parent is done
	lb.Close()
	os.Exit(0)
}
