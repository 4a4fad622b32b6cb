package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcplb/tcplb"
)

func TestPools(t *testing.T) {
	e := newEnv(t, nil)
	for range 3 {
		e.exchange("hello")
	}
	before := time.Now()

	var got poolsReply
	e.getJSON("GET", "/api/v1/pools", "", &got)
	if got.Time.Before(before) || time.Since(got.Time) > time.Minute {
		t.Errorf("time = %v, want about now", got.Time)
	}
	wantL := []listenerJSON{{Name: "main", Pool: "app", Protocol: "tcp", Active: 0, Accepted: 3,
		Rejected: map[string]uint64{"no_backend": 0, "backends_full": 0, "connect_failed": 0, "listener_full": 0,
			"proxy_header": 0, "denied": 0, "source_conns": 0, "source_rate": 0, "sni": 0}}}
	if fmt.Sprint(got.Listeners) != fmt.Sprint(wantL) {
		t.Errorf("listeners = %+v, want %+v", got.Listeners, wantL)
	}
	if len(got.Pools) != 2 {
		t.Fatalf("pools = %+v, want app and v6", got.Pools)
	}
	app, v6 := got.Pools[0], got.Pools[1]
	if app.Name != "app" || app.Strategy != "round-robin" || app.Available != 2 || len(app.Backends) != 2 {
		t.Errorf("pools[0] = %+v, want app, round-robin, 2 available of 2", app)
	}
	if v6.Name != "v6" || len(v6.Backends) != 1 || v6.Backends[0].Addr != v6Addr {
		t.Errorf("pools[1] = %+v, want v6 with %s", v6, v6Addr)
	}
	var total, in, out uint64
	for i, b := range app.Backends {
		want := []*tcplb.Backend{e.b1, e.b2}[i]
		s := want.Stats()
		if b.Addr != want.Addr() || b.Weight != 1 || b.MaxConns != 0 || b.State != "up" || b.Reason != "" ||
			b.Ramp != 1 || b.Active != 0 || b.Total != s.Total || b.ConnectErrors != 0 ||
			b.BytesIn != s.BytesIn || b.BytesOut != s.BytesOut {
			t.Errorf("backend %d = %+v, want %s up with %+v", i, b, want.Addr(), s)
		}
		if b.Since.IsZero() || b.Since.After(got.Time) {
			t.Errorf("backend %d: since = %v, want before %v", i, b.Since, got.Time)
		}
		total, in, out = total+b.Total, in+b.BytesIn, out+b.BytesOut
	}
	if total != 3 || in != 15 || out != 15 {
		t.Errorf("backends: total %d, bytes in %d, out %d; want 3, 15, 15", total, in, out)
	}

	// The exact keys, as the dashboard reads them.
	var raw struct {
		Listeners []map[string]json.RawMessage
		Pools     []struct{ Backends []map[string]json.RawMessage }
	}
	if err := json.Unmarshal(e.lastBody, &raw); err != nil {
		t.Fatal(err)
	}
	wantKeys := map[string]string{
		"listener": "accepted active name pool protocol rejected",
		"backend":  "active addr bytes_in bytes_out connect_errors max_conns ramp reason since state total weight",
	}
	for what, m := range map[string]map[string]json.RawMessage{"listener": raw.Listeners[0], "backend": raw.Pools[0].Backends[0]} {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		if got := strings.Join(keys, " "); got != wantKeys[what] {
			t.Errorf("%s keys = %s, want %s", what, got, wantKeys[what])
		}
	}
	if s := string(raw.Pools[0].Backends[0]["since"]); !strings.HasPrefix(s, `"20`) {
		t.Errorf("since = %s, want an RFC 3339 time", s)
	}
}

