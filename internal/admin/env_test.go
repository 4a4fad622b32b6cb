package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcplb/tcplb"
)

// The test environment: real echo backends on 127.0.0.1:0, a real
// Balancer serving a real listener, and the admin handler behind a real
// HTTP server.

const testTimeout = 10 * time.Second

// v6Addr is the backend of pool "v6". No listener serves that pool, so it
// is never dialled and need not exist.
const v6Addr = "[::1]:3001"

type env struct {
	t        *testing.T
	pool     *tcplb.Pool // "app": b1, b2, round robin
	b1, b2   *tcplb.Backend
	v6       *tcplb.Pool // "v6": one backend, v6Addr
	lb       *tcplb.Balancer
	lbAddr   string
	srv      *httptest.Server
	client   *http.Client
	token    string // sent by do when not empty
	lastBody []byte
}

// newEnv builds the environment; edit changes the admin Config before the
// handler is made.
func newEnv(t *testing.T, edit func(*Config)) *env {
	t.Helper()
	e := &env{t: t}
	e.b1 = newBackend(t, echoServer(t))
	e.b2 = newBackend(t, echoServer(t))
	rr, err := tcplb.NewStrategy("round-robin")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	e.pool = tcplb.NewPool("app", rr, e.b1, e.b2)
	e.v6 = tcplb.NewPool("v6", nil, newBackend(t, v6Addr))
	for _, p := range []*tcplb.Pool{e.pool, e.v6} {
		t.Cleanup(p.Close)
		if err := p.SetOptions(tcplb.PoolOptions{Logger: quiet}); err != nil {
			t.Fatal(err)
		}
	}

	e.lb = &tcplb.Balancer{Name: "main", Pool: e.pool, ConnectTimeout: testTimeout, Logger: quiet}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.lbAddr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.lb.Serve(ln) }()
	t.Cleanup(func() {
		e.lb.Close()
		if err := <-served; !errors.Is(err, tcplb.ErrBalancerClosed) {
			t.Errorf("Serve = %v, want ErrBalancerClosed", err)
		}
	})

	c := Config{
		Listeners: []Listener{{Name: "main", Pool: "app", Balancer: e.lb}},
		Pools:     []Pool{{Pool: e.pool, Strategy: "round-robin"}, {Pool: e.v6, Strategy: "round-robin"}},
	}
	if edit != nil {
		edit(&c)
	}
	e.token = c.Token
	e.srv = httptest.NewServer(New(c))
	t.Cleanup(e.srv.Close)
	e.client = e.srv.Client()
	e.client.Timeout = testTimeout
	return e
}

func newBackend(t *testing.T, addr string) *tcplb.Backend {
	t.Helper()
	b, err := tcplb.NewBackend(addr, 1)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// echoServer starts a server on 127.0.0.1:0 that echoes every connection
// until the client half-closes, and returns its address.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// open connects to the balancer, sends msg and reads its echo, and returns
// the connection, still open; the test's cleanup closes it.
func (e *env) open(msg string) net.Conn {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.lbAddr, testTimeout)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, msg); err != nil {
		e.t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		e.t.Fatalf("reading the echo: %v", err)
	}
	if string(got) != msg {
		e.t.Fatalf("echo = %q, want %q", got, msg)
	}
	return c
}

// exchange makes one whole connection through the balancer: msg there and
// back, then close, and waits until the balancer has finished it.
func (e *env) exchange(msg string) {
	e.t.Helper()
	e.open(msg).Close()
	e.waitIdle()
}

// waitIdle waits until the balancer serves no connection.
func (e *env) waitIdle() {
	e.t.Helper()
	waitFor(e.t, "the balancer to finish its connections", func() bool { return e.lb.ActiveConns() == 0 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a counter; there is no event to wait on
	}
}

// do sends a request to the admin server, with the env's token if any, and
// returns the status and the response; the body is in e.lastBody.
func (e *env) do(method, path, body string) (int, *http.Response) {
	e.t.Helper()
	return e.doAuth(method, path, body, authHeader(e.token))
}

func authHeader(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

// doAuth is do with the given Authorization header ("": none).
func (e *env) doAuth(method, path, body, auth string) (int, *http.Response) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	e.lastBody, err = io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, resp
}

// getJSON does a request that must answer 200 with JSON, and decodes it
// into v.
func (e *env) getJSON(method, path, body string, v any) {
	e.t.Helper()
	status, resp := e.do(method, path, body)
	if status != http.StatusOK {
		e.t.Fatalf("%s %s = %d %s, want 200", method, path, status, e.lastBody)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	dec := json.NewDecoder(bytes.NewReader(e.lastBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		e.t.Fatalf("%s %s: decoding %s: %v", method, path, e.lastBody, err)
	}
}

// wantError checks that a request answers status with a JSON error whose
// message contains want.
func (e *env) wantError(method, path, body, auth string, status int, want string) *http.Response {
	e.t.Helper()
	got, resp := e.doAuth(method, path, body, auth)
	if got != status {
		e.t.Errorf("%s %s %q = %d %s, want %d", method, path, body, got, e.lastBody, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	var msg struct{ Error string }
	if err := json.Unmarshal(e.lastBody, &msg); err != nil || !strings.Contains(msg.Error, want) {
		e.t.Errorf("%s %s %q: body %s, want an error containing %q", method, path, body, e.lastBody, want)
	}
	return resp
}
