package tcplb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// probeWithin bounds how long any probe in these tests may take, however
// it ends.
const probeWithin = 2 * time.Second

// checkServer is a backend on a real socket that runs serve on each
// accepted connection, then reads until the prober closes its side and
// reports that on closed.
type checkServer struct {
	ln     net.Listener
	closed chan struct{} // one value per connection the prober closed
}

// startCheckServer listens on addr ("127.0.0.1:0", "[::1]:0") and serves
// each connection with serve, which may be nil to only accept. Everything
// is closed and waited for in t.Cleanup.
func startCheckServer(t *testing.T, addr string, serve func(net.Conn)) *checkServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &checkServer{ln: ln, closed: make(chan struct{}, 16)}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
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
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if serve != nil {
					serve(c)
				}
				if _, err := io.Copy(io.Discard, c); !errors.Is(err, net.ErrClosed) {
					s.closed <- struct{}{} // EOF or reset from the prober
				}
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
	return s
}

func (s *checkServer) addr() string { return s.ln.Addr().String() }

func (s *checkServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// closedAddr returns an address on host where nothing listens.
func closedAddr(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// answer returns a serve function that reads len(want) bytes and, if they
// are want, writes reply; otherwise it writes "BAD REQUEST".
func answer(want, reply string) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if string(buf) != want {
			reply = "BAD REQUEST"
		}
		io.WriteString(c, reply)
	}
}

// httpAnswer returns a serve function that reads one HTTP request and
// writes reply if the request is the one the probe should send for path
// and host, or a 400 response naming what was wrong. An empty host means
// the default, the checked address.
func httpAnswer(path, host, reply string) func(net.Conn) {
	return func(c net.Conn) {
		if host == "" {
			host = c.LocalAddr().String()
		}
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		var bad []string
		if req.Method != "GET" || req.RequestURI != path || req.Proto != "HTTP/1.1" {
			bad = append(bad, "request line "+req.Method+" "+req.RequestURI+" "+req.Proto)
		}
		if req.Host != host {
			bad = append(bad, "host "+req.Host)
		}
		if ua := req.Header.Get("User-Agent"); ua != "tcplb-health-check" {
			bad = append(bad, "user-agent "+ua)
		}
		if !req.Close {
			bad = append(bad, "no Connection: close")
		}
		if len(bad) > 0 {
			reply = "HTTP/1.1 400 Bad Request\r\nX-Bad: " + strings.Join(bad, "; ") + "\r\nContent-Length: 0\r\n\r\n"
		}
		io.WriteString(c, reply)
	}
}

// sendFIN sends FIN to the prober, so that it reads EOF.
func sendFIN(c net.Conn) { c.(*net.TCPConn).CloseWrite() }

// probeCase is one probe of a backend on a real socket.
type probeCase struct {
	name      string
	serve     func(net.Conn) // the backend's side of the check's connection; nil: nothing listens
	checkPort bool           // the backend's port is closed and hc.Port is the port serve listens on
	hc        HealthCheck
	want      string // the error exactly, with $addr for the checked address; "" for success
	wantPart  string // or, if set, a part of it
	hold      bool   // serve holds the connection open, so the probe must time out
}

// runProbeCases runs each case against a backend on host ("127.0.0.1",
// "::1").
func runProbeCases(t *testing.T, host string, cases []probeCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			hc := tt.hc.WithDefaults()
			if err := hc.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			var srv *checkServer
			addr := closedAddr(t, host)
			checked := addr
			if tt.serve != nil || tt.hold {
				srv = startCheckServer(t, net.JoinHostPort(host, "0"), tt.serve)
				checked = srv.addr()
				if tt.checkPort {
					hc.Port = srv.port()
				} else {
					addr = checked
				}
			}

			start := time.Now()
			err := hc.probe(t.Context(), addr)
			took := time.Since(start)

			want := strings.ReplaceAll(tt.want, "$addr", checked)
			switch {
			case tt.want == "" && tt.wantPart == "":
				if err != nil {
					t.Errorf("probe(%s) = %v, want nil", addr, err)
				}
			case tt.wantPart != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantPart) {
					t.Errorf("probe(%s) = %v, want an error containing %q", addr, err, tt.wantPart)
				}
			default:
				if err == nil || err.Error() != want {
					t.Errorf("probe(%s) = %v, want %s", addr, err, want)
				}
			}
			if took > probeWithin {
				t.Errorf("probe(%s) took %v, want at most %v", addr, took, probeWithin)
			}
			if srv != nil {
				select {
				case <-srv.closed:
				case <-time.After(probeWithin):
					t.Errorf("probe(%s) returned but left its connection open", addr)
				}
			}
		})
	}
}

