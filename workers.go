package tcplb

import (
	"sync"
	"time"
)

// Goroutines for connections are taken from a pool instead of started
// afresh. A new goroutine starts on a 2 KiB stack, and the dial path grows
// it twice: profiling the connrate benchmark showed the stack copies
// (runtime.copystack) at 8% of the proxy's CPU. A pooled goroutine keeps the
// stack it grew. Idle workers exit after workerIdle, and at most maxIdleWorkers
// wait at once, so a burst leaves nothing behind for long.
const (
	maxIdleWorkers = 128
	workerIdle     = 10 * time.Second
)

var workers workerPool

// workerPool runs functions on reused goroutines.
type workerPool struct {
	mu      sync.Mutex
	idle    []*worker // the most recently parked last
	janitor bool      // a goroutine is retiring idle workers
}

type worker struct {
	work   chan func()
	parked time.Time
}

// run calls f on a pooled goroutine, starting one if none is idle. It does
// not wait for f.
func (p *workerPool) run(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- f
		return
	}
	p.mu.Unlock()
	w := &worker{work: make(chan func(), 1)}
	go w.loop(p, f)
}

// loop runs f, then waits for more work until it is retired.
func (w *worker) loop(p *workerPool, f func()) {
	for f != nil {
		f()
		if !p.park(w) {
			return
		}
		f = <-w.work
	}
}

// park puts w on the idle list; it reports false if the list is full.
func (p *workerPool) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= maxIdleWorkers {
		return false
	}
	w.parked = time.Now()
	p.idle = append(p.idle, w)
	if !p.janitor {
		p.janitor = true
		time.AfterFunc(workerIdle, p.retire)
	}
	return true
}

// retire stops the workers that have been idle for workerIdle; they are at
// the front of the list. It runs again while idle workers remain.
func (p *workerPool) retire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cutoff := time.Now().Add(-workerIdle)
	n := 0
	for n < len(p.idle) && p.idle[n].parked.Before(cutoff) {
		p.idle[n].work <- nil
		n++
	}
	p.idle = append(p.idle[:0], p.idle[n:]...)
	if len(p.idle) == 0 {
		p.janitor = false
		return
	}
	time.AfterFunc(workerIdle, p.retire)
}
