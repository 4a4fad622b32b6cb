package tcplb

import (
	"sync"
	"sync/atomic"
	"time"
)

// waitQueue holds, in arrival order, the clients waiting for a backend
// under its connection limit. A waiter is woken when a connection to a
// limited backend ends or the pool publishes a new snapshot; it then tries
// again, and goes back to the head of the queue if it still finds every
// backend full. While anyone waits, new clients join the tail instead of
// picking, so no newcomer takes a freed slot from a waiter.
type waitQueue struct {
	n       atomic.Int32 // len(waiters), read without mu on the connect path
	mu      sync.Mutex
	waiters []chan struct{}
}

// waiting reports whether any client waits.
func (q *waitQueue) waiting() bool { return q.n.Load() > 0 }

// add queues a new waiter, at the head if it has waited before; the
// channel is closed when it is its turn to try.
func (q *waitQueue) add(head bool) chan struct{} {
	ch := make(chan struct{})
	q.mu.Lock()
	defer q.mu.Unlock()
	if head {
		q.waiters = append([]chan struct{}{ch}, q.waiters...)
	} else {
		q.waiters = append(q.waiters, ch)
	}
	q.n.Store(int32(len(q.waiters)))
	return ch
}

// remove takes a waiter that gives up out of the queue. If it was woken
// meanwhile, its turn passes to the next waiter.
func (q *waitQueue) remove(ch chan struct{}) {
	q.mu.Lock()
	for i, w := range q.waiters {
		if w == ch {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			q.n.Store(int32(len(q.waiters)))
			q.mu.Unlock()
			return
		}
	}
	q.mu.Unlock()
	q.wakeOne()
}

// wakeOne gives the first waiter its turn.
func (q *waitQueue) wakeOne() {
	if !q.waiting() {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) == 0 {
		return
	}
	close(q.waiters[0])
	q.waiters[0] = nil
	q.waiters = q.waiters[1:]
	q.n.Store(int32(len(q.waiters)))
}

// take calls try until it succeeds, and reports whether it did: at once
// if nobody waits, then each time it is this caller's turn, for up to
// timeout or until stop is closed. With a timeout of 0 it tries once and
// does not wait. A caller that succeeds after waiting lets the next waiter
// look, since there may be more room.
func (q *waitQueue) take(timeout time.Duration, stop <-chan struct{}, try func() bool) bool {
	if timeout <= 0 {
		return try()
	}
	if !q.waiting() && try() {
		return true
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for head := false; ; head = true {
		turn := q.add(head)
		select {
		case <-turn:
		case <-timer.C:
			q.remove(turn)
			return false
		case <-stop:
			q.remove(turn)
			return false
		}
		if try() {
			q.wakeOne()
			return true
		}
	}
}

// incrementBelow adds one to v unless that would reach more than limit,
// and reports whether it did.
func incrementBelow(v *atomic.Int64, limit int64) bool {
	for {
		n := v.Load()
		if n >= limit {
			return false
		}
		if v.CompareAndSwap(n, n+1) {
			return true
		}
	}
}
