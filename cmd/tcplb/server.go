package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcplb/tcplb"
	"github.com/tcplb/tcplb/internal/config"
	"github.com/tcplb/tcplb/internal/sni"
)

// server is the running daemon: its pools, its listeners, each served by a
// balancer, and the admin listener. apply moves it from one configuration
// to the next without closing a socket that stays: start-up is apply from
// nothing, and a reload is apply from the running configuration.
type server struct {
	log, accessLog *slog.Logger
	sockets        *sockets // where listening sockets come from (inherited or new); upgrade.go

	mu        sync.Mutex
	cfg       *config.Config
	pools     map[string]*tcplb.Pool
	listeners map[string]*listener // by listenKey
	watchers  map[string]*watcher  // discovery, by pool name
	admin     *adminServer
	closing   bool

	serveErr chan error // a listener failed on its own
	draining sync.WaitGroup

	reloads, reloadFailures atomic.Uint64
	lastReloadOK            atomic.Bool
}

// listener is one configured listener, its socket and its balancer: for
// TCP a listening socket and a Balancer, for UDP a UDP socket and a
// UDPBalancer.
type listener struct {
	cfg config.Listener
	socket
	lb  *tcplb.Balancer    // TCP, on socket.ln
	udp *tcplb.UDPBalancer // UDP, on socket.pc
}

// balancer is what stopping a listener needs of either kind of balancer.
type balancer interface {
	StopAccepting()
	Shutdown(context.Context) error
}

func (l *listener) balancer() balancer {
	if l.udp != nil {
		return l.udp
	}
	return l.lb
}

func (l *listener) addr() net.Addr {
	if l.pc != nil {
		return l.pc.LocalAddr()
	}
	return l.ln.Addr()
}

// socket is a listener's socket: a TCP listening socket or a UDP one, and
// the daemon's hold on it, for upgrades.
type socket struct {
	ln   net.Listener // TCP
	pc   *net.UDPConn // UDP
	held *held
}

func (k socket) close() {
	if k.ln != nil {
		k.ln.Close()
	}
	if k.pc != nil {
		k.pc.Close()
	}
	k.held.forget()
}

func newServer(log, accessLog *slog.Logger, sockets *sockets) *server {
	s := &server{
		log:       log,
		accessLog: accessLog,
		sockets:   sockets,
		pools:     map[string]*tcplb.Pool{},
		listeners: map[string]*listener{},
		watchers:  map[string]*watcher{},
		serveErr:  make(chan error, 1),
	}
	s.lastReloadOK.Store(true)
	return s
}

