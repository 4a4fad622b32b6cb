package tcplb

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tcplb/tcplb/internal/proxyproto"
	"github.com/tcplb/tcplb/internal/sni"
)

// This file is the part of a connection's life between accept and dial on
// a listener with an Edge: admit runs the checks, in the order Edge's doc
// gives, and may read the client's first bytes (a PROXY header, a TLS
// ClientHello), which it keeps in pc.pending for the backend.

// More ways a connection ends, all before a backend is dialled.
const (
	EndListenerFull End = "listener full"    // the balancer held Edge.MaxConns connections, for QueueTimeout if set
	EndBadProxy     End = "bad proxy header" // a trusted upstream sent no valid PROXY header in time, or an untrusted peer sent one
	EndDenied       End = "denied"           // the client address is denied, or not allowed
	EndSourceLimit  End = "source limit"     // the client address held Edge.MaxConnsPerSource connections
	EndRateLimited  End = "rate limited"     // the client address opened connections faster than Edge.RatePerSource
	EndNoRoute      End = "no sni route"     // no ClientHello, no server name or no route, with SNIRouting.Close
)

// admit runs e's checks on a new connection. It returns "" if the
// connection may go on (to pc.pool, which SNI routing may have changed), or
// the reason to close it and the error behind it, if any.
func (pc *proxyConn) admit(e *edgeState) (End, error) {
	lb := pc.lb
	if e.MaxConns > 0 {
		if !lb.acquireSlot(pc.s, e.MaxConns) {
			return EndListenerFull, nil
		}
		pc.heldSlot = true
	}
	if p := e.ProxyProtocol; p != nil {
		if inPrefixes(p.Trusted, pc.addr.Addr()) {
			if why, err := pc.readProxyHeader(e, p.Optional); why != "" {
				return why, err
			}
		} else if untrustedHeader(pc) {
			lb.countProxyError(reasonUntrusted)
			return EndBadProxy, errUntrustedHeader
		} else {
			pc.sniff = true // look again at the first bytes copied
		}
	}
	if why := lb.admitClient(e, pc.addr.Addr(), &pc.heldSource); why != "" {
		return why, nil
	}
	if e.SNI != nil {
		return pc.routeSNI(e)
	}
	return "", nil
}

// admitClient runs the checks of e on the client address a: the access
// lists, then the per-source limits, whose count it takes (heldSource).
func (lb *Balancer) admitClient(e *edgeState, a netip.Addr, heldSource *bool) End {
	if inPrefixes(e.Deny, a) || len(e.Allow) > 0 && !inPrefixes(e.Allow, a) {
		return EndDenied
	}
	if e.MaxConnsPerSource > 0 || e.RatePerSource > 0 {
		if why := lb.sources.acquire(a, e.MaxConnsPerSource, e.RatePerSource, e.burst, time.Now()); why != "" {
			return why
		}
		*heldSource = true
	}
	return ""
}

var errUntrustedHeader = errors.New("proxy protocol: header from a peer not in trusted")

// reasonUntrusted is the proxy-error reason for a header from an untrusted
// peer, next to the parser's reasons.
const reasonUntrusted = "untrusted"

var headerBufs = sync.Pool{New: func() any { b := make([]byte, proxyproto.MaxHeaderLen); return &b }}

// readProxyHeader reads a trusted upstream's header within its timeout and
// takes the client address from it. A LOCAL header (the upstream's own
// connection, such as a health check) keeps the peer's address, as the
// spec says.
func (pc *proxyConn) readProxyHeader(e *edgeState, optional bool) (End, error) {
	bp := headerBufs.Get().(*[]byte)
	defer headerBufs.Put(bp)
	pc.client.SetReadDeadline(time.Now().Add(e.proxyTimeout))
	defer pc.client.SetReadDeadline(time.Time{})
	h, rest, err := proxyproto.Read(pc.client, *bp)
	if pc.lb.proxyRefused(err, optional) {
		return EndBadProxy, err
	}
	pc.pending = append(pc.pending, rest...)
	if err == nil && !h.Local {
		pc.mu.Lock() // Connections reads addr
		pc.addr, pc.dest = h.Source, h.Dest
		pc.mu.Unlock()
	}
	return "", nil
}

