package tcplb

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// BenchmarkAccessLog measures one access-log line, which every connection
// pays for.
func BenchmarkAccessLog(b *testing.B) {
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{{"text", slog.NewTextHandler(io.Discard, nil)}, {"json", slog.NewJSONHandler(io.Discard, nil)}} {
		b.Run(h.name, func(b *testing.B) {
			be, _ := NewBackend("127.0.0.1:3001", 1)
			lb := &Balancer{Name: "main", Pool: NewPool("p", nil, be), AccessLog: slog.New(h.h)}
			client := &net.TCPConn{}
			pc := &proxyConn{lb: lb, client: remoteAddrConn{client}, backend: be, start: time.Now(), end: EndClientClosed}
			b.ReportAllocs()
			for b.Loop() {
				pc.log()
			}
		})
	}
}

type remoteAddrConn struct{ net.Conn }

func (remoteAddrConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