func TestDrainEnable(t *testing.T) {
	e := newEnv(t, nil)
	path := "/api/v1/pools/app/backends/" + e.b1.Addr()

	var b backendJSON
	e.getJSON("POST", path+"/drain", "", &b)
	if b.Addr != e.b1.Addr() || b.State != "draining" || b.Reason != "drained" {
		t.Errorf("drain: %+v, want %s draining, reason drained", b, e.b1.Addr())
	}
	if st := e.b1.State().State; st != tcplb.StateDraining {
		t.Errorf("after drain: State() = %v, want draining", st)
	}
	var pools poolsReply
	e.getJSON("GET", "/api/v1/pools", "", &pools)
	if app := pools.Pools[0]; app.Available != 1 || app.Backends[0].State != "draining" || app.Backends[1].State != "up" {
		t.Errorf("after drain: %+v, want b1 draining, b2 up, 1 available", app)
	}

	// New connections go to the other backend.
	for range 2 {
		e.open("x")
	}
	var conns connectionsReply
	e.getJSON("GET", "/api/v1/connections", "", &conns)
	if conns.Count != 2 {
		t.Fatalf("connections = %+v, want 2", conns)
	}
	for _, c := range conns.Connections {
		if c.Backend != e.b2.Addr() {
			t.Errorf("connection %+v went to %s, want %s (b1 is draining)", c, c.Backend, e.b2.Addr())
		}
	}

	e.getJSON("POST", path+"/enable", "", &b)
	if b.State != "up" || b.Reason != "" {
		t.Errorf("enable: %+v, want up", b)
	}
	e.getJSON("GET", "/api/v1/pools", "", &pools)
	if app := pools.Pools[0]; app.Available != 2 || app.Backends[0].State != "up" {
		t.Errorf("after enable: %+v, want both up", app)
	}
}

func TestWeight(t *testing.T) {
	e := newEnv(t, nil)
	path := "/api/v1/pools/app/backends/" + e.b2.Addr() + "/weight"

	var b backendJSON
	e.getJSON("PUT", path, `{"weight": 3}`, &b)
	if b.Addr != e.b2.Addr() || b.Weight != 3 {
		t.Errorf("PUT weight 3: %+v, want weight 3", b)
	}
	if w := e.b2.Weight(); w != 3 {
		t.Errorf("Weight() = %d, want 3", w)
	}
	var pools poolsReply
	e.getJSON("GET", "/api/v1/pools", "", &pools)
	if w := pools.Pools[0].Backends[1].Weight; w != 3 {
		t.Errorf("GET pools: weight %d, want 3", w)
	}

	for _, tc := range []struct{ body, want string }{
		{`{"weight": 0}`, "weight 0: must be between 1 and 256"},
		{`{"weight": 257}`, "weight 257: must be between 1 and 256"},
		{`{"weight": -1}`, "weight -1"},
		{`{"weight": "abc"}`, "cannot unmarshal"},
		{`{"weight": 2.5}`, "cannot unmarshal"},
		{`{"weight": 3, "extra": 1}`, `unknown field "extra"`},
		{`{}`, `missing "weight"`},
		{`{"weight": null}`, `missing "weight"`},
		{``, "request body"},
		{`weight=3`, "invalid character"},
		{`{"weight": 3} {"weight": 4}`, "more than one JSON value"},
		{`{"weight": 3` + strings.Repeat(" ", maxBody) + `}`, "longer than 4096 bytes"},
	} {
		e.wantError("PUT", path, tc.body, "", http.StatusBadRequest, tc.want)
	}
	if w := e.b2.Weight(); w != 3 {
		t.Errorf("after the bad requests: Weight() = %d, want 3", w)
	}
}

