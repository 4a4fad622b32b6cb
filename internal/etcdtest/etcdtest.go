// Package etcdtest runs a real etcd server for tests: the etcd binary of
// the Debian package etcd-server, on 127.0.0.1, with its data under
// t.TempDir(). Tests that need etcd fail, never skip, when it is missing.
package etcdtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

const etcdMissing = "etcd not found: install the Debian package etcd-server (apt-get install etcd-server)"

// etcdStartTimeout bounds how long a test waits for etcd to answer.
const etcdStartTimeout = 20 * time.Second

// StartEndpoint starts an etcd server and returns its client URL and a
// function that kills it (also called at cleanup; calling it twice is
// fine).
func StartEndpoint(t *testing.T) (endpoint string, stop func()) {
	t.Helper()
	e := Start(t)
	return e.Endpoint(), e.Stop
}

// Server is a single-member etcd server run by a test. It can be
// stopped and started again on the same ports and data directory.
type Server struct {
	t            *testing.T
	bin, dir     string
	client, peer string // 127.0.0.1:port
	log          *LogBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts an etcd server on free ports, trying other ports if
// another process takes them first, and waits until it answers.
func Start(t *testing.T) *Server {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/etcd"); serr != nil {
			t.Fatal(etcdMissing)
		}
		bin = "/usr/bin/etcd"
	}
	e := &Server{t: t, bin: bin, dir: t.TempDir(), log: &LogBuffer{}}
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() {
			t.Logf("etcd log (%s):\n%s", e.client, e.log.Tail(16<<10))
		}
	})
	for attempt := 1; ; attempt++ {
		e.client, e.peer = FreePort(t), FreePort(t)
		err := e.start()
		if err == nil {
			return e
		}
		// A port picked free may be taken again before etcd binds it.
		if attempt == 5 || !strings.Contains(e.log.String(), "address already in use") {
			t.Fatalf("starting etcd: %v\n%s", err, e.log.Tail(16<<10))
		}
		// etcd wrote its member directory before it failed to bind.
		os.RemoveAll(e.dir)
		os.Mkdir(e.dir, 0o700)
		e.log.Reset()
	}
}

func (e *Server) Endpoint() string { return "http://" + e.client }

// start runs etcd on e's ports and data directory and waits until it
// answers a read, or exits, or etcdStartTimeout passes.
func (e *Server) start() error {
	clientURL, peerURL := "http://"+e.client, "http://"+e.peer
	cmd := exec.Command(e.bin,
		"--name", "test",
		"--data-dir", e.dir,
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "test="+peerURL,
		"--initial-cluster-state", "new",
		// A single member elects itself sooner with short raft ticks.
		"--heartbeat-interval", "20",
		"--election-timeout", "200",
	)
	cmd.Env = etcdTestEnv()
	cmd.Stdout, cmd.Stderr = e.log, e.log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	e.mu.Lock()
	e.cmd, e.done = cmd, done
	e.mu.Unlock()

	// Wait for a read to succeed (the client waits for the connection),
	// or for etcd to exit.
	ctx, cancel := context.WithTimeout(context.Background(), etcdStartTimeout)
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{clientURL},
		Logger:    zap.NewNop(),
		// gRPC waits 1s before its second connection attempt by default;
		// etcd usually listens sooner than that.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Get(ctx, "ready")
	select {
	case <-done:
		return fmt.Errorf("etcd exited: %v", cmd.ProcessState)
	default:
	}
	if err != nil {
		e.Stop()
		return fmt.Errorf("etcd did not answer in %v: %v", etcdStartTimeout, err)
	}
	return nil
}

// restart kills etcd and starts it again on the same ports and data.
func (e *Server) Restart() {
	e.t.Helper()
	e.Stop()
	if err := e.start(); err != nil {
		e.t.Fatalf("restarting etcd: %v\n%s", err, e.log.Tail(16<<10))
	}
}

// stop kills etcd, if it runs, and waits for it to exit.
func (e *Server) Stop() {
	e.mu.Lock()
	cmd, done := e.cmd, e.done
	e.cmd = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// newClient returns a client for e, closed at cleanup.
func (e *Server) Client() *clientv3.Client {
	e.t.Helper()
	return NewClient(e.t, e.Endpoint())
}

// NewClient returns a client for the etcd at endpoint, closed at
// cleanup.
func NewClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// FreePort returns "127.0.0.1:port" for a port that was free a
// moment ago.
func FreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// etcdTestEnv is the environment without ETCD_ variables, which etcd
// would take as flags.
func etcdTestEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

// LogBuffer is a bytes.Buffer safe for concurrent use, for a
// process's output and for slog handlers.
type LogBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{} // closed at the next Write; nil if nobody waits
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	return b.buf.Write(p)
}

// written returns a channel closed at the next Write.
func (b *LogBuffer) Written() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wake == nil {
		b.wake = make(chan struct{})
	}
	return b.wake
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *LogBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// tail returns the last n bytes written, at most.
func (b *LogBuffer) Tail(n int) string {
	s := b.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
