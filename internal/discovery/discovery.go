// Package discovery finds a pool's backends in the systems operators already run: a file, DNS, etcd.
//
// Each place is a [Source]. A source's Run watches it and passes every new
// backend set to a callback, which typically hands it to [tcplb.Pool.Sync]:
//
//	src := discovery.NewFile("/etc/tcplb/app.txt", logger)
//	go src.Run(ctx, func(specs []tcplb.BackendSpec) {
//		if err := pool.Sync(specs); err != nil {
//			logger.Error("discovery", "source", src.String(), "err", err)
//		}
//	})
//
// A source never empties a pool because a read failed: a set that cannot be
// read or parsed, and (for files and DNS) an empty one, is logged and
// skipped, and the last good set stays.
package discovery

import (
	"context"

	"github.com/tcplb/tcplb"
)

// A Source watches one place for a pool's backend set. Run calls update with the whole set each
// time it changes (and once at start, as soon as it has one), from one goroutine, until ctx ends;
// then it returns ctx.Err(). A set that cannot be read or parsed is logged (with the line number
// for files, the error for DNS and etcd) and not passed on: the last good set stays. Run must not
// return on such errors; it retries.
type Source interface {
	// Run watches the source until ctx ends, calling update with each
	// new backend set; it returns ctx.Err(). Run is meant to be called
	// once per Source; update is never called concurrently with itself.
	Run(ctx context.Context, update func([]tcplb.BackendSpec)) error
	String() string // for logs: "file /etc/tcplb/app.txt", "dns srv _app._tcp.example", "etcd /tcplb/app/"
}

// sameBackendSet reports whether a and b hold the same backends, in any
// order.
func sameBackendSet(a, b []tcplb.BackendSpec) bool {
	if len(a) != len(b) {
		return false
	}
	in := make(map[tcplb.BackendSpec]int, len(a))
	for _, s := range a {
		in[s]++
	}
	for _, s := range b {
		if in[s] == 0 {
			return false
		}
		in[s]--
	}
	return true
}
