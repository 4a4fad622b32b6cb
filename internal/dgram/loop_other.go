//go:build !linux

package dgram

import (
	"errors"
	"net"
)

func newLoop(*net.UDPConn, Config) (Proxy, error) {
	return nil, errors.New("dgram: the event loop needs Linux")
}
