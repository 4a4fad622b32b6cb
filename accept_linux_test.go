package tcplb

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestAcceptBackoff runs a balancer in a child process whose open-file limit
// is lowered until Accept fails with EMFILE, and checks that the accept loop
// backs off (5ms doubling to 1s) instead of spinning, then recovers once
// descriptors are free again.
func TestAcceptBackoff(t *testing.T) {
	if os.Getenv("TCPLB_EMFILE_CHILD") == "1" {
		emfileChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptBackoff$")
	cmd.Env = append(os.Environ(), "TCPLB_EMFILE_CHILD=1")
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	timer := time.AfterFunc(testDeadline, func() { cmd.Process.Kill() })
	defer timer.Stop()

	out := bufio.NewReader(stdout)
	addr, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("child did not report its address: %v", err)
	}
	// This connection completes in the kernel's backlog, but the child
	// cannot accept it while it is out of descriptors.
	c := dial(t, addr[:len(addr)-1])

	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("child did not report its retries: %v", err)
	}
	var report struct {
		RetryIn []time.Duration
		Elapsed time.Duration
	}
	if err := json.Unmarshal([]byte(line), &report); err != nil {
		t.Fatalf("child report %q: %v", line, err)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if fmt.Sprint(report.RetryIn) != fmt.Sprint(want) {
		t.Errorf("retry delays = %v, want %v", report.RetryIn, want)
	}
	// Eight pauses passed before the ninth failure: no spinning.
	if min := 1275 * time.Millisecond; report.Elapsed < min {
		t.Errorf("nine accept failures took %v, want at least %v", report.Elapsed, min)
	}

	// Descriptors are free again: the waiting connection is served.
	io.WriteString(c, "back")
	c.CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "back" {
		t.Errorf("echo after recovery = %q, %v; want %q", got, err, "back")
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("child: %v", err)
	}
}

// emfileChild is the child side of TestAcceptBackoff.
func emfileChild() {
	fail := func(err error) { fmt.Fprintln(os.Stderr, "child:", err); os.Exit(3) }
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				continue // EMFILE here too while the limit is low
			}
			go func() { echo(c.(*net.TCPConn)); c.Close() }()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		fail(err)
	}
	// Lower the limit to just above the highest descriptor in use, then
	// fill every free number below it, so the next accept gets EMFILE.
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fail(err)
	}
	highest := 0
	for _, e := range fds {
		var fd int
		fmt.Sscan(e.Name(), &fd)
		highest = max(highest, fd)
	}
	low := old
	low.Cur = uint64(highest + 1)
	h := &backoffRecorder{restore: func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }}
	b, err := NewBackend(backend.Addr().String(), 1)
	if err != nil {
		fail(err)
	}
	lb := &Balancer{Pool: NewPool("p", nil, b), Logger: slog.New(h)}
	fmt.Println(ln.Addr())
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		fail(err)
	}
	for {
		f, err := os.Open("/dev/null")
		if err != nil {
			break
		}
		h.fillers = append(h.fillers, f)
	}
	h.start = time.Now()
	go lb.Serve(ln)
	io.Copy(io.Discard, os.Stdin) // until the parent is done
	lb.Close()
	os.Exit(0)
}

// backoffRecorder is a slog.Handler that records the accept loop's retry
// delays and, at the ninth, reports them and frees descriptors.
type backoffRecorder struct {
	start   time.Time
	retries []time.Duration
	fillers []*os.File
	restore func()
}

func (h *backoffRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *backoffRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *backoffRecorder) WithGroup(string) slog.Handler            { return h }

func (h *backoffRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "accept failed; retrying" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "retry_in" {
			h.retries = append(h.retries, a.Value.Duration())
		}
		return true
	})
	if len(h.retries) == 9 {
		b, _ := json.Marshal(map[string]any{"RetryIn": h.retries, "Elapsed": time.Since(h.start)})
		h.restore()
		for _, f := range h.fillers {
			f.Close()
		}
		fmt.Println(string(b))
	}
	return nil
}
