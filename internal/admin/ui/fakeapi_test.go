package ui_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// fakeAPI is a small, stateful stand-in for the JSON API of package admin,
// with the same shape: GET /api/v1/pools and POST
// /api/v1/pools/{pool}/backends/{addr}/{drain,enable}. Every GET advances the
// counters, so the page has something to compute rates from; drain and enable
// flip the state. It records every request it sees.
type fakeAPI struct {
	mu        sync.Mutex
	token     string        // if set, every call needs "Authorization: Bearer token"
	fail      string        // if set, GET /api/v1/pools answers 503 with this error
	actionErr string        // if set, drain and enable answer 409 with this error
	gate      chan struct{} // if set, drain and enable wait until it is closed
	gets      int
	listeners []*fakeListener
	pools     []*fakePool
	requests  []apiRequest
	mux       *http.ServeMux
}

// apiRequest is one request that the fake API saw.
type apiRequest struct {
	Method string
	URI    string // as sent, still percent-encoded
	Auth   string // the Authorization header
}

type fakeListener struct {
	Name         string         `json:"name"`
	Pool         string         `json:"pool"`
	Protocol     string         `json:"protocol"`
	Active       int64          `json:"active"`
	Accepted     int64          `json:"accepted"`
	Rejected     map[string]int `json:"rejected"`
	DatagramsIn  int64          `json:"datagrams_in,omitempty"`
	DatagramsOut int64          `json:"datagrams_out,omitempty"`
}

type fakePool struct {
	Name      string         `json:"name"`
	Strategy  string         `json:"strategy"`
	Available int            `json:"available"`
	Backends  []*fakeBackend `json:"backends"`
}

type fakeBackend struct {
	Addr          string    `json:"addr"`
	Weight        int       `json:"weight"`
	MaxConns      int       `json:"max_conns"`
	State         string    `json:"state"`
	Reason        string    `json:"reason"`
	Since         time.Time `json:"since"`
	Ramp          float64   `json:"ramp"`
	Active        int64     `json:"active"`
	Total         int64     `json:"total"`
	ConnectErrors int64     `json:"connect_errors"`
	BytesIn       int64     `json:"bytes_in"`
	BytesOut      int64     `json:"bytes_out"`
	DatagramsIn   *int64    `json:"datagrams_in,omitempty"`  // a UDP pool's backend
	DatagramsOut  *int64    `json:"datagrams_out,omitempty"` // a UDP pool's backend

	perPoll int64 // new connections per GET while up
	base    int64 // active connections around which it moves
}

// wantStates is the state of every backend of newFakeAPI, by pool and address.
var wantStates = map[[2]string]string{
	{"app", "127.0.0.1:3001"}:       "up",
	{"app", "[::1]:3002"}:           "up",
	{"app", "127.0.0.1:3003"}:       "up",
	{"app", "127.0.0.1:3004"}:       "down",
	{"db", "127.0.0.1:5432"}:        "up",
	{"db", "127.0.0.1:5433"}:        "ejected",
	{"db", "127.0.0.1:5434"}:        "draining",
	{"resolvers", "127.0.0.1:5353"}: "up",
}

