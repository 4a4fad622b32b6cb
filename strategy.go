package tcplb

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Strategy chooses the backend for a new connection.
//
// Pick is given the client's address and the backends available now (healthy,
// not draining, not yet tried for this connection) and returns one of them,
// or nil to refuse the connection. The contract:
//
//   - Pick is called concurrently from many goroutines and must be safe for
//     that.
//   - Pick must not block and must not do I/O: it runs on the accept path of
//     every connection.
//   - Pick must return an element of backends or nil. It must not modify
//     the slice or keep it beyond the call except as read-only state keyed
//     by its identity: the balancer never modifies a slice it has passed.
//   - backends may be empty; Pick then returns nil.
//
// A backend's Addr, Weight and Active are the inputs a strategy usually
// needs; each is one atomic load.
type Strategy interface {
	Pick(client netip.AddrPort, backends []*Backend) *Backend
}

// StrategyFunc adapts a function to the Strategy interface.
type StrategyFunc func(client netip.AddrPort, backends []*Backend) *Backend

// Pick calls f(client, backends).
func (f StrategyFunc) Pick(client netip.AddrPort, backends []*Backend) *Backend {
	return f(client, backends)
}

// DefaultStrategy is the name of the strategy used when none is given.
const DefaultStrategy = "round-robin"

var registry = struct {
	sync.RWMutex
	m map[string]func() Strategy
}{m: map[string]func() Strategy{}}

// RegisterStrategy makes a strategy available by name to NewStrategy and so
// to the daemon's configuration. newStrategy is called once per pool, so a
// strategy may keep per-pool state. It panics if name is empty or already
// registered, as it is meant to be called from init functions.
func RegisterStrategy(name string, newStrategy func() Strategy) {
	registry.Lock()
	defer registry.Unlock()
	if name == "" || newStrategy == nil {
		panic("tcplb: RegisterStrategy with empty name or nil constructor")
	}
	if _, dup := registry.m[name]; dup {
		panic("tcplb: RegisterStrategy called twice for " + name)
	}
	registry.m[name] = newStrategy
}

// NewStrategy returns a new instance of the strategy registered as name.
// An unknown name is an error that lists the known ones.
func NewStrategy(name string) (Strategy, error) {
	registry.RLock()
	newStrategy, ok := registry.m[name]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown strategy %q (known: %s)", name, strings.Join(StrategyNames(), ", "))
	}
	return newStrategy(), nil
}

// StrategyNames returns the registered strategy names, sorted.
func StrategyNames() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
