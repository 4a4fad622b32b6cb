package tcplb

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is a named set of backends, the strategy that chooses among them,
// and the health model that decides which of them may be chosen.
// Several balancers (listeners) may share one pool, and with it the
// backends' connection counts and health.
//
// A pool publishes two sets. Backends is the configured set (SetBackends).
// Available is the snapshot that picks read: the backends that are up, not
// ejected by passive checks and not draining; when none is, every backend
// that is not draining (AllDown FailOpen, the default) or none (Refuse).
// Each set is an immutable slice swapped atomically, so a pick costs one
// atomic load and never sees a down backend unless every backend is down.
// Health changes, drains and weight changes publish a new snapshot.
//
// A Backend belongs to at most one pool at a time. All methods are safe for
// concurrent use.
type Pool struct {
	name     string
	strategy atomic.Pointer[strategyRef]
	opts     atomic.Pointer[PoolOptions]
	avail    atomic.Pointer[[]*Backend]
	queue    waitQueue // clients waiting for a backend under max_conns (queue.go)

	mu        sync.Mutex
	members   atomic.Pointer[[]*Backend] // written under mu
	allDown   bool                       // the last snapshot had no usable backend
	checks    map[*Backend]func()        // stops each backend's active checker
	balancers map[server]struct{}        // serving this pool: asked to close drained backends' connections
	closed    bool
}

// PoolOptions are a pool's health, slow-start and draining settings. The
// zero value means: no active checks, no passive checks, fail open when
// every backend is down, no slow start, drained backends' connections are
// never closed by force.
type PoolOptions struct {
	// Health, if non-nil, turns on active health checks of every backend
	// (see HealthCheck for the kinds and defaults).
	Health *HealthCheck

	// Passive ejects backends whose connections fail; see PassiveCheck.
	// Its zero value turns passive checks off.
	Passive PassiveCheck

	// AllDown says what picks see when no backend is usable.
	AllDown AllDownPolicy

	// SlowStart, if positive, ramps a backend that comes up after a
	// failed check, is enabled after a drain, or is added to the pool
	// after the first SetBackends: over SlowStart its share of new
	// connections grows linearly from 5% of its weighted share to all
	// of it. A strategy's pick of a ramping backend is accepted with
	// that probability, and otherwise the strategy picks again among the
	// others, so the ramp works with every strategy (including custom
	// ones) except that under least-conn a ramping backend that is far
	// below the others' load still gets more than its fraction until it
	// catches up. The backends of the first SetBackends start at full
	// share, as in HAProxy.
	SlowStart time.Duration

	// DrainTimeout bounds how long a drained or removed backend's open
	// connections may run: when it passes they are closed (their access
	// log says "drained"). Zero lets them run until they end.
	DrainTimeout time.Duration

	// SendProxy, if ProxyV1 or ProxyV2, sends a PROXY protocol header
	// to the backend before any client byte: the client's address (the
	// one a trusted upstream's header carried, if any) and the address it
	// connected to. Backends must then expect the header on every
	// connection, health checks excepted.
	SendProxy ProxyVersion

	// Logger receives health transitions (backend down, up, ejected,
	// every backend down). If nil, slog.Default() is used.
	Logger *slog.Logger
}

// AllDownPolicy is what a pool offers picks when none of its backends is
// usable (up, not ejected, not draining).
type AllDownPolicy int

const (
	// FailOpen offers every backend that is not draining, as CoreDNS and
	// Envoy's panic threshold do: health checks can be wrong, and a pool
	// that refuses everything turns a checking problem into an outage.
	FailOpen AllDownPolicy = iota
	// Refuse offers none, so new clients are closed at once ("no
	// backend" in the access log).
	Refuse
)

func (a AllDownPolicy) String() string {
	switch a {
	case FailOpen:
		return "fail-open"
	case Refuse:
		return "refuse"
	}
	return fmt.Sprintf("AllDownPolicy(%d)", int(a))
}

