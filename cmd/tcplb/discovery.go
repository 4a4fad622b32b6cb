package main

import (
	"context"
	"log/slog"
	"reflect"
	"time"

	"github.com/tcplb/tcplb"
	"github.com/tcplb/tcplb/internal/config"
	"github.com/tcplb/tcplb/internal/discovery"
)

// firstSetWait bounds how long starting a discovery source waits for its
// first backend set, so that a new process (start-up, upgrade) serves with
// backends from its first connection when the source answers quickly.
const firstSetWait = 5 * time.Second

// watcher runs one pool's discovery source, applying each set it finds to
// the pool with Pool.Sync.
type watcher struct {
	cfg    config.Discovery
	cancel context.CancelFunc
	done   chan struct{}
}

// newSource builds the source a pool's discovery settings describe.
func newSource(d config.Discovery, log *slog.Logger) discovery.Source {
	switch {
	case d.File != "":
		return discovery.NewFile(d.File, log)
	case d.DNS != "":
		return discovery.NewDNS(discovery.DNSConfig{Name: d.DNS, Type: d.DNSType, Port: d.Port, Interval: d.Interval, Server: d.DNSServer}, log)
	default:
		return discovery.NewEtcd(discovery.EtcdConfig{Endpoints: d.Etcd.Endpoints, Prefix: d.Etcd.Prefix, DialTimeout: d.Etcd.DialTimeout}, log)
	}
}

// startWatcher runs p's source and waits up to firstSetWait for its first
// set.
func startWatcher(p *tcplb.Pool, d config.Discovery, log *slog.Logger) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cfg: d, cancel: cancel, done: make(chan struct{})}
	src := newSource(d, log)
	first := make(chan struct{})
	got := false
	go func() {
		defer close(w.done)
		src.Run(ctx, func(specs []tcplb.BackendSpec) {
			if err := p.Sync(specs); err != nil {
				log.Error("discovery: backend set refused; keeping the last one", "pool", p.Name(), "source", src.String(), "err", err)
				return
			}
			log.Info("discovery: backends", "pool", p.Name(), "source", src.String(), "backends", backendList(p))
			if !got {
				got = true
				close(first)
			}
		})
	}()
	select {
	case <-first:
	case <-time.After(firstSetWait):
		log.Warn("discovery: no backend set yet; the pool refuses connections until one arrives", "pool", p.Name(), "source", src.String())
	}
	return w
}

func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

// syncWatchers starts, restarts or stops the discovery watchers of next's
// pools to match it; s.mu is held. Removed pools stop theirs in apply.
func (s *server) syncWatchers(next *config.Config) {
	for _, pc := range next.Pools {
		w := s.watchers[pc.Name]
		switch {
		case pc.Discovery == nil && w != nil:
			w.stop()
			delete(s.watchers, pc.Name)
		case pc.Discovery == nil:
		case w != nil && reflect.DeepEqual(w.cfg, *pc.Discovery):
		default:
			if w != nil {
				w.stop()
			}
			s.watchers[pc.Name] = startWatcher(s.pools[pc.Name], *pc.Discovery, s.log)
		}
	}
}
