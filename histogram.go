package tcplb

import (
	"sync/atomic"
	"time"
)

// histogram counts durations into fixed buckets with atomic adds: no lock,
// no allocation, a few nanoseconds per observation. The balancer records
// one observation per connection (its duration) and per dial (the connect
// time), never per read.
type histogram struct {
	bounds []time.Duration              // upper bounds, ascending, at most maxBounds; then an implicit +Inf; nil: durationBounds
	counts [maxBounds + 1]atomic.Uint64 // not cumulative; the first len(bounds)+1 are used
	sum    atomic.Int64                 // nanoseconds
}

const maxBounds = 16

// Bucket upper bounds, as Prometheus's conventional latency buckets: from
// 100µs (a loopback dial) to 10s for connect times, and from 1ms to an hour
// for connection lifetimes.
var (
	connectBounds  = []time.Duration{100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second}
	durationBounds = []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second, 10 * time.Second, time.Minute, 10 * time.Minute, time.Hour}
)

// bnds returns h's bucket bounds.
func (h *histogram) bnds() []time.Duration {
	if h.bounds == nil {
		return durationBounds
	}
	return h.bounds
}

func (h *histogram) observe(d time.Duration) {
	bounds := h.bnds()
	i := 0
	for i < len(bounds) && d > bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// HistogramSnapshot is a point-in-time copy of a duration histogram, in the
// shape Prometheus exports: Buckets[i] counts the observations of at most
// Bounds[i] (cumulative), and Count all of them.
type HistogramSnapshot struct {
	Bounds  []time.Duration
	Buckets []uint64 // cumulative, len(Bounds)
	Count   uint64
	Sum     time.Duration
}

func (h *histogram) snapshot() HistogramSnapshot {
	bounds := h.bnds()
	s := HistogramSnapshot{Bounds: bounds, Buckets: make([]uint64, len(bounds))}
	var cum uint64
	for i := range len(bounds) + 1 {
		cum += h.counts[i].Load()
		if i < len(bounds) {
			s.Buckets[i] = cum
		}
	}
	s.Count = cum
	s.Sum = time.Duration(h.sum.Load())
	return s
}
