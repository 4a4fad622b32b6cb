package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/tcplb/tcplb"
)

// The JSON API. Every answer is a JSON object; errors are {"error": "..."}.

// Limits of GET /api/v1/connections?limit=N.
const (
	defaultConnLimit = 100
	maxConnLimit     = 10000
)

// maxBody bounds a request body.
const maxBody = 4 << 10

type poolsReply struct {
	Time      time.Time      `json:"time"`
	Listeners []listenerJSON `json:"listeners"`
	Pools     []poolJSON     `json:"pools"`
}

// listenerJSON is a listener in the pools answer. For a UDP listener,
// active and accepted count sessions (open now; opened), rejected counts
// dropped datagrams by tcplb.UDPDropReasons, and the datagram and byte
// counters are set.
type listenerJSON struct {
	Name     string            `json:"name"`
	Pool     string            `json:"pool"`
	Protocol string            `json:"protocol"` // tcp or udp
	Active   int               `json:"active"`
	Accepted uint64            `json:"accepted"`
	Rejected map[string]uint64 `json:"rejected"` // keyed by rejectLabels (tcp) or tcplb.UDPDropReasons (udp)

	// UDP only (absent for TCP, present from 0 for UDP).
	DatagramsIn  *uint64 `json:"datagrams_in,omitempty"`  // from clients
	DatagramsOut *uint64 `json:"datagrams_out,omitempty"` // replies to clients
	BytesIn      *uint64 `json:"bytes_in,omitempty"`
	BytesOut     *uint64 `json:"bytes_out,omitempty"`
}

type poolJSON struct {
	Name      string        `json:"name"`
	Strategy  string        `json:"strategy"`
	Available int           `json:"available"`
	Backends  []backendJSON `json:"backends"`
}

type backendJSON struct {
	Addr          string    `json:"addr"`
	Weight        int       `json:"weight"`
	MaxConns      int64     `json:"max_conns"` // 0: no limit
	State         string    `json:"state"`     // up, down, draining, ejected
	Reason        string    `json:"reason"`    // "" when up
	Since         time.Time `json:"since"`
	Ramp          float64   `json:"ramp"` // share of its weight while slow-starting; 1 otherwise
	Active        int64     `json:"active"`
	Total         uint64    `json:"total"`
	ConnectErrors uint64    `json:"connect_errors"`
	BytesIn       uint64    `json:"bytes_in"`  // from the backend
	BytesOut      uint64    `json:"bytes_out"` // to the backend

	// The backend's datagrams (in: replies from it; out: to it), only in
	// the pools that UDP listeners serve.
	DatagramsIn  *uint64 `json:"datagrams_in,omitempty"`
	DatagramsOut *uint64 `json:"datagrams_out,omitempty"`
}

type connectionsReply struct {
	Connections []connJSON `json:"connections"`
	Count       int        `json:"count"`
}

// connJSON is an open TCP connection or UDP session.
type connJSON struct {
	Listener     string    `json:"listener"`
	Protocol     string    `json:"protocol"` // tcp or udp
	Pool         string    `json:"pool"`
	Client       string    `json:"client"`
	Backend      string    `json:"backend"` // "" while dialling
	Start        time.Time `json:"start"`   // UDP: the session's first datagram
	AgeSeconds   float64   `json:"age_seconds"`
	ClientBytes  int64     `json:"client_bytes"`
	BackendBytes int64     `json:"backend_bytes"`

	// A UDP session's datagrams (from the client; replies to it).
	ClientDatagrams  *uint64 `json:"client_datagrams,omitempty"`
	BackendDatagrams *uint64 `json:"backend_datagrams,omitempty"`
}

func backendInfo(b *tcplb.Backend) backendJSON {
	s, st := b.Stats(), b.State()
	return backendJSON{
		Addr:          b.Addr(),
		Weight:        b.Weight(),
		MaxConns:      b.MaxConns(),
		State:         st.State.String(),
		Reason:        st.Reason,
		Since:         st.Since,
		Ramp:          st.Ramp,
		Active:        s.Active,
		Total:         s.Total,
		ConnectErrors: s.ConnectErrors,
		BytesIn:       s.BytesIn,
		BytesOut:      s.BytesOut,
	}
}

// listPools serves GET /api/v1/pools.
func (h *handler) listPools(w http.ResponseWriter, r *http.Request) {
	reply := poolsReply{
		Time:      time.Now(),
		Listeners: make([]listenerJSON, 0, len(h.listeners)),
		Pools:     make([]poolJSON, 0, len(h.pools)),
	}
	for _, l := range h.listeners {
		if l.UDP != nil {
			s := l.UDP.Stats()
			reply.Listeners = append(reply.Listeners, listenerJSON{
				Name: l.Name, Pool: l.Pool, Protocol: "udp", Active: int(s.Active), Accepted: uint64(s.Total), Rejected: s.Dropped,
				DatagramsIn: &s.DatagramsIn, DatagramsOut: &s.DatagramsOut, BytesIn: &s.BytesIn, BytesOut: &s.BytesOut,
			})
			continue
		}
		s := l.Balancer.Stats()
		rejected := make(map[string]uint64, len(rejectLabels))
		for _, r := range rejectLabels {
			rejected[r.label] = s.Rejected[r.end]
		}
		reply.Listeners = append(reply.Listeners, listenerJSON{
			Name: l.Name, Pool: l.Pool, Protocol: "tcp", Active: s.Active, Accepted: s.Accepted, Rejected: rejected,
		})
	}
	for _, p := range h.pools {
		backends := p.Pool.Backends()
		pj := poolJSON{
			Name:      p.Pool.Name(),
			Strategy:  p.Strategy,
			Available: len(p.Pool.Available()),
			Backends:  make([]backendJSON, 0, len(backends)),
		}
		udp := h.udpPools[pj.Name]
		for _, b := range backends {
			bj := backendInfo(b)
			if udp {
				in, out := b.Datagrams()
				bj.DatagramsIn, bj.DatagramsOut = &in, &out
			}
			pj.Backends = append(pj.Backends, bj)
		}
		reply.Pools = append(reply.Pools, pj)
	}
	writeJSON(w, http.StatusOK, reply)
}