func TestNotFound(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/api/v1/pools/nope/backends/127.0.0.1:1/drain", "", 404, `pool "nope": no such pool`},
		{"POST", "/api/v1/pools/nope/backends/127.0.0.1:1/enable", "", 404, `pool "nope": no such pool`},
		{"PUT", "/api/v1/pools/nope/backends/127.0.0.1:1/weight", `{"weight":2}`, 404, `pool "nope": no such pool`},
		{"POST", "/api/v1/pools/app/backends/127.0.0.1:1/drain", "", 404, "127.0.0.1:1: no such backend"},
		{"POST", "/api/v1/pools/app/backends/127.0.0.1:1/enable", "", 404, "127.0.0.1:1: no such backend"},
		{"PUT", "/api/v1/pools/app/backends/127.0.0.1:1/weight", `{"weight":2}`, 404, "127.0.0.1:1: no such backend"},
		{"POST", "/api/v1/pools/v6/backends/" + e.b1.Addr() + "/drain", "", 404, "no such backend"}, // another pool's
		{"GET", "/api/v1/nothing", "", 404, "not found"},
		{"GET", "/api", "", 404, "not found"},
		{"GET", "/", "", 404, "not found"}, // no UI
		{"GET", "/api/v1/pools/app/backends/" + e.b1.Addr() + "/drain", "", 405, "method not allowed"},
		{"PUT", "/api/v1/pools/app/backends/" + e.b1.Addr() + "/drain", "", 405, "method not allowed"},
		{"POST", "/api/v1/pools/app/backends/" + e.b1.Addr() + "/weight", `{"weight":2}`, 405, "method not allowed"},
		{"DELETE", "/api/v1/pools", "", 405, "method not allowed"},
		{"POST", "/api/v1/connections", "", 405, "method not allowed"},
		{"POST", "/metrics", "", 405, "method not allowed"},
	} {
		resp := e.wantError(tc.method, tc.path, tc.body, "", tc.status, tc.want)
		if tc.status == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: no Allow header", tc.method, tc.path)
		}
		if strings.HasPrefix(tc.path, "/api") && resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control = %q, want no-store", tc.method, tc.path, resp.Header.Get("Cache-Control"))
		}
	}
	if st := e.b1.State().State; st != tcplb.StateUp {
		t.Errorf("b1 state = %v, want up: no request should have changed it", st)
	}
}

func TestIPv6Backend(t *testing.T) {
	e := newEnv(t, nil)
	for _, seg := range []string{v6Addr, url.PathEscape(v6Addr), "%5B%3A%3A1%5D%3A3001"} {
		t.Run(seg, func(t *testing.T) {
			path := "/api/v1/pools/v6/backends/" + seg
			var b backendJSON
			e.getJSON("POST", path+"/drain", "", &b)
			if b.Addr != v6Addr || b.State != "draining" {
				t.Errorf("drain %s: %+v, want %s draining", seg, b, v6Addr)
			}
			e.getJSON("POST", path+"/enable", "", &b)
			if b.State != "up" {
				t.Errorf("enable %s: %+v, want up", seg, b)
			}
			e.getJSON("PUT", path+"/weight", `{"weight": 7}`, &b)
			if b.Weight != 7 {
				t.Errorf("weight %s: %+v, want 7", seg, b)
			}
			if w := e.v6.Backend(v6Addr).Weight(); w != 7 {
				t.Errorf("Weight() = %d, want 7", w)
			}
			e.getJSON("PUT", path+"/weight", `{"weight": 1}`, &b)
		})
	}
}