// newFakeAPI returns a fake with two pools whose backends are in every state.
func newFakeAPI() *fakeAPI {
	now := time.Now().UTC()
	f := &fakeAPI{
		listeners: []*fakeListener{
			{Name: "main", Pool: "app", Rejected: map[string]int{"no_backend": 0, "backends_full": 0, "connect_failed": 1}},
			{Name: "postgres", Pool: "db", Rejected: map[string]int{"no_backend": 0, "backends_full": 2, "connect_failed": 0}},
			{Name: "dns", Pool: "resolvers", Protocol: "udp", Active: 7, Accepted: 1234, DatagramsIn: 2500, DatagramsOut: 2400,
				Rejected: map[string]int{"no_backend": 0, "max_sessions": 3, "too_large": 1, "denied": 0, "send_failed": 0}},
		},
		pools: []*fakePool{
			{Name: "app", Strategy: "round-robin", Backends: []*fakeBackend{
				{Addr: "127.0.0.1:3001", Weight: 1, State: "up", Since: now.Add(-3 * time.Hour), Ramp: 1, Total: 120, perPoll: 14, base: 9, BytesIn: 123, BytesOut: 456},
				{Addr: "[::1]:3002", Weight: 1, State: "up", Since: now.Add(-42 * time.Minute), Ramp: 1, Total: 80, perPoll: 9, base: 6},
				{Addr: "127.0.0.1:3003", Weight: 2, State: "up", Since: now.Add(-8 * time.Second), Ramp: 0.4, perPoll: 3, base: 1},
				{Addr: "127.0.0.1:3004", Weight: 1, State: "down", Reason: "health check: dial tcp 127.0.0.1:3004: connection refused", Since: now.Add(-5 * time.Minute), Ramp: 1, Total: 40, ConnectErrors: 3},
			}},
			{Name: "db", Strategy: "least-conn", Backends: []*fakeBackend{
				{Addr: "127.0.0.1:5432", Weight: 1, MaxConns: 100, State: "up", Since: now.Add(-26 * time.Hour), Ramp: 1, Total: 9000, perPoll: 4, base: 61},
				{Addr: "127.0.0.1:5433", Weight: 1, MaxConns: 100, State: "ejected", Reason: "5 connect errors in 10s", Since: now.Add(-90 * time.Second), Ramp: 1, Total: 700, ConnectErrors: 5},
				{Addr: "127.0.0.1:5434", Weight: 1, MaxConns: 100, State: "draining", Reason: "drained by operator", Since: now.Add(-12 * time.Minute), Ramp: 1, Total: 3100, Active: 4},
			}},
			{Name: "resolvers", Strategy: "hash", Backends: []*fakeBackend{
				{Addr: "127.0.0.1:5353", Weight: 1, State: "up", Since: now.Add(-time.Hour), Ramp: 1, Total: 500, perPoll: 20, base: 7,
					DatagramsIn: new(int64(2400)), DatagramsOut: new(int64(2500))},
			}},
		},
	}
	f.mux = http.NewServeMux()
	f.mux.HandleFunc("GET /api/v1/pools", f.getPools)
	f.mux.HandleFunc("POST /api/v1/pools/{pool}/backends/{addr}/{action}", f.postAction)
	return f
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, apiRequest{Method: r.Method, URI: r.RequestURI, Auth: r.Header.Get("Authorization")})
	token := f.token
	f.mu.Unlock()
	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
		return
	}
	f.mux.ServeHTTP(w, r)
}

func (f *fakeAPI) getPools(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": f.fail})
		return
	}
	f.gets++
	g := int64(f.gets)
	for i, p := range f.pools {
		p.Available = 0
		var active, accepted int64
		for j, b := range p.Backends {
			switch b.State {
			case "up":
				p.Available++
				n := b.perPoll + (g*int64(3+j))%5 // vary a little from poll to poll
				b.Total += n
				b.BytesIn += n * (900 + (g*37)%400)
				b.BytesOut += n * (21000 + (g*1301)%9000)
				b.Active = b.base + g%4
				if b.DatagramsIn != nil { // two datagrams each way per session
					*b.DatagramsIn += 2 * n
					*b.DatagramsOut += 2 * n
				}
				if b.Ramp < 1 {
					b.Ramp = min(1, b.Ramp+0.02)
				}
				accepted += n
			case "draining":
				b.Active = max(0, b.Active-1)
			default:
				b.Active = 0
			}
			active += b.Active
		}
		if i < len(f.listeners) && f.listeners[i].Protocol != "udp" {
			l := f.listeners[i]
			l.Active, l.Accepted = active, l.Accepted+accepted
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"time":      time.Now().UTC().Format(time.RFC3339Nano),
		"listeners": f.listeners,
		"pools":     f.pools,
	})
}

func (f *fakeAPI) postAction(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.actionErr != "" {
		writeJSON(w, http.StatusConflict, map[string]string{"error": f.actionErr})
		return
	}
	b := f.backend(r.PathValue("pool"), r.PathValue("addr"))
	if b == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no backend " + r.PathValue("addr") + " in pool " + r.PathValue("pool")})
		return
	}
	switch r.PathValue("action") {
	case "drain":
		b.State, b.Reason = "draining", "drained by operator"
	case "enable":
		b.State, b.Reason = "up", ""
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action"})
		return
	}
	b.Since = time.Now().UTC()
	writeJSON(w, http.StatusOK, b)
}

func (f *fakeAPI) backend(pool, addr string) *fakeBackend {
	for _, p := range f.pools {
		if p.Name != pool {
			continue
		}
		for _, b := range p.Backends {
			if b.Addr == addr {
				return b
			}
		}
	}
	return nil
}

// state returns the state of a backend, or "" if there is none.
func (f *fakeAPI) state(pool, addr string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b := f.backend(pool, addr); b != nil {
		return b.State
	}
	return ""
}

// set runs fn with the fake locked, to change its configuration.
func (f *fakeAPI) set(fn func(f *fakeAPI)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// apiRequests returns the requests seen so far whose URI starts with prefix.
func (f *fakeAPI) apiRequests(prefix string) []apiRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apiRequest
	for _, r := range f.requests {
		if strings.HasPrefix(r.URI, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
