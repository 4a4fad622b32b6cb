// Package tcplb is a TCP (layer 4) load balancer.
//
// A [Balancer] accepts connections on a listener and forwards each one,
// bytes both ways with half-close passed through, to a [Backend] of its
// [Pool], chosen by the pool's [Strategy]. Typical usage:
//
//	a, _ := tcplb.NewBackend("10.0.0.1:5432", 1)
//	b, _ := tcplb.NewBackend("10.0.0.2:5432", 1)
//	lb := &tcplb.Balancer{Pool: tcplb.NewPool("db", nil, a, b)} // nil: round robin
//	ln, err := net.Listen("tcp", ":5432")
//	if err != nil {
//		log.Fatal(err)
//	}
//	go lb.Serve(ln)
//	...
//	lb.Shutdown(ctx) // stop accepting, let open connections finish
//
// A strategy is one method: given the client's address and the backends
// available now, pick one or none. Built-in strategies register a name
// ([RegisterStrategy]) and are made by [NewStrategy]; "round-robin" is the
// default. Any type with a Pick method is a strategy: see the example.
//
// # Forwarding
//
// On Linux the bytes move between the two sockets with splice(2) through a
// pooled pipe taken only while data flows, so they never enter user space
// and an idle connection holds only its two sockets. A FIN
// from either side becomes a CloseWrite on the other, and the connection is
// closed once both directions have ended. A read or write error on either
// side (a reset) closes both sides with a reset. A connection on which no
// byte moves for [Balancer.IdleTimeout] is closed. When a dial fails, the
// strategy is asked again among the backends not yet tried; when none is
// left the client is closed at once.
package tcplb