func TestProbe(t *testing.T) {
	const host = "127.0.0.1"
	short := 200 * time.Millisecond
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	runProbeCases(t, host, []probeCase{
		{name: "tcp ok", serve: func(net.Conn) {}},
		{name: "tcp refused", want: "connect $addr: connection refused"},
		{
			name:  "send/expect ok",
			serve: answer("PING\r\n", "PONG extra"),
			hc:    HealthCheck{Send: "PING\r\n", Expect: "PONG"},
		},
		{
			name:  "expect mismatch",
			serve: answer("PING\r\n", "ERR x"),
			hc:    HealthCheck{Send: "PING\r\n", Expect: "PONG"},
			want:  `expect "PONG": got "ERR x"`,
		},
		{
			name:  "expect mismatch after the first bytes",
			serve: answer("PING\r\n", "POX"),
			hc:    HealthCheck{Send: "PING\r\n", Expect: "PONG"},
			want:  `expect "PONG": got "POX"`,
		},
		{
			name: "expect short reply then close",
			serve: func(c net.Conn) {
				answer("PING\r\n", "PO")(c)
				sendFIN(c)
			},
			hc:   HealthCheck{Send: "PING\r\n", Expect: "PONG"},
			want: `expect "PONG": connection closed after "PO"`,
		},
		{
			name:  "expect no reply then close",
			serve: sendFIN,
			hc:    HealthCheck{Expect: "PONG"},
			want:  `expect "PONG": connection closed with no reply`,
		},
		{
			name:  "expect banner without send",
			serve: func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n") },
			hc:    HealthCheck{Expect: "SSH-2.0-"},
		},
		{
			name:  "expect reply in single bytes",
			serve: func(c net.Conn) { io.WriteString(c, "P"); io.WriteString(c, "O"); io.WriteString(c, "NG") },
			hc:    HealthCheck{Expect: "PONG"},
		},
		{
			name:  "expect long mismatch is cut",
			serve: func(c net.Conn) { io.WriteString(c, strings.Repeat("a", 100)) },
			hc:    HealthCheck{Expect: strings.Repeat("a", 80) + "b"},
			want: fmt.Sprintf(`expect %q...: got %q... (differs at byte 80)`,
				strings.Repeat("a", 64), strings.Repeat("a", 64)),
		},
		{
			name:  "send only",
			serve: answer("QUIT\r\n", ""),
			hc:    HealthCheck{Send: "QUIT\r\n"},
		},
		{
			name: "timeout connected, no reply",
			hold: true,
			hc:   HealthCheck{Timeout: short, Send: "PING\r\n", Expect: "PONG"},
			want: `expect "PONG": timeout after 200ms`,
		},
		{
			name:  "timeout after part of the reply",
			serve: func(c net.Conn) { io.WriteString(c, "PO") },
			hc:    HealthCheck{Timeout: short, Expect: "PONG"},
			want:  `expect "PONG": timeout after 200ms (got "PO")`,
		},
		{
			name:      "port override",
			serve:     func(net.Conn) {},
			checkPort: true,
		},
		{
			name:      "port override send/expect",
			serve:     answer("PING\r\n", "PONG"),
			checkPort: true,
			hc:        HealthCheck{Send: "PING\r\n", Expect: "PONG"},
		},
		{
			name:  "http request and ok",
			serve: httpAnswer("/healthz", "", ok),
			hc:    HealthCheck{HTTP: &HTTPCheck{Path: "/healthz"}},
		},
		{
			name:  "http host header",
			serve: httpAnswer("/", "backend.example", ok),
			hc:    HealthCheck{HTTP: &HTTPCheck{Host: "backend.example"}},
		},
		{
			name:  "http bad request is a failure",
			serve: httpAnswer("/", "backend.example", ok),
			hc:    HealthCheck{HTTP: &HTTPCheck{Host: "other.example"}},
			want:  "http GET /: status 400",
		},
		{
			name:  "http garbage",
			serve: func(c net.Conn) { io.WriteString(c, "hello\r\n") },
			hc:    HealthCheck{HTTP: &HTTPCheck{}},
			want:  `http GET /: malformed response "hello\r\n"`,
		},
		{
			name:  "http closed with no response",
			serve: sendFIN,
			hc:    HealthCheck{HTTP: &HTTPCheck{}},
			want:  `http GET /: connection closed with no response`,
		},
		{
			name: "http cut short",
			serve: func(c net.Conn) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-")
				sendFIN(c)
			},
			hc:   HealthCheck{HTTP: &HTTPCheck{}},
			want: `http GET /: connection closed after "HTTP/1.1 200 OK\r\nContent-"`,
		},
		{
			name: "http endless header",
			serve: func(c net.Conn) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX: ")
				io.WriteString(c, strings.Repeat("x", 100<<10))
			},
			hc:   HealthCheck{HTTP: &HTTPCheck{}},
			want: `http GET /: response longer than 65536 bytes`,
		},
		{
			name: "http timeout",
			hold: true,
			hc:   HealthCheck{Timeout: short, HTTP: &HTTPCheck{Path: "/healthz"}},
			want: `http GET /healthz: timeout after 200ms`,
		},
	})
}

func TestProbeIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	ok := "HTTP/1.1 204 No Content\r\n\r\n"
	runProbeCases(t, "::1", []probeCase{
		{name: "tcp ok", serve: func(net.Conn) {}},
		{name: "tcp refused", want: "connect $addr: connection refused"},
		{name: "port override", serve: func(net.Conn) {}, checkPort: true},
		{
			name:  "send/expect",
			serve: answer("PING\r\n", "PONG"),
			hc:    HealthCheck{Send: "PING\r\n", Expect: "PONG"},
		},
		{
			name:      "http with port override",
			serve:     httpAnswer("/healthz", "", ok),
			checkPort: true,
			hc:        HealthCheck{HTTP: &HTTPCheck{Path: "/healthz", Status: 204}},
		},
	})
}

func TestProbeHTTP(t *testing.T) {
	var downHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		downHits.Add(1)
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/down", http.StatusFound)
	})
	mux.HandleFunc("/vhost", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "backend.example" {
			http.Error(w, "wrong host "+r.Host, http.StatusMisdirectedRequest)
		}
	})
	mux.HandleFunc("/query", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "full=1" {
			http.Error(w, "no query", http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/early", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 8<<20)) // blocks until the prober closes
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	tests := []struct {
		name string
		http HTTPCheck
		want string // "" for success
	}{
		{name: "ok", http: HTTPCheck{Path: "/healthz"}},
		{name: "default path", http: HTTPCheck{}, want: "http GET /: status 404"},
		{name: "503", http: HTTPCheck{Path: "/down"}, want: "http GET /down: status 503"},
		{name: "204 wanted", http: HTTPCheck{Path: "/nocontent", Status: 204}},
		{name: "204 wanted, got 200", http: HTTPCheck{Path: "/healthz", Status: 204}, want: "http GET /healthz: status 200, want 204"},
		{name: "503 wanted", http: HTTPCheck{Path: "/down", Status: 503}},
		{name: "302 not followed", http: HTTPCheck{Path: "/redirect"}},
		{name: "302 wanted exactly", http: HTTPCheck{Path: "/redirect", Status: 302}},
		{name: "host header", http: HTTPCheck{Path: "/vhost", Host: "backend.example"}},
		{name: "host header default", http: HTTPCheck{Path: "/vhost"}, want: "http GET /vhost: status 421"},
		{name: "query", http: HTTPCheck{Path: "/query?full=1"}},
		{name: "1xx skipped", http: HTTPCheck{Path: "/early"}},
		{name: "big body not read", http: HTTPCheck{Path: "/big"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.http
			hc := HealthCheck{HTTP: &h}.WithDefaults()
			if err := hc.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			start := time.Now()
			err := hc.probe(t.Context(), addr)
			if took := time.Since(start); took > probeWithin {
				t.Errorf("probe(%s) took %v, want at most %v", addr, took, probeWithin)
			}
			if tt.want == "" && err != nil {
				t.Errorf("probe(%s) = %v, want nil", addr, err)
			}
			if tt.want != "" && (err == nil || err.Error() != tt.want) {
				t.Errorf("probe(%s) = %v, want %s", addr, err, tt.want)
			}
		})
	}
	if n := downHits.Load(); n != 2 {
		t.Errorf("/down was requested %d times, want 2 (the redirect to it must not be followed)", n)
	}
}

func TestProbeCanceled(t *testing.T) {
	accepted := make(chan struct{}, 1)
	srv := startCheckServer(t, "127.0.0.1:0", func(net.Conn) { accepted <- struct{}{} })
	hc := HealthCheck{Timeout: time.Minute, Expect: "PONG"}.WithDefaults()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- hc.probe(ctx, srv.addr()) }()
	select {
	case <-accepted:
	case <-time.After(probeWithin):
		t.Fatal("the probe did not connect")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("probe(%s) = %v, want context.Canceled", srv.addr(), err)
		}
	case <-time.After(probeWithin):
		t.Fatalf("probe(%s) still running %v after cancel", srv.addr(), probeWithin)
	}
	if took := time.Since(start); took > probeWithin {
		t.Errorf("probe(%s) took %v, want at most %v", srv.addr(), took, probeWithin)
	}

	// A context that has already ended stops the probe before it connects,
	// and one that ends before Timeout stops it then.
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if err := hc.probe(ctx, srv.addr()); !errors.Is(err, context.Canceled) {
		t.Errorf("probe(canceled ctx, %s) = %v, want context.Canceled", srv.addr(), err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := hc.probe(ctx, srv.addr()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("probe(ctx with deadline, %s) = %v, want context.DeadlineExceeded", srv.addr(), err)
	}
}

func TestProbeBadAddr(t *testing.T) {
	tests := []struct {
		hc   HealthCheck
		addr string
		want string
	}{
		{HealthCheck{Port: 80}, "no-port", `address "no-port": missing port in address`},
		{HealthCheck{}, "no-port", `connect no-port: missing port in address`},
		{HealthCheck{HTTP: &HTTPCheck{Path: "/\x00"}}, "127.0.0.1:1", `http path "/\x00": invalid`},
		{HealthCheck{Timeout: -1}, "127.0.0.1:1", `connect 127.0.0.1:1: timeout after -1ns`},
	}
	for _, tt := range tests {
		err := tt.hc.probe(t.Context(), tt.addr)
		if err == nil || err.Error() != tt.want {
			t.Errorf("probe(%s) = %v, want %s", tt.addr, err, tt.want)
		}
	}
	var nilCheck *HealthCheck
	if err := nilCheck.probe(t.Context(), "127.0.0.1:1"); err == nil {
		t.Errorf("(*HealthCheck)(nil).probe() = nil, want an error")
	}
}

func TestHealthCheckWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   HealthCheck
		want HealthCheck
	}{
		{"zero", HealthCheck{}, HealthCheck{Interval: 2 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3}},
		{"timeout follows interval", HealthCheck{Interval: 5 * time.Second},
			HealthCheck{Interval: 5 * time.Second, Timeout: 5 * time.Second, Rise: 2, Fall: 3}},
		{"all set", HealthCheck{Interval: time.Second, Timeout: 300 * time.Millisecond, Rise: 1, Fall: 5, Port: 9000, Send: "a", Expect: "b"},
			HealthCheck{Interval: time.Second, Timeout: 300 * time.Millisecond, Rise: 1, Fall: 5, Port: 9000, Send: "a", Expect: "b"}},
		{"negative kept for Validate", HealthCheck{Interval: -time.Second, Rise: -1},
			HealthCheck{Interval: -time.Second, Timeout: -time.Second, Rise: -1, Fall: 3}},
		{"http path", HealthCheck{HTTP: &HTTPCheck{}},
			HealthCheck{Interval: 2 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3, HTTP: &HTTPCheck{Path: "/"}}},
		{"http set", HealthCheck{HTTP: &HTTPCheck{Path: "/h", Host: "x", Status: 204}},
			HealthCheck{Interval: 2 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3, HTTP: &HTTPCheck{Path: "/h", Host: "x", Status: 204}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before HTTPCheck
			if tt.in.HTTP != nil {
				before = *tt.in.HTTP
			}
			got := tt.in.WithDefaults()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%+v.WithDefaults() = %+v, want %+v", tt.in, got, tt.want)
			}
			if tt.in.HTTP != nil {
				if got.HTTP == tt.in.HTTP {
					t.Errorf("WithDefaults() shares the caller's HTTPCheck")
				}
				if *tt.in.HTTP != before {
					t.Errorf("WithDefaults() changed the caller's HTTPCheck to %+v", *tt.in.HTTP)
				}
			}
		})
	}
}

func TestHealthCheckValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(*HealthCheck) // changes a defaulted HealthCheck
		want string             // the error, exactly; "" for valid
	}{
		{"defaults", func(*HealthCheck) {}, ""},
		{"zero interval", func(h *HealthCheck) { h.Interval = 0 }, "health check: interval 0s: must be greater than 0"},
		{"negative interval", func(h *HealthCheck) { h.Interval = -time.Second }, "health check: interval -1s: must be greater than 0"},
		{"zero timeout", func(h *HealthCheck) { h.Timeout = 0 }, "health check: timeout 0s: must be greater than 0"},
		{"negative timeout", func(h *HealthCheck) { h.Timeout = -time.Millisecond }, "health check: timeout -1ms: must be greater than 0"},
		{"rise", func(h *HealthCheck) { h.Rise = 0 }, "health check: rise 0: must be at least 1"},
		{"fall", func(h *HealthCheck) { h.Fall = -2 }, "health check: fall -2: must be at least 1"},
		{"negative port", func(h *HealthCheck) { h.Port = -1 }, "health check: port -1: must be between 0 and 65535"},
		{"big port", func(h *HealthCheck) { h.Port = 65536 }, "health check: port 65536: must be between 0 and 65535"},
		{"max port", func(h *HealthCheck) { h.Port = 65535 }, ""},
		{"expect 64 KiB", func(h *HealthCheck) { h.Expect = strings.Repeat("x", 64<<10) }, ""},
		{"expect too long", func(h *HealthCheck) { h.Expect = strings.Repeat("x", 64<<10+1) }, "health check: expect of 65537 bytes: must be at most 65536"},
		{"http", func(h *HealthCheck) { h.HTTP = &HTTPCheck{Path: "/healthz?x=1", Host: "example.com:80", Status: 204} }, ""},
		{"http with send", func(h *HealthCheck) { h.HTTP, h.Send = &HTTPCheck{Path: "/"}, "x" }, "health check: http cannot be combined with send/expect"},
		{"http with expect", func(h *HealthCheck) { h.HTTP, h.Expect = &HTTPCheck{Path: "/"}, "x" }, "health check: http cannot be combined with send/expect"},
		{"http relative path", func(h *HealthCheck) { h.HTTP = &HTTPCheck{Path: "healthz"} }, `health check: http path "healthz": must start with "/"`},
		{"http empty path", func(h *HealthCheck) { h.HTTP = &HTTPCheck{} }, `health check: http path "": must start with "/"`},
		{"http bad path", func(h *HealthCheck) { h.HTTP = &HTTPCheck{Path: "/a\nb"} }, `health check: http path "/a\nb": net/url: invalid control character in URL`},
		{"http bad host", func(h *HealthCheck) { h.HTTP = &HTTPCheck{Path: "/", Host: "a\r\nX: y"} }, `health check: http host "a\r\nX: y": must not contain spaces or control characters`},
		{"http status 99", func(h *HealthCheck) { h.HTTP = &HTTPCheck{Path: "/", Status: 99} }, "health check: http status 99: must be 0 or between 100 and 599"},
		{"http status 600", func(h *HealthCheck) { h.HTTP = &HTTPCheck{Path: "/", Status: 600} }, "health check: http status 600: must be 0 or between 100 and 599"},
		{"http status 599", func(h *HealthCheck) { h.HTTP = &HTTPCheck{Path: "/", Status: 599} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := HealthCheck{}.WithDefaults()
			tt.set(&hc)
			err := hc.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("Validate() = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestHealthCheckString(t *testing.T) {
	tests := []struct {
		hc   *HealthCheck
		want string
	}{
		{&HealthCheck{}, "tcp"},
		{&HealthCheck{Port: 9000}, "tcp"},
		{&HealthCheck{Send: "PING\r\n", Expect: "PONG"}, "send/expect"},
		{&HealthCheck{Expect: "SSH-"}, "send/expect"},
		{&HealthCheck{HTTP: &HTTPCheck{Path: "/healthz"}}, "http GET /healthz"},
		{&HealthCheck{HTTP: &HTTPCheck{}}, "http GET /"},
		{nil, "none"},
	}
	for _, tt := range tests {
		if got := tt.hc.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.hc, got, tt.want)
		}
	}
}
