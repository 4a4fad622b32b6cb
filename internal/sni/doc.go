// Package sni reads the server name (SNI) of a TLS connection from its
// ClientHello without terminating TLS, so that a TCP load balancer can route
// TLS connections by name and pass them through to a backend untouched.
//
// Typical usage, on a freshly accepted connection conn, with routes a
// *Table[*Pool] built from the configuration:
//
//	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
//	name, hello, err := sni.ReadServerName(conn, 16<<10+5)
//	conn.SetReadDeadline(time.Time{})
//	pool, ok := routes.Lookup(name)
//	switch {
//	case errors.Is(err, sni.ErrNotTLS), errors.Is(err, sni.ErrMalformed), errors.Is(err, sni.ErrTooLarge):
//		pool = defaultPool // or close; hello still holds every byte read
//	case err != nil:
//		conn.Close() // timeout or the client went away
//		return
//	case !ok:
//		pool = defaultPool
//	}
//	backendConn.Write(hello) // first, before anything else
//	// then splice conn <-> backendConn in both directions
//
// The ClientHello is parsed by crypto/tls, not by this package: see
// [ReadServerName] for how, and for what is and is not read.
//
// With TLS 1.3 Encrypted Client Hello (ECH), the name seen is the one in the
// outer ClientHello: the public name of the client-facing server, not the
// name the client really wants, which is encrypted. Routing on it sends every
// ECH connection for that public name to the same pool, whose servers must
// hold the ECH keys.
package sni
