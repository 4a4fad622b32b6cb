// Package admin serves tcplb's admin HTTP endpoints: Prometheus metrics,
// the JSON API and the dashboard.
//
// The handler that New returns serves
//
//	GET  /metrics                                         Prometheus text format
//	GET  /api/v1/pools                                    listeners, pools and backends
//	POST /api/v1/pools/{pool}/backends/{addr}/drain       take a backend out of service
//	POST /api/v1/pools/{pool}/backends/{addr}/enable      put it back
//	PUT  /api/v1/pools/{pool}/backends/{addr}/weight      body {"weight": N}, 1 to 256
//	GET  /api/v1/connections?limit=N                      open connections and UDP sessions, oldest first
//	     /                                                the dashboard (Config.UI)
//
// The API answers JSON, errors as {"error": "message"}. {addr} is a
// backend's address as configured, percent-encoded or not ("[::1]:3001" or
// "%5B%3A%3A1%5D%3A3001"). Metrics and API values are read from the
// library's counters when asked for: serving them adds nothing to the path
// of a connection.
package admin

import (
	"crypto/subtle"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tcplb/tcplb"
)

// Config says what the admin handler serves. New reads it once: to serve a
// changed configuration (after a reload), build a new handler with New;
// handlers share no state.
type Config struct {
	// Listeners are the daemon's balancers, reported in this order.
	Listeners []Listener

	// Pools are the daemon's pools, reported in this order. The API can
	// change only the backends of these pools.
	Pools []Pool

	// Token, if not empty, is required by every /api/ request as the
	// header "Authorization: Bearer <Token>"; a request without it, or
	// with another token, gets 401. If empty, the API is open (the daemon
	// refuses that on a non-loopback address).
	Token string

	// ProtectMetrics, if true, makes /metrics require the Token too. If
	// false (the default), /metrics is open, as Prometheus scrapers
	// expect.
	ProtectMetrics bool

	// Collectors are registered next to tcplb's own metrics and the
	// process and Go runtime collectors (the daemon's reload counters).
	Collectors []prometheus.Collector

	// UI serves the dashboard at "/" and every path not under /api/ or
	// /metrics, without a token: the page holds no data and asks for the
	// token when the API answers 401. If nil, those paths answer 404.
	UI http.Handler
}

// Listener is one of the daemon's balancers: a TCP one (Balancer) or a
// UDP one (UDP).
type Listener struct {
	Name     string             // the listener's unique name: the "listener" label and JSON "name"
	Pool     string             // the name of the pool it serves
	Balancer *tcplb.Balancer    // a TCP listener
	UDP      *tcplb.UDPBalancer // a UDP listener, if Balancer is nil; left out if both are nil
}

// Pool is one of the daemon's pools.
type Pool struct {
	Pool     *tcplb.Pool // its Name must be unique; the pool is left out if nil
	Strategy string      // the strategy's registered name, e.g. "round-robin"
}

// handler is what New returns: it authorizes, then routes.
type handler struct {
	listeners      []Listener
	pools          []Pool
	udpPools       map[string]bool // the pools UDP listeners serve, by name
	token          []byte
	protectMetrics bool
	ui             http.Handler
	mux            *http.ServeMux // /metrics and the API
}

// New returns the admin handler for c. It is safe for concurrent use.
// Listeners with neither balancer and Pools with a nil Pool are left out.
func New(c Config) http.Handler {
	h := &handler{
		listeners:      slices.DeleteFunc(slices.Clone(c.Listeners), func(l Listener) bool { return l.Balancer == nil && l.UDP == nil }),
		pools:          slices.DeleteFunc(slices.Clone(c.Pools), func(p Pool) bool { return p.Pool == nil }),
		token:          []byte(c.Token),
		protectMetrics: c.ProtectMetrics,
		ui:             c.UI,
		mux:            http.NewServeMux(),
	}
	h.udpPools = udpPools(h.listeners)
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		newCollector(h.listeners, h.pools),
	)
	reg.MustRegister(c.Collectors...)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	h.mux.HandleFunc("GET /api/v1/pools", h.listPools)
	h.mux.HandleFunc("POST /api/v1/pools/{pool}/backends/{addr}/drain", h.drain)
	h.mux.HandleFunc("POST /api/v1/pools/{pool}/backends/{addr}/enable", h.enable)
	h.mux.HandleFunc("PUT /api/v1/pools/{pool}/backends/{addr}/weight", h.setWeight)
	h.mux.HandleFunc("GET /api/v1/connections", h.listConnections)
	return h
}

// ServeHTTP sends paths under /api/ and /metrics, once authorized, to the
// mux, whose 404 and 405 answers it turns into JSON; it sends every other
// path to the UI.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := path.Clean("/" + r.URL.Path)
	api := p == "/api" || strings.HasPrefix(p, "/api/")
	if !api && p != "/metrics" {
		if h.ui == nil {
			writeError(w, http.StatusNotFound, "not found")
			return
		}
		h.ui.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if (api || h.protectMetrics) && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tcplb"`)
		writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
		return
	}
	if _, pattern := h.mux.Handler(r); pattern == "" {
		// No route: the mux would answer 404, or 405 with an Allow
		// header, in plain text. Keep its status and headers only.
		sw := &statusWriter{ResponseWriter: w}
		h.mux.ServeHTTP(sw, r)
		writeError(w, sw.status, strings.ToLower(http.StatusText(sw.status)))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the bearer token, or none is
// needed.
func (h *handler) authorized(r *http.Request) bool {
	if len(h.token) == 0 {
		return true
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), h.token) == 1
}

// pool returns the pool named name, or nil.
func (h *handler) pool(name string) *tcplb.Pool {
	for _, p := range h.pools {
		if p.Pool.Name() == name {
			return p.Pool
		}
	}
	return nil
}

// statusWriter records the status of an answer and drops its body.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) { w.status = status }

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