// NewPool returns a pool named name that picks among backends with
// strategy; a nil strategy means round robin. The pool starts with the
// zero PoolOptions; see SetOptions.
func NewPool(name string, strategy Strategy, backends ...*Backend) *Pool {
	if strategy == nil {
		strategy = NewRoundRobin()
	}
	p := &Pool{
		name:      name,
		checks:    make(map[*Backend]func()),
		balancers: make(map[server]struct{}),
	}
	p.strategy.Store(&strategyRef{strategy})
	p.opts.Store(&PoolOptions{})
	p.SetBackends(backends)
	return p
}

// strategyRef holds a Strategy for an atomic.Pointer.
type strategyRef struct{ s Strategy }

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Strategy returns the pool's strategy.
func (p *Pool) Strategy() Strategy { return p.strategy.Load().s }

// SetStrategy replaces the pool's strategy, for the picks from now on; nil
// means round robin.
func (p *Pool) SetStrategy(s Strategy) {
	if s == nil {
		s = NewRoundRobin()
	}
	p.strategy.Store(&strategyRef{s})
}

// Options returns the pool's current options.
func (p *Pool) Options() PoolOptions { return *p.opts.Load() }

// SetOptions validates and applies new options. Active checks restart
// with the new HealthCheck, but each backend keeps its state: a backend
// that is down stays down until Rise checks pass. Turning active checks
// off brings backends that were down by them back up. An invalid
// HealthCheck or PassiveCheck is an error and changes nothing.
func (p *Pool) SetOptions(o PoolOptions) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("pool %s: %v", p.name, err)
	}
	if o.Health != nil {
		hc := o.Health.WithDefaults()
		o.Health = &hc
	}
	o.Passive = o.Passive.withDefaults()

	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.opts.Swap(&o)
	if p.closed {
		return nil
	}
	if !sameHealthCheck(old.Health, o.Health) {
		p.stopChecksLocked()
		if o.Health == nil {
			for _, b := range p.Backends() {
				p.resetHealthLocked(b)
			}
		} else {
			for _, b := range p.Backends() {
				p.startCheckLocked(b, *o.Health)
			}
		}
	}
	p.publishLocked()
	return nil
}

// Validate reports the first problem with o, with its defaults filled in,
// or nil. SetOptions calls it.
func (o PoolOptions) Validate() error {
	if o.Health != nil {
		if err := o.Health.WithDefaults().Validate(); err != nil {
			return err
		}
	}
	if err := o.Passive.withDefaults().validate(); err != nil {
		return err
	}
	switch {
	case o.SlowStart < 0:
		return fmt.Errorf("slow start %s: must not be negative", o.SlowStart)
	case o.DrainTimeout < 0:
		return fmt.Errorf("drain timeout %s: must not be negative", o.DrainTimeout)
	case o.AllDown != FailOpen && o.AllDown != Refuse:
		return fmt.Errorf("unknown AllDown policy %d", o.AllDown)
	case o.SendProxy < ProxyNone || o.SendProxy > ProxyV2:
		return fmt.Errorf("unknown PROXY protocol version %d", o.SendProxy)
	}
	return nil
}

func sameHealthCheck(a, b *HealthCheck) bool {
	if a == nil || b == nil {
		return a == b
	}
	if (a.HTTP == nil) != (b.HTTP == nil) || (a.HTTP != nil && *a.HTTP != *b.HTTP) {
		return false
	}
	x, y := *a, *b
	x.HTTP, y.HTTP = nil, nil
	return x == y
}

func (p *Pool) logger() *slog.Logger {
	if l := p.opts.Load().Logger; l != nil {
		return l
	}
	return slog.Default()
}

// Backends returns the configured backend set, whatever their health. The
// caller must not modify it.
func (p *Pool) Backends() []*Backend {
	if m := p.members.Load(); m != nil {
		return *m
	}
	return nil
}

// Available returns the backends that picks choose from now (see Pool).
// The caller must not modify it.
func (p *Pool) Available() []*Backend {
	if a := p.avail.Load(); a != nil {
		return *a
	}
	return nil
}

