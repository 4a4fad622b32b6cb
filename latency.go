package tcplb

import "time"

// observeLatency records one connection's time from the start of its dial
// to the backend's first byte. Placeholder until the least-latency strategy
// keeps an average.
func (b *Backend) observeLatency(time.Duration) {}
