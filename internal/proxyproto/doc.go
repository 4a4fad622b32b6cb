// Package proxyproto reads and writes HAProxy PROXY protocol headers,
// version 1 (text) and version 2 (binary), as specified in
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt.
//
// A proxy in front of tcplb sends one header at the start of each
// connection to say who the client really is; tcplb can send one to a
// backend for the same reason. Typical use on an accepted connection whose
// peer is a trusted upstream:
//
//	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
//	buf := make([]byte, proxyproto.MaxHeaderLen) // or one from a pool
//	h, rest, err := proxyproto.Read(conn, buf)
//	if err != nil {
//		var pe *proxyproto.Error
//		errors.As(err, &pe) // always true for errors from Read
//		headerErrors.WithLabelValues(pe.Reason).Inc()
//		conn.Close()
//		return
//	}
//	conn.SetReadDeadline(time.Time{})
//	src := conn.RemoteAddr().(*net.TCPAddr).AddrPort()
//	dst := conn.LocalAddr().(*net.TCPAddr).AddrPort()
//	if !h.Local {
//		src, dst = h.Source, h.Dest // the client, not the upstream proxy
//	}
//	// ... dial a backend, then:
//	backend.Write(proxyproto.AppendV2(nil, src, dst)) // if the pool sends headers
//	backend.Write(rest)                               // the client's first bytes
//
// # Strictness
//
// The receiver is strict, as the spec asks ("any sequence which does not
// exactly match the protocol must be discarded"), and does not guess: a
// connection whose first bytes are neither signature is refused with
// ReasonNotProxy rather than passed through.
//
//   - v1: "PROXY", one space, TCP4, TCP6 or UNKNOWN, then for TCP4 and TCP6
//     exactly four fields separated by single spaces and a CRLF. IPv4
//     addresses are dotted quads without leading zeros; IPv6 addresses
//     have no zone (a dotted IPv4 tail, as in "::ffff:1.2.3.4", is
//     accepted, as inet_pton does). Ports are decimal, 0 to 65535, without
//     sign or leading zeros. A TCP4 line must carry IPv4 addresses and a
//     TCP6 line IPv6 ones. A lone CR or LF is not a line end. After
//     UNKNOWN anything up to the CRLF is ignored, and the header is Local.
//   - v2: the 12-byte signature, version 2, command LOCAL or PROXY. LOCAL
//     ignores the family and skips the whole address block. PROXY accepts
//     TCP over IPv4 (0x11) or IPv6 (0x21), and AF_UNSPEC (0x00) and
//     AF_UNIX stream (0x31) as carrying no usable address (Local); datagram
//     families are refused, since tcplb proxies TCP, and so is any
//     combination the spec does not list. The length must cover the
//     family's address block, and what follows must be whole TLVs.
//
// # Bounds
//
// A v1 line is at most MaxV1Len (107) bytes, CRLF included, as the spec
// says. A v2 header is at most MaxHeaderLen (16+2048) bytes; see there for
// why. Read decides as soon as the bytes in hand allow it: the first byte
// that departs from both signatures ends it with ReasonNotProxy, and a
// v2 header with a bad version, command, family or length is refused as
// soon as that byte arrives, without waiting for the rest. It returns
// right after the Read call that completes the header, so it never
// consumes more than that call returned; those extra bytes, the client's
// first data, come back as rest. Given a buffer of MaxHeaderLen bytes,
// Read allocates nothing unless it fails; it starts no goroutines and
// never panics, whatever the input.
//
// # Why not github.com/pires/go-proxyproto
//
// That package is complete and widely used, but it does not fit here: it
// keeps a bufio.Reader in front of the connection, so bytes it read past
// the header are reachable only through its wrapper, which hides the
// *net.TCPConn tcplb splices; its sentinel errors fold distinct failures
// together (a v2 header cut short, one whose length is too short for its
// addresses, and a read timeout while waiting for its body all become
// ErrInvalidLength), where tcplb wants one metric label per reason and
// the deadline error intact; its only size bound is the bufio
// buffer's; and it allocates a Header and a TLV slice per connection.
// This package is small enough to own.
package proxyproto
