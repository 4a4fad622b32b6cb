package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/tcplb/tcplb/internal/config"
)

// demoAddrs are where -demo starts its backends: the default backends.
var demoAddrs = []string{"127.0.0.1:3001", "127.0.0.1:3002", "127.0.0.1:3003"}

// demoIdle closes a demo connection that has been silent this long, so a
// forgotten nc session does not hold it for ever.
const demoIdle = 10 * time.Minute

// demo is the set of backends started by -demo. Each greets a new
// connection with a line naming itself, then echoes what it receives; on
// UDP each answers a datagram with a line naming itself and the datagram.
type demo struct {
	listeners []net.Listener
	udp       []*net.UDPConn
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closed    bool
}

func startDemo(log *slog.Logger) (*demo, error) {
	d := &demo{conns: map[net.Conn]struct{}{}}
	for _, addr := range demoAddrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("demo backend %s: %v (is another tcplb -demo running?)", addr, err)
		}
		d.listeners = append(d.listeners, ln)
		ua, err := net.ResolveUDPAddr("udp", addr)
		var pc *net.UDPConn
		if err == nil {
			pc, err = net.ListenUDP("udp", ua)
		}
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("demo backend %s/udp: %v (is another tcplb -demo running?)", addr, err)
		}
		d.udp = append(d.udp, pc)
	}
	for _, ln := range d.listeners {
		d.wg.Go(func() { d.serve(ln) })
	}
	for _, pc := range d.udp {
		d.wg.Go(func() { serveUDPDemo(pc) })
	}
	log.Info("demo backends started (TCP and UDP); try: nc 127.0.0.1 8080, and nc -u 127.0.0.1 8080", "addrs", demoAddrs)
	return d, nil
}

// demoUDPListener adds to a configuration made from the flags a UDP
// listener on the TCP listener's address, over the same backends (the
// demo's UDP side), with a pool of its own: a pool serves one protocol.
func demoUDPListener(cfg *config.Config) {
	d := config.Default()
	l, p := d.Listeners[0], d.Pools[0]
	p.Name, p.Strategy, p.Backends = "default-udp", cfg.Pools[0].Strategy, cfg.Pools[0].Backends
	l.Name, l.Pool, l.Listen = "main-udp", p.Name, cfg.Listeners[0].Listen
	l.Protocol, l.MaxDatagram = config.ProtocolUDP, config.DefaultMaxDatagram
	cfg.Listeners = append(cfg.Listeners, l)
	cfg.Pools = append(cfg.Pools, p)
}

// serveUDPDemo answers each datagram with "demo backend ADDR got: " and
// the datagram, until the socket is closed.
func serveUDPDemo(pc *net.UDPConn) {
	buf := make([]byte, 65535)
	prefix := fmt.Sprintf("demo backend %s got: ", pc.LocalAddr())
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // an ICMP error from an earlier reply's client
		}
		pc.WriteToUDPAddrPort(append([]byte(prefix), buf[:n]...), from)
	}
}

func (d *demo) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // out of descriptors: do not spin
			continue
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			c.Close()
			return
		}
		d.conns[c] = struct{}{}
		d.mu.Unlock()
		d.wg.Go(func() {
			defer func() {
				d.mu.Lock()
				delete(d.conns, c)
				d.mu.Unlock()
				c.Close()
			}()
			fmt.Fprintf(c, "hello from demo backend %s\n", ln.Addr())
			buf := make([]byte, 4096)
			for {
				c.SetReadDeadline(time.Now().Add(demoIdle))
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					if err == io.EOF {
						c.(*net.TCPConn).CloseWrite()
					}
					return
				}
			}
		})
	}
}

// Close stops the demo backends, closes their connections and waits for
// their goroutines to return.
func (d *demo) Close() {
	for _, ln := range d.listeners {
		ln.Close()
	}
	for _, pc := range d.udp {
		pc.Close()
	}
	d.mu.Lock()
	d.closed = true
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}
