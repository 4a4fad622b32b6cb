package tcplb

import (
	"slices"
	"time"

	"github.com/tcplb/tcplb/internal/proxyproto"
)

// rejectReasons are the ends of connections that never reached a backend,
// counted by BalancerStats.Rejected.
var rejectReasons = [...]End{EndNoBackend, EndFull, EndConnectFailed,
	EndListenerFull, EndBadProxy, EndDenied, EndSourceLimit, EndRateLimited, EndNoRoute}

// proxyErrorReasons are the reasons a PROXY header is refused, counted by
// BalancerStats.ProxyErrors.
var proxyErrorReasons = [...]string{
	proxyproto.ReasonNotProxy, proxyproto.ReasonMalformed, proxyproto.ReasonTooLong,
	proxyproto.ReasonTruncated, proxyproto.ReasonVersion, proxyproto.ReasonCommand,
	proxyproto.ReasonFamily, proxyproto.ReasonTLV, proxyproto.ReasonTimeout, proxyproto.ReasonRead,
	reasonUntrusted,
}

func (lb *Balancer) countProxyError(reason string) {
	for i, r := range proxyErrorReasons {
		if r == reason {
			lb.proxyErrs[i].Add(1)
			return
		}
	}
}

func (lb *Balancer) countRejected(why End) {
	for i, r := range rejectReasons {
		if r == why {
			lb.rejected[i].Add(1)
		}
	}
}

// BalancerStats is a point-in-time copy of a balancer's counters.
type BalancerStats struct {
	Accepted uint64 // connections accepted since the balancer started
	Active   int    // connections open now
	// Rejected counts the accepted connections closed without reaching a
	// backend, by how they ended: EndNoBackend, EndFull, EndConnectFailed,
	// and Edge's EndListenerFull, EndBadProxy, EndDenied, EndSourceLimit,
	// EndRateLimited, EndNoRoute (each key is present).
	Rejected map[End]uint64
	// ProxyErrors counts refused PROXY headers by reason: the parser's
	// ("malformed", "timeout", ...) and "untrusted" (a header from a peer
	// not trusted). Each key is present.
	ProxyErrors map[string]uint64
	// Durations is the histogram of the lifetimes of the connections that
	// reached a backend, from accept to close.
	Durations HistogramSnapshot
}

// Stats returns the balancer's counters.
func (lb *Balancer) Stats() BalancerStats {
	s := BalancerStats{
		Accepted:  lb.accepted.Load(),
		Active:    lb.ActiveConns(),
		Rejected:  make(map[End]uint64, len(rejectReasons)),
		Durations: lb.durations.snapshot(),
	}
	for i, r := range rejectReasons {
		s.Rejected[r] = lb.rejected[i].Load()
	}
	s.ProxyErrors = make(map[string]uint64, len(proxyErrorReasons))
	for i, r := range proxyErrorReasons {
		s.ProxyErrors[r] = lb.proxyErrs[i].Load()
	}
	return s
}

// ConnInfo describes one open connection.
type ConnInfo struct {
	Client       string    // the client's address
	Backend      string    // the backend's address; empty while dialling
	Start        time.Time // when it was accepted
	ClientBytes  int64     // from the client to the backend so far
	BackendBytes int64     // from the backend to the client so far
}

// Connections returns up to limit of the open connections, oldest first;
// limit <= 0 means all. Byte counts are as of the last chunk moved.
func (lb *Balancer) Connections(limit int) []ConnInfo {
	lb.init()
	lb.mu.Lock()
	out := make([]ConnInfo, 0, len(lb.conns))
	for c := range lb.conns {
		out = append(out, c.info())
	}
	lb.mu.Unlock()
	slices.SortFunc(out, func(a, b ConnInfo) int { return a.Start.Compare(b.Start) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
