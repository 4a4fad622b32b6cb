package tcplb

import (
	"sync"
	"testing"
	"time"
)

func TestWorkerPoolReusesAndRetires(t *testing.T) {
	var p workerPool
	done := make(chan struct{})
	// Sequential work runs on one goroutine, parked between calls.
	for range 5 {
		p.run(func() { done <- struct{}{} })
		<-done
		waitIdle(t, &p, 1)
	}
	// Concurrent work needs as many goroutines as calls in flight.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 3 {
		wg.Add(1)
		p.run(func() { wg.Done(); <-release })
	}
	wg.Wait()
	close(release)
	waitIdle(t, &p, 3)

	// Workers idle for workerIdle are retired.
	p.mu.Lock()
	for _, w := range p.idle {
		w.parked = time.Now().Add(-2 * workerIdle)
	}
	p.mu.Unlock()
	p.retire()
	waitIdle(t, &p, 0)
}

func waitIdle(t *testing.T, p *workerPool, n int) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for {
		p.mu.Lock()
		got := len(p.idle)
		p.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle workers = %d, want %d", got, n)
		}
		time.Sleep(time.Millisecond) // a parked worker's return is not observable otherwise
	}
}