// apply makes next the running configuration. It binds every new socket
// first: if one cannot be bound, nothing has changed and the error says
// which. Then it updates the pools in place (a backend that stays keeps
// its *tcplb.Backend, so its health, counters and connections), points
// each kept listener's balancer at its pool and timeouts for new
// connections, starts the new listeners, and stops the removed ones, whose
// open connections finish within timeouts.drain.
func (s *server) apply(next *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errors.New("shutting down")
	}

	// Build what can fail before binding or changing anything.
	plans := map[string]poolPlan{}
	for _, pc := range next.Pools {
		plan, err := planPool(pc, next, s.log)
		if err != nil {
			return err
		}
		plans[pc.Name] = plan
	}
	for _, lc := range next.Listeners {
		if err := checkEdge(lc); err != nil {
			return fmt.Errorf("listener %s: %v", lc.Name, err)
		}
	}

	// Bind what is new, or give up with nothing changed.
	// (A socket closed by undo is forgotten too: the daemon's duplicate
	// would keep its port bound.)
	fresh := map[string]socket{}
	undo := func() {
		for _, k := range fresh {
			k.close()
		}
	}
	for _, l := range next.Listeners {
		key := listenKey(l)
		if s.listeners[key] != nil {
			continue
		}
		var k socket
		var err error
		if l.Protocol == config.ProtocolUDP {
			k.pc, k.held, err = s.sockets.listenPacket(key, l.Listen)
		} else {
			var nl *netListener
			if nl, err = s.sockets.listen(key, l.Listen); err == nil {
				k.ln, k.held = nl, nl.held
			}
		}
		if err != nil {
			undo()
			return fmt.Errorf("listener %s: %v", l.Name, err)
		}
		fresh[key] = k
	}
	var newAdmin *adminServer
	if next.Admin != nil && (s.admin == nil || s.admin.listen != next.Admin.Listen) {
		ln, err := s.sockets.listen("admin "+next.Admin.Listen, next.Admin.Listen)
		if err != nil {
			undo()
			return fmt.Errorf("admin listener: %v", err)
		}
		newAdmin = newAdminServer(next.Admin.Listen, ln, s.log)
	}

	// Pools: update in place or create.
	for _, pc := range next.Pools {
		p := s.pools[pc.Name]
		if p == nil {
			p = tcplb.NewPool(pc.Name, plans[pc.Name].strategy)
			s.pools[pc.Name] = p
		}
		s.syncPool(p, pc, plans[pc.Name])
	}
	s.syncWatchers(next)

	// Listeners.
	idle := next.Timeouts.Idle
	if idle == 0 {
		idle = -1 // the config's 0 disables; the library's 0 means its default
	}
	kept := map[string]bool{}
	for _, lc := range next.Listeners {
		key := listenKey(lc)
		kept[key] = true
		pool := s.pools[lc.Pool]
		if lc.Protocol == config.ProtocolUDP {
			s.applyUDP(key, lc, pool, next, fresh[key])
			continue
		}
		edge := s.edge(lc, next)
		if l := s.listeners[key]; l != nil {
			if l.cfg.Name != lc.Name {
				l.lb.SetName(lc.Name)
			}
			l.lb.SetPool(pool)
			l.lb.SetTimeouts(next.Timeouts.Connect, idle, next.Timeouts.Queue)
			if err := l.lb.SetEdge(edge); err != nil { // checked by checkEdge
				s.log.Error("listener edge settings refused", "listener", lc.Name, "err", err)
			}
			l.cfg = lc
			continue
		}
		l := &listener{cfg: lc, socket: fresh[key], lb: &tcplb.Balancer{
			Name:           lc.Name,
			Pool:           pool,
			ConnectTimeout: next.Timeouts.Connect,
			IdleTimeout:    idle,
			QueueTimeout:   next.Timeouts.Queue,
			Edge:           edge,
			Engine:         engineOf(next),
			Logger:         s.log,
			AccessLog:      s.accessLog,
		}}
		s.listeners[key] = l
		go s.serve(l)
		s.log.Info("listening", "listener", lc.Name, "addr", l.ln.Addr().String(), "pool", lc.Pool,
			"strategy", poolConfig(next, lc.Pool).Strategy, "backends", backendList(pool))
	}
	for key, l := range s.listeners {
		if !kept[key] {
			delete(s.listeners, key)
			s.stopListener(l, next.Timeouts.Drain)
		}
	}

	// Pools no longer named: their backends drain like removed ones
	// (open connections end within timeouts.drain), and their checks stop.
	for name, p := range s.pools {
		if !slices.ContainsFunc(next.Pools, func(pc config.Pool) bool { return pc.Name == name }) {
			delete(s.pools, name)
			if w := s.watchers[name]; w != nil {
				w.stop()
				delete(s.watchers, name)
			}
			p.SetOptions(tcplb.PoolOptions{DrainTimeout: next.Timeouts.Drain, Logger: s.log})
			p.SetBackends(nil)
			p.Close()
		}
	}

	// Admin: a new address replaced the old server; otherwise the running
	// one sees the new pools and listeners.
	if s.admin != nil && (next.Admin == nil || newAdmin != nil) {
		s.admin.close()
		s.admin = nil
	}
	if newAdmin != nil {
		s.admin = newAdmin
	}
	s.cfg = next
	if s.admin != nil {
		s.admin.update(s.adminConfig())
	}
	if newAdmin != nil {
		newAdmin.start(s.log)
	}
	return nil
}

