package tcplb

import (
	"math"
	"sync/atomic"
	"time"
)

// DefaultLatencyDecay is the time constant τ of a backend's latency
// estimate: without new samples the estimate falls by a factor e every τ,
// and a lower sample taken Δ after the previous update moves it a
// fraction 1-e^(-Δ/τ) of the way down to the sample.
const DefaultLatencyDecay = 10 * time.Second

// A backend's latency estimate is a peak EWMA, as in Finagle and Linkerd:
// a sample above the current estimate replaces it at once, so a backend
// that slows down is avoided from its first slow answer, while lower
// samples and the passage of time bring it down gradually, with time
// constant τ. Decaying with time, not only with samples, matters: a
// backend that was slow gets no traffic and so no samples, and only the
// decay lets it be tried again.
//
// The estimate and the time of its last update share one uint64, so that
// observeLatency is a CAS loop on one word and a pick reads both in one
// atomic load:
//
//	bits 63-24: time of the last update, in milliseconds since latencyEpoch
//	            (2⁴⁰ ms is 34 years)
//	bits 23-0:  the estimate in nanoseconds as a float32 without its sign
//	            bit and its 7 lowest mantissa bits: 8 exponent bits and 16
//	            mantissa bits, a relative rounding error below 2⁻¹⁶
//
// Zero means no sample yet: samples are at least 1 ns, and the stored
// estimate never falls below the lowest sample (time decays it only when
// it is read).

// latencyEpoch is the origin of the update times. time.Since on a time with
// a monotonic reading costs one clock read.
var latencyEpoch = time.Now()

// latencyNow returns the current time in the estimate's unit.
func latencyNow() int64 { return time.Since(latencyEpoch).Milliseconds() }

// latencyDecayMillis is τ in milliseconds; 0 means DefaultLatencyDecay.
// Tests shorten it.
var latencyDecayMillis atomic.Int64

func latencyDecay() float64 {
	if ms := latencyDecayMillis.Load(); ms > 0 {
		return float64(ms)
	}
	return float64(DefaultLatencyDecay / time.Millisecond)
}

const (
	latencyValueBits = 24
	latencyValueMask = 1<<latencyValueBits - 1
	latencyDropBits  = 7 // float32 mantissa bits not kept
)

func packLatency(ns float64, at int64) uint64 {
	return uint64(at)<<latencyValueBits | uint64(math.Float32bits(float32(ns))>>latencyDropBits)&latencyValueMask
}

func unpackLatency(w uint64) (ns float64, at int64) {
	return float64(math.Float32frombits(uint32(w&latencyValueMask) << latencyDropBits)), int64(w >> latencyValueBits)
}

// observeLatency records one connection's time from the start of its dial
// to the backend's first byte. It is called once per connection, from any
// goroutine, and costs a clock read and one CAS, or no write at all when a
// lower sample arrives in the same millisecond as the last update.
func (b *Backend) observeLatency(d time.Duration) {
	b.observeLatencyAt(d, latencyNow())
}

func (b *Backend) observeLatencyAt(d time.Duration, now int64) {
	x := float64(max(d, 1))
	for {
		old := b.latency.Load()
		est := x
		if old != 0 {
			v, at := unpackLatency(old)
			if now < at {
				now = at // raced with a later update: take it as now
			}
			w := math.Exp(-float64(now-at) / latencyDecay())
			if cur := v * w; x < cur {
				// Below the estimate: decay it by the time since the
				// last update, then move towards x by the same factor.
				est = cur*w + x*(1-w)
			}
		}
		w := packLatency(est, now)
		if w == old || b.latency.CompareAndSwap(old, w) {
			return
		}
	}
}

// latencyAt returns b's latency estimate in nanoseconds at time now, or 0
// if it has none.
func (b *Backend) latencyAt(now int64) float64 {
	word := b.latency.Load()
	if word == 0 {
		return 0
	}
	v, at := unpackLatency(word)
	if now <= at {
		return v
	}
	return v * math.Exp(-float64(now-at)/latencyDecay())
}

// Latency returns the backend's latency estimate now: a peak EWMA of the
// time from the start of each connection's dial to the backend's first
// byte, decaying with time constant DefaultLatencyDecay. It is 0 until the
// first connection on which the backend sent a byte; connections on which
// the backend sends nothing give no sample.
func (b *Backend) Latency() time.Duration {
	return time.Duration(b.latencyAt(latencyNow()))
}

// compareLatency returns the latency estimates of a and b as they were
// read from their words, decayed to the same instant, the later of their
// update times. Their ratio is what it would be at any later time, so a
// pick can compare them without reading the clock. An estimate missing
// (word 0) is given the other's value; with both missing both are 1.
func compareLatency(a, b uint64) (la, lb float64) {
	switch {
	case a == 0 && b == 0:
		return 1, 1
	case a == 0:
		a = b
	case b == 0:
		b = a
	}
	va, ta := unpackLatency(a)
	vb, tb := unpackLatency(b)
	switch {
	case ta < tb:
		va *= math.Exp(-float64(tb-ta) / latencyDecay())
	case tb < ta:
		vb *= math.Exp(-float64(ta-tb) / latencyDecay())
	}
	return va, vb
}