func TestConnections(t *testing.T) {
	e := newEnv(t, nil)
	var empty connectionsReply
	e.getJSON("GET", "/api/v1/connections", "", &empty)
	if empty.Count != 0 || empty.Connections == nil {
		t.Errorf("no connections: %+v, want an empty list", empty)
	}
	if !strings.Contains(string(e.lastBody), `"connections": []`) {
		t.Errorf("no connections: body %s, want an empty array", e.lastBody)
	}

	c1 := e.open("ping")
	c2 := e.open("hello")
	var got connectionsReply
	// The balancer counts a chunk's bytes after writing it, so the client
	// can read the echo a moment before the counts move.
	waitFor(t, "byte counts", func() bool {
		e.getJSON("GET", "/api/v1/connections", "", &got)
		return got.Count == 2 && got.Connections[0].ClientBytes+got.Connections[0].BackendBytes == 8 &&
			got.Connections[1].ClientBytes+got.Connections[1].BackendBytes == 10
	})
	for i, c := range []struct {
		conn  string
		bytes int64
	}{{c1.LocalAddr().String(), 4}, {c2.LocalAddr().String(), 5}} {
		g := got.Connections[i]
		if g.Listener != "main" || g.Pool != "app" || g.Client != c.conn ||
			(g.Backend != e.b1.Addr() && g.Backend != e.b2.Addr()) ||
			g.ClientBytes != c.bytes || g.BackendBytes != c.bytes {
			t.Errorf("connection %d = %+v, want main/app from %s with %d bytes each way", i, g, c.conn, c.bytes)
		}
		if g.Start.IsZero() || g.AgeSeconds < 0 || g.AgeSeconds > testTimeout.Seconds() {
			t.Errorf("connection %d: start %v, age %v s", i, g.Start, g.AgeSeconds)
		}
	}
	if got.Connections[0].Backend == got.Connections[1].Backend {
		t.Errorf("both connections on %s, want round robin over both backends", got.Connections[0].Backend)
	}
	if got.Connections[0].Start.After(got.Connections[1].Start) {
		t.Errorf("connections not oldest first: %+v", got.Connections)
	}

	var one connectionsReply
	e.getJSON("GET", "/api/v1/connections?limit=1", "", &one)
	if one.Count != 1 || len(one.Connections) != 1 || one.Connections[0].Client != c1.LocalAddr().String() {
		t.Errorf("limit=1: %+v, want the oldest, from %s", one, c1.LocalAddr())
	}
	for _, bad := range []string{"0", "-1", "abc", "10001", ""} {
		e.wantError("GET", "/api/v1/connections?limit="+bad, "", "", http.StatusBadRequest,
			fmt.Sprintf("limit %q: want an integer from 1 to 10000", bad))
	}
}

func TestToken(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "dashboard")
	})
	for _, protect := range []bool{false, true} {
		t.Run(fmt.Sprintf("ProtectMetrics=%v", protect), func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Token = "s3cret"
				c.ProtectMetrics = protect
				c.UI = ui
			})
			for _, path := range []string{"/api/v1/pools", "/api/v1/connections", "/api/v1/nothing"} {
				for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret2", "Basic czNjcmV0", "s3cret", "Bearer"} {
					resp := e.wantError("GET", path, "", auth, http.StatusUnauthorized, "missing or invalid bearer token")
					if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
						t.Errorf("GET %s with %q: WWW-Authenticate = %q, want Bearer", path, auth, h)
					}
				}
			}
			e.wantError("POST", "/api/v1/pools/app/backends/"+e.b1.Addr()+"/drain", "", "Bearer wrong", http.StatusUnauthorized, "bearer token")
			if st := e.b1.State().State; st != tcplb.StateUp {
				t.Errorf("an unauthorized drain changed the state to %v", st)
			}
			for _, auth := range []string{"Bearer s3cret", "bearer s3cret"} {
				if status, _ := e.doAuth("GET", "/api/v1/pools", "", auth); status != http.StatusOK {
					t.Errorf("GET /api/v1/pools with %q = %d %s, want 200", auth, status, e.lastBody)
				}
			}

			wantMetrics := http.StatusOK
			if protect {
				wantMetrics = http.StatusUnauthorized
			}
			if status, _ := e.doAuth("GET", "/metrics", "", ""); status != wantMetrics {
				t.Errorf("GET /metrics without token = %d, want %d", status, wantMetrics)
			}
			if status, _ := e.doAuth("GET", "/metrics", "", "Bearer s3cret"); status != http.StatusOK {
				t.Errorf("GET /metrics with token = %d, want 200", status)
			}

			if status, _ := e.doAuth("GET", "/", "", ""); status != http.StatusOK || string(e.lastBody) != "dashboard" {
				t.Errorf("GET / without token = %d %q, want 200 from the UI", status, e.lastBody)
			}
		})
	}
}

// TestNilComponents checks that a listener or pool not yet built is left
// out rather than failing a scrape.
func TestNilComponents(t *testing.T) {
	srv := httptest.NewServer(New(Config{Listeners: []Listener{{Name: "main", Pool: "app"}}, Pools: []Pool{{Strategy: "random"}}}))
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.Timeout = testTimeout
	for _, path := range []string{"/metrics", "/api/v1/pools", "/api/v1/connections"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d %s, want 200", path, resp.StatusCode, body)
		}
	}
}