// applyUDP starts a new UDP listener on its fresh socket k, or points a
// kept one at its pool and settings (its sessions go on). s.mu is held.
func (s *server) applyUDP(key string, lc config.Listener, pool *tcplb.Pool, next *config.Config, k socket) {
	u := s.udpBalancer(lc, pool, next)
	if l := s.listeners[key]; l != nil {
		if err := l.udp.Reload(u); err != nil { // validated with the config
			s.log.Error("UDP listener settings refused", "listener", lc.Name, "err", err)
		}
		l.cfg = lc
		return
	}
	l := &listener{cfg: lc, socket: k, udp: u}
	s.listeners[key] = l
	go s.serve(l)
	s.log.Info("listening", "listener", lc.Name, "protocol", "udp", "addr", l.addr().String(), "pool", lc.Pool,
		"strategy", poolConfig(next, lc.Pool).Strategy, "backends", backendList(pool))
}

// udpBalancer translates a UDP listener's settings.
func (s *server) udpBalancer(lc config.Listener, pool *tcplb.Pool, next *config.Config) *tcplb.UDPBalancer {
	return &tcplb.UDPBalancer{
		Name:        lc.Name,
		Pool:        pool,
		Engine:      engineOf(next),
		IdleTimeout: next.Timeouts.UDPIdle,
		Responses:   lc.UDPResponses,
		MaxSessions: lc.MaxSessions,
		MaxDatagram: lc.MaxDatagram,
		Allow:       prefixes(lc.Allow),
		Deny:        prefixes(lc.Deny),
		Logger:      s.log,

		MaxSessionsPerSource: lc.MaxSessionsPerSource,
		RatePerSource:        lc.RatePerSource,
		BurstPerSource:       lc.BurstPerSource,
		AccessLog:            s.accessLog,
	}
}

// prefixes parses CIDRs that checkEdge has checked.
func prefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range list {
		pfx, _ := config.ParsePrefix(p)
		out = append(out, pfx)
	}
	return out
}

// edge translates a listener's PROXY protocol, access, limit and SNI
// settings; checkEdge has checked them. s.mu is held, and the pools of
// next exist.
func (s *server) edge(lc config.Listener, next *config.Config) tcplb.Edge {
	e := tcplb.Edge{
		Allow:             prefixes(lc.Allow),
		Deny:              prefixes(lc.Deny),
		MaxConns:          lc.MaxConns,
		MaxConnsPerSource: lc.MaxConnsPerSource,
		RatePerSource:     lc.RatePerSource,
		BurstPerSource:    lc.BurstPerSource,
	}
	if lc.ProxyProtocol != "" {
		e.ProxyProtocol = &tcplb.ProxyAccept{
			Trusted:  prefixes(lc.Trusted),
			Optional: lc.ProxyProtocol == config.ProxyOptional,
			Timeout:  next.Timeouts.ProxyHeader,
		}
	}
	if len(lc.SNIRoutes) > 0 {
		e.SNI = &tcplb.SNIRouting{Close: lc.SNIFallback == config.SNIFallbackClose, Timeout: next.Timeouts.ClientHello}
		for _, r := range lc.SNIRoutes {
			e.SNI.Routes = append(e.SNI.Routes, tcplb.SNIRoute{ServerName: r.ServerName, Pool: s.pools[r.Pool]})
		}
	}
	return e
}

// checkEdge checks what the config's validation may let through that the
// library refuses, before anything changes.
func checkEdge(lc config.Listener) error {
	for _, list := range [][]string{lc.Trusted, lc.Allow, lc.Deny} {
		for _, p := range list {
			if _, err := config.ParsePrefix(p); err != nil {
				return err
			}
		}
	}
	t := sni.NewTable[int]()
	for _, r := range lc.SNIRoutes {
		if err := t.Add(r.ServerName, 0); err != nil {
			return err
		}
	}
	return nil
}

