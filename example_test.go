package tcplb_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/tcplb/tcplb"
)

// leastActive is a custom strategy: the backend with the fewest open
// connections, the first one on a tie.
func leastActive(_ netip.AddrPort, backends []*tcplb.Backend) *tcplb.Backend {
	var best *tcplb.Backend
	for _, b := range backends {
		if best == nil || b.Active() < best.Active() {
			best = b
		}
	}
	return best
}

// A custom strategy is a Pick function (or any type with a Pick method).
func ExampleStrategyFunc() {
	// A backend that greets, so we can see where we landed.
	backend, _ := net.Listen("tcp", "127.0.0.1:0")
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from the backend\n")
			c.Close()
		}
	}()

	b, _ := tcplb.NewBackend(backend.Addr().String(), 1)
	lb := &tcplb.Balancer{Pool: tcplb.NewPool("app", tcplb.StrategyFunc(leastActive), b)}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go lb.Serve(ln)
	defer lb.Close()

	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	reply, _ := io.ReadAll(c)
	fmt.Print(string(reply))
	// Output: hello from the backend
}

// Built-in strategies are made by name, as the daemon's configuration does.
func ExampleNewStrategy() {
	s, err := tcplb.NewStrategy("round-robin")
	fmt.Println(s != nil, err)
	_, err = tcplb.NewStrategy("no-such-strategy")
	fmt.Println(err)
	// Output:
	// true <nil>
	// unknown strategy "no-such-strategy" (known: hash, least-conn, least-latency, p2c, random, round-robin)
}

// The "hash" strategy sends a client address to the same backend every
// time, and in every process with the same backends. With a balance
// factor it also keeps each backend within that percentage of its share
// of the open connections.
func ExampleNewMaglev() {
	var backends []*tcplb.Backend
	for _, addr := range []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"} {
		b, _ := tcplb.NewBackend(addr, 1)
		backends = append(backends, b)
	}
	hash, _ := tcplb.NewMaglev(125) // at most 25% over the average
	for _, client := range []string{"192.0.2.1:50000", "192.0.2.1:50001", "192.0.2.3:50000"} {
		fmt.Println(client, "->", hash.Pick(netip.MustParseAddrPort(client), backends))
	}
	// Output:
	// 192.0.2.1:50000 -> 10.0.0.3:80
	// 192.0.2.1:50001 -> 10.0.0.3:80
	// 192.0.2.3:50000 -> 10.0.0.1:80
}

// A UDPBalancer balances datagrams over the same Pool and strategies; a
// client address is one session, and replies come back from the listener.
func ExampleUDPBalancer() {
	// A UDP backend that answers every datagram in upper case.
	backend, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer backend.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := backend.ReadFrom(buf)
			if err != nil {
				return
			}
			backend.WriteTo([]byte(strings.ToUpper(string(buf[:n]))), from)
		}
	}()

	b, _ := tcplb.NewBackend(backend.LocalAddr().String(), 1)
	s, _ := tcplb.NewStrategy("round-robin")
	lb := &tcplb.UDPBalancer{Pool: tcplb.NewPool("dns", s, b), Responses: 1}
	pc, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	go lb.Serve(pc)
	defer lb.Close()

	c, _ := net.Dial("udp", pc.LocalAddr().String())
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("hello over udp"))
	reply := make([]byte, 1500)
	n, _ := c.Read(reply)
	fmt.Println(string(reply[:n]))
	// Output: HELLO OVER UDP
}