// drain serves POST /api/v1/pools/{pool}/backends/{addr}/drain.
func (h *handler) drain(w http.ResponseWriter, r *http.Request) {
	h.changeBackend(w, r, (*tcplb.Pool).Drain)
}

// enable serves POST /api/v1/pools/{pool}/backends/{addr}/enable.
func (h *handler) enable(w http.ResponseWriter, r *http.Request) {
	h.changeBackend(w, r, (*tcplb.Pool).Enable)
}

// setWeight serves PUT /api/v1/pools/{pool}/backends/{addr}/weight with
// the body {"weight": N}.
func (h *handler) setWeight(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Weight *int `json:"weight"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if body.Weight == nil {
		writeError(w, http.StatusBadRequest, `request body: missing "weight"`)
		return
	}
	h.changeBackend(w, r, func(p *tcplb.Pool, addr string) error {
		return p.SetWeight(addr, *body.Weight)
	})
}

// changeBackend applies change to the backend the path names and answers
// with the backend as it is afterwards.
func (h *handler) changeBackend(w http.ResponseWriter, r *http.Request, change func(p *tcplb.Pool, addr string) error) {
	name, addr := r.PathValue("pool"), r.PathValue("addr")
	pool := h.pool(name)
	if pool == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("pool %q: no such pool", name))
		return
	}
	if err := change(pool, addr); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, tcplb.ErrUnknownBackend) {
			status = http.StatusNotFound
		}
		writeError(w, status, err.Error())
		return
	}
	b := pool.Backend(addr)
	if b == nil { // removed by a reload since
		writeError(w, http.StatusNotFound, fmt.Sprintf("pool %s: %s: %v", name, addr, tcplb.ErrUnknownBackend))
		return
	}
	writeJSON(w, http.StatusOK, backendInfo(b))
}

// listConnections serves GET /api/v1/connections?limit=N: the oldest
// open connections of every listener, at most limit.
func (h *handler) listConnections(w http.ResponseWriter, r *http.Request) {
	limit := defaultConnLimit
	if q := r.URL.Query(); q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxConnLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want an integer from 1 to %d", q.Get("limit"), maxConnLimit))
			return
		}
		limit = n
	}
	now := time.Now()
	conns := []connJSON{}
	for _, l := range h.listeners {
		if l.UDP != nil {
			for _, s := range l.UDP.Sessions(limit) {
				conns = append(conns, connJSON{
					Listener: l.Name, Protocol: "udp", Pool: l.Pool,
					Client: s.Client, Backend: s.Backend,
					Start: s.Start, AgeSeconds: now.Sub(s.Start).Seconds(),
					ClientBytes: int64(s.ClientBytes), BackendBytes: int64(s.BackendBytes),
					ClientDatagrams: &s.ClientDatagrams, BackendDatagrams: &s.BackendDatagrams,
				})
			}
		}
		if l.Balancer == nil {
			continue
		}
		for _, c := range l.Balancer.Connections(limit) {
			conns = append(conns, connJSON{
				Listener:     l.Name,
				Protocol:     "tcp",
				Pool:         l.Pool,
				Client:       c.Client,
				Backend:      c.Backend,
				Start:        c.Start,
				AgeSeconds:   now.Sub(c.Start).Seconds(),
				ClientBytes:  c.ClientBytes,
				BackendBytes: c.BackendBytes,
			})
		}
	}
	slices.SortStableFunc(conns, func(a, b connJSON) int { return a.Start.Compare(b.Start) })
	conns = conns[:min(len(conns), limit)]
	writeJSON(w, http.StatusOK, connectionsReply{Connections: conns, Count: len(conns)})
}

// decodeBody decodes r's JSON body, of at most maxBody bytes and no
// unknown fields, into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		switch _, err = dec.Token(); err {
		case io.EOF:
			err = nil
		case nil:
			err = errors.New("more than one JSON value")
		}
	}
	if errors.As(err, new(*http.MaxBytesError)) {
		err = fmt.Errorf("longer than %d bytes", maxBody)
	}
	if err != nil {
		return fmt.Errorf("request body: %v", err)
	}
	return nil
}

// writeJSON writes v as the JSON answer, with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // an error here is the client's connection failing
}

// writeError writes the JSON error answer {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
