package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// demoAddrs are where -demo starts its backends: the default backends.
var demoAddrs = []string{"127.0.0.1:3001", "127.0.0.1:3002", "127.0.0.1:3003"}

// demoIdle closes a demo connection that has been silent this long, so a
// forgotten nc session does not hold it for ever.
const demoIdle = 10 * time.Minute

// demo is the set of backends started by -demo. Each greets a new
// connection with a line naming itself, then echoes what it receives.
type demo struct {
	listeners []net.Listener
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
	}
	for _, ln := range d.listeners {
		d.wg.Go(func() { d.serve(ln) })
	}
	log.Info("demo backends started; try: nc 127.0.0.1 8080", "addrs", demoAddrs)
	return d, nil
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
	d.mu.Lock()
	d.closed = true
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}
