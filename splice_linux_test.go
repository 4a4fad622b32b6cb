package tcplb

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// idlePipes returns how many pipes wait in the pool for reuse.
func idlePipes() int {
	pipes.Lock()
	defer pipes.Unlock()
	return len(pipes.free)
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the ReadDir's own
}

// TestIdleConnectionsHoldNoPipe: once bytes have moved and the connection
// is quiet, each proxied connection holds its two sockets and no pipe.
func TestIdleConnectionsHoldNoPipe(t *testing.T) {
	tl := startLB(t, &Balancer{}, startBackend(t, echo))
	const n = 50
	before := openFDs(t) - 2*idlePipes()
	buf := make([]byte, 5)
	for i := range n {
		c := dial(t, tl.addr)
		fmt.Fprintf(c, "hi %02d", i)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	// In this process each connection has four sockets: the test's client,
	// the balancer's two, and the backend's. Pipes kept for reuse are not
	// the connections'. A socket of an earlier test may still be closing.
	got := openFDs(t) - 2*idlePipes() - before
	if max := 4*n + 4; got > max {
		t.Errorf("%d idle connections added %d descriptors, want at most %d (no pipes held)", n, got, max)
	}
}

// TestSpliceWithoutPipes runs a connection in a child process that has run
// out of descriptors, so no splice pipe can be made: bytes must still flow,
// through the buffered fallback.
func TestSpliceWithoutPipes(t *testing.T) {
	if os.Getenv("TCPLB_NOPIPE_CHILD") == "1" {
		noPipeChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpliceWithoutPipes$", "-test.v")
	cmd.Env = append(os.Environ(), "TCPLB_NOPIPE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("fallback ok")) {
		t.Fatalf("child did not confirm the fallback:\n%s", out)
	}
}

func noPipeChild(t *testing.T) {
	tl := startLB(t, &Balancer{}, startBackend(t, echo))
	c := dial(t, tl.addr)
	io.WriteString(c, "x") // the connection is established on both sides
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	// Take every free descriptor, then empty the pipe pool.
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(openFDs(t) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var fillers []*os.File
	for {
		f, err := os.Open("/dev/null")
		if err != nil {
			break
		}
		fillers = append(fillers, f)
	}
	var held []*pipe
	for p := getPipe(); p != nil; p = getPipe() {
		held = append(held, p)
	}
	defer func() {
		for _, p := range held {
			putPipe(p)
		}
		for _, f := range fillers {
			f.Close()
		}
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	}()

	payload := make([]byte, 1<<20)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo without pipes: %d bytes, %v; want the %d bytes sent", len(got), err, len(payload))
	}
	fmt.Println("fallback ok")
}
