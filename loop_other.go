//go:build !linux

package tcplb

import (
	"errors"
	"net"
)

// SetEventLoops sets the number of event loops of EngineEpoll, which
// exists only on Linux: elsewhere it does nothing.
func SetEventLoops(n int) error {
	if n < 0 {
		return errors.New("tcplb: SetEventLoops: negative count")
	}
	return nil
}

// EventLoopConnections returns nil: the event loops are Linux-only.
func EventLoopConnections() []uint64 { return nil }

// serveLoop refuses: the event loops are Linux-only.
func (lb *Balancer) serveLoop(net.Listener) (bool, error) {
	return true, errors.New("tcplb: Balancer.Engine: epoll is Linux-only")
}