// listenKey identifies a listener across reloads: its address, which
// keeps its socket when it stays; with port 0, which stands for a new
// port each time, its name and address. A UDP listener's key starts with
// "udp ", so that TCP and UDP on one address are two sockets.
func listenKey(l config.Listener) string {
	key := l.Listen
	if _, port, _ := net.SplitHostPort(l.Listen); port == "0" {
		key = l.Name + "@" + l.Listen
	}
	if l.Protocol == config.ProtocolUDP {
		key = "udp " + key
	}
	return key
}

// serve runs l's balancer until it is stopped; a listener that fails on its
// own stops the daemon.
func (s *server) serve(l *listener) {
	var err error
	if l.udp != nil {
		err = l.udp.Serve(l.pc)
	} else {
		err = l.lb.Serve(l.ln)
	}
	if errors.Is(err, tcplb.ErrBalancerClosed) || errors.Is(err, tcplb.ErrUDPBalancerClosed) {
		return
	}
	select {
	case s.serveErr <- fmt.Errorf("listener %s: %v", l.cfg.Name, err):
	default:
	}
}

// stopListener closes l's socket at once and lets its connections finish
// for up to drain, in the background.
func (s *server) stopListener(l *listener, drain time.Duration) {
	l.balancer().StopAccepting()
	l.held.forget()
	s.log.Info("listener removed: no new connections; open ones may finish", "listener", l.cfg.Name, "addr", l.cfg.Listen, "drain", drain)
	s.draining.Add(1)
	go func() {
		defer s.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		if err := l.balancer().Shutdown(ctx); err != nil {
			s.log.Warn("drain timeout: closed open connections", "listener", l.cfg.Name, "drain", drain)
		}
	}()
}

// poolPlan is what a pool is built or updated from: everything in it that
// can fail is checked before apply binds or changes anything.
type poolPlan struct {
	strategy tcplb.Strategy
	options  tcplb.PoolOptions
}

func planPool(pc config.Pool, cfg *config.Config, log *slog.Logger) (poolPlan, error) {
	var plan poolPlan
	var err error
	if pc.Strategy == "hash" && pc.HashBalanceFactor != 0 {
		plan.strategy, err = tcplb.NewMaglev(pc.HashBalanceFactor)
	} else {
		plan.strategy, err = tcplb.NewStrategy(pc.Strategy)
	}
	if err != nil {
		return plan, fmt.Errorf("pool %s: %v", pc.Name, err)
	}
	plan.options = poolOptions(pc, cfg.Timeouts.Drain, log)
	if err := plan.options.Validate(); err != nil {
		return plan, fmt.Errorf("pool %s: %v", pc.Name, err)
	}
	for _, bc := range pc.Backends {
		if _, err := tcplb.NewBackend(bc.Addr, bc.Weight); err != nil {
			return plan, fmt.Errorf("pool %s: backend %s: %v", pc.Name, bc.Addr, err)
		}
	}
	return plan, nil
}

// syncPool brings a pool, new or running, to pc: its strategy if it
// changed, its options, and its backends as a difference (Pool.Sync):
// backends that stay keep their *Backend, with the new weight and limit;
// new ones are added (with slow start, if set); removed ones drain.
func (s *server) syncPool(p *tcplb.Pool, pc config.Pool, plan poolPlan) {
	if s.cfg != nil {
		if old := poolConfig(s.cfg, pc.Name); old.Strategy != pc.Strategy || old.HashBalanceFactor != pc.HashBalanceFactor {
			p.SetStrategy(plan.strategy)
		}
	}
	p.SetOptions(plan.options) // validated by planPool
	if pc.Discovery != nil {
		return // the discovery source owns the backends
	}
	if err := p.Sync(backendSpecs(pc)); err != nil { // checked by planPool
		s.log.Error("pool backends refused", "pool", pc.Name, "err", err)
	}
}