// proxyRefused reports whether err, from proxyproto.Read, refuses the
// connection, and counts it by reason: any error but a missing header
// when the header is optional (rest then holds the client's first bytes).
func (lb *Balancer) proxyRefused(err error, optional bool) bool {
	var perr *proxyproto.Error
	switch {
	case err == nil:
		return false
	case optional && errors.As(err, &perr) && perr.Reason == proxyproto.ReasonNotProxy:
		return false
	case errors.As(err, &perr):
		lb.countProxyError(perr.Reason)
	default: // Read's errors are all *Error; this is defence
		lb.countProxyError(proxyproto.ReasonRead)
	}
	return true
}

// routeSNI reads the ClientHello within its timeout and picks the pool of
// the server name's route.
func (pc *proxyConn) routeSNI(e *edgeState) (End, error) {
	pc.client.SetReadDeadline(time.Now().Add(e.helloTimeout))
	defer pc.client.SetReadDeadline(time.Time{})
	var r io.Reader = pc.client
	if len(pc.pending) > 0 {
		r = io.MultiReader(bytes.NewReader(pc.pending), pc.client)
	}
	name, read, err := sni.ReadServerName(r, e.maxHello)
	pc.pending = read // it includes what was pending
	pool, why, err := e.route(name, err)
	if pool != nil {
		pc.pool = pool
	}
	return why, err
}

// route is SNI routing's decision for the server name (and the error)
// sni.ReadServerName returned: the route's pool, or nil to keep the
// listener's pool, or EndNoRoute with why when SNIRouting.Close.
func (e *edgeState) route(name string, err error) (*Pool, End, error) {
	if err == nil && name != "" {
		if pool, ok := e.sni.Lookup(name); ok {
			return pool, "", nil
		}
	}
	if e.SNI.Close {
		if err == nil {
			err = errors.New("no route for server name " + quoteName(name))
		}
		return nil, EndNoRoute, err
	}
	return nil, "", nil
}

func quoteName(name string) string {
	if name == "" {
		return "(none)"
	}
	return `"` + name + `"`
}

// acquireSlot takes one of the balancer's limit connection slots, waiting
// up to the queue timeout in arrival order when there is none.
func (lb *Balancer) acquireSlot(s *settings, limit int) bool {
	return lb.slotQueue.take(s.queue, lb.forceCtx.Done(), func() bool {
		return incrementBelow(&lb.slots, int64(limit))
	})
}

// releaseEdge gives back what admit took: the listener slot and the
// source's count.
func (pc *proxyConn) releaseEdge() {
	pc.lb.releaseEdge(&pc.heldSlot, &pc.heldSource, pc.addr.Addr())
}

// releaseEdge gives back a listener slot and a source's count, where the
// flags say they are held, and clears the flags.
func (lb *Balancer) releaseEdge(slot, source *bool, client netip.Addr) {
	if *slot {
		*slot = false
		lb.slots.Add(-1)
		lb.slotQueue.wakeOne()
	}
	if *source {
		*source = false
		lb.sources.release(client)
	}
}

// proxyHeader returns the PROXY header a pool sends for this connection,
// or nil: the client's address, and the address it connected to (the one
// a trusted upstream's header carried, or this listener's).
func (pc *proxyConn) proxyHeader(v ProxyVersion) []byte {
	if v == ProxyNone {
		return nil
	}
	dst := pc.dest
	if !dst.IsValid() {
		if a, ok := pc.client.LocalAddr().(*net.TCPAddr); ok {
			dst = a.AddrPort()
		}
	}
	return proxyHeader(v, pc.addr, dst)
}

// proxyHeader returns the header of version v (not ProxyNone) for a
// client src that connected to dst.
func proxyHeader(v ProxyVersion, src, dst netip.AddrPort) []byte {
	if !src.IsValid() || !dst.IsValid() {
		if v == ProxyV1 {
			return proxyproto.AppendV1Unknown(nil)
		}
		return proxyproto.AppendV2Local(nil)
	}
	if v == ProxyV1 {
		return proxyproto.AppendV1(nil, src, dst)
	}
	return proxyproto.AppendV2(nil, src, dst)
}

// ProxyVersion is the PROXY protocol version a pool sends to its backends.
type ProxyVersion int

// The PROXY protocol versions.
const (
	ProxyNone ProxyVersion = iota // send no header
	ProxyV1                       // the text header
	ProxyV2                       // the binary header
)

// looksLikeProxy reports whether b, a connection's first bytes, start a
// PROXY header, or could (fewer bytes than a signature, all matching).
func looksLikeProxy(b []byte) bool {
	for _, sig := range []string{"PROXY ", "\r\n\r\n\x00\r\nQUIT\n"} {
		n := min(len(b), len(sig))
		if n > 0 && string(b[:n]) == sig[:n] {
			return true
		}
	}
	return false
}
