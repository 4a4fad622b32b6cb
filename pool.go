package tcplb

import "sync/atomic"

// Pool is a named set of backends and the strategy that chooses among them.
// Several balancers (listeners) may share one pool, and with it the
// backends' connection counts.
//
// The backend set is an immutable snapshot swapped atomically: Backends is
// one atomic load, and SetBackends publishes a new set that the next pick
// sees. All methods are safe for concurrent use.
type Pool struct {
	name     string
	strategy Strategy
	backends atomic.Pointer[[]*Backend]
}

// NewPool returns a pool named name that picks among backends with
// strategy; a nil strategy means round robin.
func NewPool(name string, strategy Strategy, backends ...*Backend) *Pool {
	if strategy == nil {
		strategy = NewRoundRobin()
	}
	p := &Pool{name: name, strategy: strategy}
	p.SetBackends(backends)
	return p
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Strategy returns the pool's strategy.
func (p *Pool) Strategy() Strategy { return p.strategy }

// Backends returns the current backend set. The caller must not modify it.
func (p *Pool) Backends() []*Backend { return *p.backends.Load() }

// SetBackends replaces the backend set; it copies backends. Connections
// already open to a backend that is no longer in the set are not affected.
func (p *Pool) SetBackends(backends []*Backend) {
	s := append([]*Backend(nil), backends...)
	p.backends.Store(&s)
}

// Backend returns the backend with the given address, or nil.
func (p *Pool) Backend(addr string) *Backend {
	for _, b := range p.Backends() {
		if b.addr == addr {
			return b
		}
	}
	return nil
}