func backendSpecs(pc config.Pool) []tcplb.BackendSpec {
	specs := make([]tcplb.BackendSpec, len(pc.Backends))
	for i, bc := range pc.Backends {
		specs[i] = tcplb.BackendSpec{Addr: bc.Addr, Weight: bc.Weight, MaxConns: int64(bc.MaxConns)}
	}
	return specs
}

func poolConfig(cfg *config.Config, name string) config.Pool {
	for _, pc := range cfg.Pools {
		if pc.Name == name {
			return pc
		}
	}
	return config.Pool{}
}

// poolOptions translates a pool's health settings. Drained and removed
// backends get the same time to finish as connections get at shutdown.
func poolOptions(p config.Pool, drain time.Duration, log *slog.Logger) tcplb.PoolOptions {
	o := tcplb.PoolOptions{
		SendProxy:    map[string]tcplb.ProxyVersion{config.ProxyV1: tcplb.ProxyV1, config.ProxyV2: tcplb.ProxyV2}[p.ProxyProtocol],
		SlowStart:    p.SlowStart,
		DrainTimeout: drain,
		Logger:       log,
		Passive: tcplb.PassiveCheck{
			MaxFails:           p.Passive.MaxFails,
			FailWindow:         p.Passive.FailWindow,
			Cooldown:           p.Passive.Cooldown,
			MaxCooldown:        p.Passive.MaxCooldown,
			MaxEjectionPercent: p.Passive.MaxEjectionPercent,
			UDPUnanswered:      p.Passive.UDPUnanswered,
		},
	}
	if p.AllDown == config.AllDownRefuse {
		o.AllDown = tcplb.Refuse
	}
	if h := p.Health; h != nil {
		send, expect := h.Payloads()
		o.Health = &tcplb.HealthCheck{
			Interval: h.Interval,
			Timeout:  h.Timeout,
			Rise:     h.Rise,
			Fall:     h.Fall,
			Port:     h.Port,
			Network:  h.Network,
			Send:     send,
			Expect:   expect,
		}
		if h.HTTP != nil {
			o.Health.HTTP = &tcplb.HTTPCheck{Path: h.HTTP.Path, Host: h.HTTP.Host, Status: h.HTTP.Status}
		}
	}
	return o
}

// reload re-reads the config file and applies it. A file that does not
// parse or validate, or a socket that cannot be bound, leaves the running
// configuration as it is; the error says why, with the key path.
func (s *server) reload(path string) error {
	s.reloads.Add(1)
	next, err := config.Load(path)
	if err == nil {
		err = s.apply(next)
	}
	if err != nil {
		s.reloadFailures.Add(1)
		s.lastReloadOK.Store(false)
		return err
	}
	s.lastReloadOK.Store(true)
	return nil
}

// stopAccepting closes every listener; open connections go on.
func (s *server) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for _, l := range s.listeners {
		l.balancer().StopAccepting()
		l.held.forget() // the daemon's duplicate too, or the socket would stay open
	}
}

// shutdown stops accepting, waits for open connections up to drain, closes
// what is left, then stops the pools' checks and the admin listener.
func (s *server) shutdown(drain time.Duration) {
	s.stopAccepting()
	s.mu.Lock()
	listeners := make([]*listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		listeners = append(listeners, l)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Go(func() {
			if err := l.balancer().Shutdown(ctx); err != nil {
				s.log.Warn("drain timeout: closed open connections", "listener", l.cfg.Name, "drain", drain)
			}
		})
	}
	wg.Wait()
	s.draining.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.watchers {
		w.stop()
	}
	for _, p := range s.pools {
		p.Close()
	}
	if s.admin != nil {
		s.admin.close()
	}
}

func backendList(p *tcplb.Pool) string {
	var addrs []string
	for _, b := range p.Backends() {
		addrs = append(addrs, b.Addr())
	}
	return strings.Join(addrs, ",")
}

// engineOf returns the configured engine; the config is validated.
func engineOf(cfg *config.Config) tcplb.Engine {
	e, _ := tcplb.ParseEngine(cfg.Engine)
	return e
}