// SetBackends replaces the configured backend set; it copies backends.
//
// A *Backend that stays keeps everything: health state, counters, open
// connections. So a reload should pass the same *Backend for an address
// that stays (Backend finds it), updating its weight with SetWeight. A
// backend that is new to the pool starts up (unchecked; with active checks
// its first failed check takes it down) and, if the pool already had
// backends, slow-starts. A backend that leaves takes no new
// connections; its open connections run until they end or DrainTimeout
// passes, as with Drain.
func (p *Pool) SetBackends(backends []*Backend) {
	s := slices.Clone(backends)
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.Backends()
	o := p.opts.Load()
	now := time.Now()
	for _, b := range s {
		if slices.Contains(old, b) {
			continue
		}
		b.mu.Lock()
		b.stopDrainLocked() // leaving and coming back cancels the leave
		b.draining = false
		if len(old) > 0 && o.SlowStart > 0 {
			b.rampStart.Store(monoNanos(now))
		}
		b.pool = p
		b.clearedLocked(now)
		b.mu.Unlock()
		if o.Health != nil && !p.closed {
			p.startCheckLocked(b, *o.Health)
		}
	}
	for _, b := range old {
		if slices.Contains(s, b) {
			continue
		}
		if stop := p.checks[b]; stop != nil {
			stop()
			delete(p.checks, b)
		}
		p.drainLocked(b, o.DrainTimeout, "removed from the pool")
	}
	p.members.Store(&s)
	p.publishLocked()
}

// Backend returns the configured backend with the given address, or nil.
func (p *Pool) Backend(addr string) *Backend {
	for _, b := range p.Backends() {
		if b.addr == addr {
			return b
		}
	}
	return nil
}

// ErrUnknownBackend is returned (wrapped) by the pool methods that name a
// backend by an address the pool does not have.
var ErrUnknownBackend = errors.New("no such backend")

func (p *Pool) member(addr string) (*Backend, error) {
	if b := p.Backend(addr); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("pool %s: %s: %w", p.name, addr, ErrUnknownBackend)
}

