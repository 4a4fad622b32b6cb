package tcplb

import "net/netip"

func init() {
	RegisterStrategy("least-latency", func() Strategy { return NewLeastLatency() })
}

// LeastLatency is the "least-latency" strategy: power of two choices (see
// P2C) on a score that weighs each backend's latency by its load, as
// Finagle's and Linkerd's peak-EWMA balancers do:
//
//	score = latency · (1 + Active/Weight)
//
// which is latency·(Active+1) with weight 1. The latency is the backend's
// peak EWMA (see Backend.Latency) of the time from the start of a dial to
// the backend's first byte, so it covers connecting and the backend's time
// to answer. A sample above the estimate replaces it at once, so a backend
// that slows down loses traffic from its first slow answer; lower samples
// and time bring it down with time constant τ = DefaultLatencyDecay (10s).
// A slow backend gets no new connections while its estimate, decaying by a
// factor e every τ, stays above the others' scores; then it is tried again,
// and its next sample decides.
//
// A backend with no sample yet is given its rival's latency, so the two
// are compared by load alone: a new backend is tried as soon as it is no
// busier than the one it is drawn against, but is not flooded before its
// first answer. Ties go to the first candidate, drawn in proportion to
// weight, so with no samples and no load picks follow the weights.
//
// It suits backends that speak first or answer each connection's first
// request quickly, where time to first byte measures health and load; for
// protocols in which the backend sends nothing until the client has, it
// measures the client too. Connections on which the backend never sends a
// byte give no sample.
//
// Pick is lock-free and allocates nothing: two random numbers, an
// alias-table lookup, three atomic loads per candidate and at most one
// exponential. It reads no clock: both estimates are decayed to the later
// of their update times, which leaves their ratio as it would be now.
type LeastLatency struct {
	two twoChoices
}

// NewLeastLatency returns a least-latency strategy.
func NewLeastLatency() *LeastLatency { return &LeastLatency{} }

// Pick returns the backend with the lower score of two drawn at random, or
// nil if backends is empty.
func (l *LeastLatency) Pick(_ netip.AddrPort, backends []*Backend) *Backend {
	switch len(backends) {
	case 0:
		return nil
	case 1:
		return backends[0]
	}
	a, b := l.two.draw(backends)
	la, lb := compareLatency(a.latency.Load(), b.latency.Load())
	// la·(wa+activeA)/wa vs lb·(wb+activeB)/wb, cross-multiplied.
	wa, wb := float64(a.weight.Load()), float64(b.weight.Load())
	scoreA := la * (wa + float64(a.active.Load())) * wb
	scoreB := lb * (wb + float64(b.active.Load())) * wa
	if scoreB < scoreA {
		return b
	}
	return a
}
