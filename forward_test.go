package tcplb

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
)

// TestForwardWriteSizes sends random payloads written in chunks from 1 byte
// to 1 MiB, so both the small-read and the bulk paths of the copy loop run,
// and checks the echo byte for byte.
func TestForwardWriteSizes(t *testing.T) {
	tl := startLB(t, &Balancer{}, startBackend(t, echo))
	for _, size := range []int{1, 7, 64, 1500, 16 << 10, 64 << 10, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			total := max(256<<10, 4*size)
			if size == 1 {
				total = 4 << 10
			}
			payload := make([]byte, total)
			rand.Read(payload)
			c := dial(t, tl.addr)
			go func() {
				for off := 0; off < len(payload); off += size {
					if _, err := c.Write(payload[off:min(off+size, len(payload))]); err != nil {
						return
					}
				}
				c.CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("echo of %d bytes in %d-byte writes: got %d bytes, equal %v, err %v",
					len(payload), size, len(got), bytes.Equal(got, payload), err)
			}
		})
	}
}

// TestBackendHalfCloseClientKeepsSending: the backend closes its side first while the client
// keeps sending, and the client's later bytes and FIN still arrive.
func TestBackendHalfCloseClientKeepsSending(t *testing.T) {
	got := make(chan string, 1)
	tl := startLB(t, &Balancer{}, startBackend(t, func(c *net.TCPConn) {
		io.WriteString(c, "bye")
		c.CloseWrite() // the backend is done talking, but still reads
		b, _ := io.ReadAll(c)
		got <- string(b)
	}))
	c := dial(t, tl.addr)
	if b, err := io.ReadAll(c); err != nil || string(b) != "bye" {
		t.Fatalf("client read %q, %v; want %q then EOF", b, err, "bye")
	}
	io.WriteString(c, "after your FIN")
	c.CloseWrite()
	if s := <-got; s != "after your FIN" {
		t.Fatalf("backend read %q, want %q", s, "after your FIN")
	}
}

// Benchmarks of the whole forwarding path on loopback: a client, the
// balancer and an echo or sink backend in one process.

// lastBenchPool is the pool of the last benchLB.
var lastBenchPool *Pool

func benchLB(b *testing.B, engine Engine, serve func(*net.TCPConn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { serve(c.(*net.TCPConn)); c.Close() }()
		}
	}()
	be, _ := NewBackend(ln.Addr().String(), 1)
	lastBenchPool = NewPool("bench", nil, be)
	lb := &Balancer{Pool: lastBenchPool, Engine: engine, Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)}
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go lb.Serve(front)
	b.Cleanup(func() { lb.Close() })
	return front.Addr().String()
}

// smallEcho echoes through a 64-byte buffer, so the benchmarks' allocations
// are the balancer's, not a 32 KiB buffer per backend connection.
func smallEcho(c *net.TCPConn) {
	var buf [64]byte
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf[:])
	c.CloseWrite()
}

// BenchmarkConnectExchangeClose: dial, send 64 bytes, read the echo, close.
func BenchmarkConnectExchangeClose(b *testing.B) {
	for _, engine := range engines() {
		b.Run(engine.String(), func(b *testing.B) {
			connectExchangeClose(b, benchLB(b, engine, smallEcho))
		})
	}
}

// connectExchangeClose is the loop of the connect-exchange-close
// benchmarks: dial addr, send 64 bytes, read them back, close.
func connectExchangeClose(b *testing.B, addr string) {
	msg := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(msg)
		if _, err := io.ReadFull(c, msg); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkPingPong64: 64-byte request and echo on a kept connection.
func BenchmarkPingPong64(b *testing.B) {
	for _, engine := range engines() {
		b.Run(engine.String(), func(b *testing.B) {
			addr := benchLB(b, engine, smallEcho)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				c.Write(msg)
				if _, err := io.ReadFull(c, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBulkUpload: 256 KiB writes streamed to a sink; reports MB/s.
func BenchmarkBulkUpload(b *testing.B) {
	for _, engine := range engines() {
		b.Run(engine.String(), func(b *testing.B) {
			addr := benchLB(b, engine, func(c *net.TCPConn) { io.Copy(io.Discard, c) })
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			chunk := make([]byte, 256<<10)
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
