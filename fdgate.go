package tcplb

import (
	"sync"
	"sync/atomic"
)

// fds is the process's descriptor gate: it counts the descriptors that
// connections hold (a client socket from accept, a backend socket from the
// dial, two per splice pipe) and tells the accept loops to pause before the
// process reaches its limit (RLIMIT_NOFILE), instead of accepting into
// EMFILE and backing off. The last fdReserve descriptors below the limit
// are kept for everything else: listeners, health checks, the admin
// listener, logs. Accepting resumes as soon as use is below the mark
// again; the pause is logged once, and again only after use has fallen
// below 90% of the mark in between. Where the limit is unknown (Windows) there is no gate; EMFILE still
// gets the accept loop's backoff.
var fds fdGate

type fdGate struct {
	inUse  atomic.Int64
	high   atomic.Int64 // pause at this many; 0: no gate
	paused atomic.Bool
	warned atomic.Bool // the pause has been logged

	mu   sync.Mutex
	wake chan struct{} // closed when use falls below the low mark
}

// fdReserve is what the gate leaves below the limit.
func fdReserve(limit int64) int64 { return 64 + limit/50 }

// setLimit sets the gate from the process's descriptor limit.
func (g *fdGate) setLimit(limit int64) {
	if limit <= 0 {
		g.high.Store(0)
		return
	}
	g.high.Store(max(limit-fdReserve(limit), 1))
}

func (g *fdGate) add(n int64) {
	v := g.inUse.Add(n)
	if n >= 0 {
		return
	}
	if g.warned.Load() && v < g.high.Load()*9/10 {
		g.warned.Store(false)
	}
	if g.paused.Load() && v < g.high.Load() {
		g.mu.Lock()
		if g.wake != nil {
			close(g.wake)
			g.wake = nil
		}
		g.paused.Store(false)
		g.mu.Unlock()
	}
}

// full returns a channel to wait on if use is at the mark, or nil.
func (g *fdGate) full() <-chan struct{} {
	high := g.high.Load()
	if high == 0 || g.inUse.Load() < high {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wake == nil {
		g.wake = make(chan struct{})
	}
	g.paused.Store(true)
	// A release between the load above and paused may not have woken us.
	if g.inUse.Load() < high {
		close(g.wake)
		g.wake = nil
		return nil
	}
	return g.wake
}