// Drain takes the backend with address addr out of service: it gets no
// new connections, and its open ones run until they end or the pool's
// DrainTimeout passes, when they are closed. It stays drained, and keeps
// being health-checked, until Enable.
func (p *Pool) Drain(addr string) error {
	b, err := p.member(addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drainLocked(b, p.opts.Load().DrainTimeout, "drained")
	p.publishLocked()
	return nil
}

// Enable returns a drained backend to service (with slow start, if the
// pool has it). Enabling a backend that is not drained does nothing.
func (p *Pool) Enable(addr string) error {
	b, err := p.member(addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b.mu.Lock()
	if b.draining {
		b.stopDrainLocked()
		b.draining = false
		b.startRampLocked(p.opts.Load())
		b.clearedLocked(time.Now())
	}
	b.mu.Unlock()
	p.publishLocked()
	return nil
}

// SetWeight changes the weight of the backend with address addr, 1 to
// MaxWeight. The next pick uses it.
func (p *Pool) SetWeight(addr string, weight int) error {
	if weight < 1 || weight > MaxWeight {
		return fmt.Errorf("weight %d: must be between 1 and %d", weight, MaxWeight)
	}
	b, err := p.member(addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b.weight.Store(int32(weight))
	p.publishLocked() // a new slice: strategies with cached tables rebuild them
	return nil
}

// drainLocked marks b draining and, with a timeout, schedules closing its
// connections.
func (p *Pool) drainLocked(b *Backend, timeout time.Duration, why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.draining {
		return
	}
	b.draining, b.drainReason, b.drainSince = true, why, time.Now()
	if timeout > 0 {
		b.drainTimer = time.AfterFunc(timeout, func() { p.closeConns(b) })
	}
	p.logger().Info("backend draining", "pool", p.name, "backend", b.addr, "why", why, "active", b.active.Load(), "drain_timeout", timeout)
}

// closeConns closes every open connection to b, on every balancer serving
// the pool.
func (p *Pool) closeConns(b *Backend) {
	p.mu.Lock()
	lbs := make([]server, 0, len(p.balancers))
	for lb := range p.balancers {
		lbs = append(lbs, lb)
	}
	p.mu.Unlock()
	n := 0
	for _, lb := range lbs {
		n += lb.closeBackend(b, EndDrained)
	}
	if n > 0 {
		p.logger().Info("drain timeout: closed open connections", "pool", p.name, "backend", b.addr, "closed", n)
	}
}

// server is what serves a pool: a Balancer (TCP) or a UDPBalancer.
type server interface {
	// closeBackend ends the open connections (sessions) to b, recording
	// why, and returns how many it ended.
	closeBackend(b *Backend, why End) int
}

// attach records that lb serves the pool, so that drains reach its
// connections.
func (p *Pool) attach(lb server, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.balancers[lb] = struct{}{}
	} else {
		delete(p.balancers, lb)
	}
}

// Close stops the pool's active checks and pending timers. Picks keep
// working on the last snapshot.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.stopChecksLocked()
	for _, b := range p.Backends() {
		b.mu.Lock()
		b.stopEjectLocked()
		b.mu.Unlock()
	}
}

func (p *Pool) stopChecksLocked() {
	for b, stop := range p.checks {
		stop()
		delete(p.checks, b)
	}
}

// publishLocked computes and publishes the Available snapshot, logs the
// pool going all-down or coming back, and lets a waiting client retry.
func (p *Pool) publishLocked() {
	members := p.Backends()
	avail := make([]*Backend, 0, len(members))
	for _, b := range members {
		if b.usable() {
			avail = append(avail, b)
		}
	}
	allDown := len(avail) == 0 && len(members) > 0
	policy := p.opts.Load().AllDown
	if allDown && policy == FailOpen {
		for _, b := range members {
			b.mu.Lock()
			if !b.draining {
				avail = append(avail, b)
			}
			b.mu.Unlock()
		}
	}
	if allDown != p.allDown {
		p.allDown = allDown
		if allDown {
			p.logger().Warn("every backend is down", "pool", p.name, "policy", policy.String(), "backends", len(members))
		} else {
			p.logger().Info("backends available again", "pool", p.name, "available", len(avail))
		}
	}
	p.avail.Store(&avail)
	p.queue.wakeOne()
}

// BackendSpec describes a backend for Sync.
type BackendSpec struct {
	Addr     string // "host:port", as NewBackend takes
	Weight   int    // 1 to MaxWeight; 0 means 1
	MaxConns int64  // 0: no limit
}

// Sync makes the pool's backends those of specs, as a difference: a
// backend whose address stays keeps its *Backend (health, counters, open
// connections) and takes the new weight and limit; a new address gets a
// new Backend (which slow-starts, if the pool has it); an address that
// goes drains (see SetBackends). Discovery sources (files, DNS, etcd) and
// reloads call it. An invalid spec or an address listed twice is an error
// and changes nothing.
func (p *Pool) Sync(specs []BackendSpec) error {
	seen := make(map[string]bool, len(specs))
	fresh := make([]*Backend, len(specs))
	for i, s := range specs {
		w := cmp.Or(s.Weight, 1)
		b, err := NewBackend(s.Addr, w)
		if err != nil {
			return fmt.Errorf("pool %s: backend %s: %v", p.name, s.Addr, err)
		}
		if seen[s.Addr] {
			return fmt.Errorf("pool %s: backend %s listed twice", p.name, s.Addr)
		}
		seen[s.Addr] = true
		fresh[i] = b
	}
	bs := make([]*Backend, len(specs))
	for i, s := range specs {
		b := p.Backend(s.Addr)
		if b == nil {
			b = fresh[i]
		}
		b.SetMaxConns(s.MaxConns)
		bs[i] = b
	}
	p.SetBackends(bs)
	for _, s := range specs {
		if b := p.Backend(s.Addr); b.Weight() != cmp.Or(s.Weight, 1) {
			p.SetWeight(s.Addr, cmp.Or(s.Weight, 1))
		}
	}
	return nil
}
