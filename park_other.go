//go:build !linux

package tcplb

import (
	"errors"
	"net"
)

// Parking is Linux-only; elsewhere a quiet connection keeps its goroutines.
const parkAfter = 0

func canPark(a, b net.Conn) bool { return false }

func (d *direction) park() error { return errors.New("tcplb: parking not supported") }

func (d *direction) unpark() bool { return false }
