package tcplb

import "time"

// epoch is when the package was loaded, less a second (so that no reading
// is 0, which the atomics below use for "not set").
var epoch = time.Now().Add(-time.Second)

// monoNanos is t on the monotonic clock, in nanoseconds since epoch. Times
// kept in atomics as integers (the last byte moved, a slow start's
// beginning, a source's token count) use it: t.UnixNano() is the wall
// clock, which steps and slews, and a step would fire an idle timeout
// early or restart a ramp.
func monoNanos(t time.Time) int64 { return int64(t.Sub(epoch)) }
