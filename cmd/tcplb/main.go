// Command tcplb is a TCP load balancer: a thin shell around the tcplb
// library that reads flags or a YAML config, serves its listeners and stops
// gracefully on SIGINT or SIGTERM.
//
// With no flags it listens on 127.0.0.1:8080 and balances round robin over
// 127.0.0.1:3001, 127.0.0.1:3002 and 127.0.0.1:3003. -demo also starts three
// small backends on those ports, so that
//
//	go run ./cmd/tcplb -demo
//	nc 127.0.0.1 8080
//
// shows balancing with nothing else running.
//
// Exit codes: 0 after a clean stop, 2 for bad flags or config (the message
// names the flag or key and the bad value), 1 for a runtime failure such as
// an address already in use.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tcplb/tcplb"
	"github.com/tcplb/tcplb/internal/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// options are the parsed command-line flags.
type options struct {
	listen, backends, strategy string
	configFile                 string
	check, demo                bool
	logFormat                  string
	set                        map[string]bool // flags given explicitly
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	def := config.Default()
	var backends []string
	for _, b := range def.Pools[0].Backends {
		backends = append(backends, b.Addr)
	}
	o := &options{set: map[string]bool{}}
	fs := flag.NewFlagSet("tcplb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", def.Listeners[0].Listen, "address to listen on, host:port")
	fs.StringVar(&o.backends, "backends", strings.Join(backends, ","), "comma-separated backend addresses, host:port")
	fs.StringVar(&o.strategy, "strategy", tcplb.DefaultStrategy, "balancing strategy: "+strings.Join(tcplb.StrategyNames(), ", "))
	fs.StringVar(&o.configFile, "config", "", "YAML config `file` (instead of -listen, -backends and -strategy)")
	fs.BoolVar(&o.check, "check", false, "validate the configuration and exit: 0 if valid, 2 if not")
	fs.BoolVar(&o.demo, "demo", false, "also start three demo backends on 127.0.0.1:3001-3003 that greet, then echo")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only; see -help)", fs.Arg(0))
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return nil, fmt.Errorf("-log-format: %q: want text or json", o.logFormat)
	}
	return o, nil
}

// loadConfig returns the configuration from -config or from the flags.
func loadConfig(o *options) (*config.Config, error) {
	if o.configFile != "" {
		for _, f := range []string{"listen", "backends", "strategy"} {
			if o.set[f] {
				return nil, fmt.Errorf("-%s cannot be combined with -config: put it in the config file", f)
			}
		}
		return config.Load(o.configFile)
	}
	cfg := config.Default()
	if err := config.CheckListenAddr(o.listen); err != nil {
		return nil, fmt.Errorf("-listen: %v", err)
	}
	cfg.Listeners[0].Listen = o.listen
	if _, err := tcplb.NewStrategy(o.strategy); err != nil {
		return nil, fmt.Errorf("-strategy: %v", err)
	}
	cfg.Pools[0].Strategy = o.strategy
	cfg.Pools[0].Backends = nil
	seen := map[string]bool{}
	for _, addr := range strings.Split(o.backends, ",") {
		addr = strings.TrimSpace(addr)
		if err := tcplb.CheckAddr(addr); err != nil {
			return nil, fmt.Errorf("-backends: %v", err)
		}
		if seen[addr] {
			return nil, fmt.Errorf("-backends: %q: listed twice", addr)
		}
		seen[addr] = true
		cfg.Pools[0].Backends = append(cfg.Pools[0].Backends, config.Backend{Addr: addr, Weight: 1})
	}
	return cfg, cfg.Validate()
}

func run(args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "tcplb: %v\n", err)
		return exitUsage
	}
	cfg, err := loadConfig(o)
	if err != nil {
		fmt.Fprintf(stderr, "tcplb: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	if o.check {
		fmt.Fprintln(stderr, "tcplb: configuration is valid")
		return exitOK
	}

	log := newLogger(o.logFormat, stderr)
	accessOut := newBufferedWriter(stderr)
	defer accessOut.Flush()
	accessLog := newLogger(o.logFormat, accessOut)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.demo {
		demo, err := startDemo(log)
		if err != nil {
			log.Error("cannot start demo backends", "err", err)
			return exitRuntime
		}
		defer demo.Close()
	}

	balancers, listeners, err := listen(cfg, log, accessLog)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitRuntime
	}
	serveErr := make(chan error, len(balancers))
	for i, lb := range balancers {
		go func() { serveErr <- lb.Serve(listeners[i]) }()
		log.Info("listening", "listener", lb.Name, "addr", listeners[i].Addr().String(), "pool", lb.Pool.Name(),
			"strategy", poolStrategy(cfg, lb.Pool.Name()), "backends", backendList(lb.Pool))
	}

	code := exitOK
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		log.Error("listener failed; shutting down", "err", err)
		code = exitRuntime
	}
	stop() // a second signal now ends the process at once
	for _, lb := range balancers {
		lb.StopAccepting()
	}
	log.Info("shutting down: no new connections; waiting for open ones", "drain", cfg.Timeouts.Drain)

	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Drain)
	defer cancel()
	var wg sync.WaitGroup
	for _, lb := range balancers {
		wg.Go(func() {
			if err := lb.Shutdown(drainCtx); err != nil {
				log.Warn("drain timeout: closed open connections", "listener", lb.Name, "drain", cfg.Timeouts.Drain)
			}
		})
	}
	wg.Wait()
	log.Info("stopped")
	return code
}

// listen builds the pools and one balancer per listener, and binds every
// listener; on error it closes what it opened.
func listen(cfg *config.Config, log, accessLog *slog.Logger) ([]*tcplb.Balancer, []net.Listener, error) {
	pools := map[string]*tcplb.Pool{}
	for _, p := range cfg.Pools {
		var s tcplb.Strategy
		var err error
		if p.Strategy == "hash" && p.HashBalanceFactor != 0 {
			s, err = tcplb.NewMaglev(p.HashBalanceFactor)
		} else {
			s, err = tcplb.NewStrategy(p.Strategy)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("pool %s: %v", p.Name, err)
		}
		var bs []*tcplb.Backend
		for _, b := range p.Backends {
			be, err := tcplb.NewBackend(b.Addr, b.Weight)
			if err != nil {
				return nil, nil, fmt.Errorf("pool %s: backend %s: %v", p.Name, b.Addr, err)
			}
			be.SetMaxConns(int64(b.MaxConns))
			bs = append(bs, be)
		}
		pool := tcplb.NewPool(p.Name, s, bs...)
		if err := pool.SetOptions(poolOptions(p, cfg.Timeouts.Drain, log)); err != nil {
			return nil, nil, err
		}
		pools[p.Name] = pool
	}
	idle := cfg.Timeouts.Idle
	if idle == 0 {
		idle = -1 // disabled
	}
	var (
		balancers []*tcplb.Balancer
		listeners []net.Listener
	)
	// Client connections go without TCP keep-alive, like backend ones: the
	// idle timeout closes connections whose peer has gone.
	lc := net.ListenConfig{KeepAlive: -1}
	for _, l := range cfg.Listeners {
		ln, err := lc.Listen(context.Background(), "tcp", l.Listen)
		if err != nil {
			for _, ln := range listeners {
				ln.Close()
			}
			return nil, nil, fmt.Errorf("listener %s: %v", l.Name, err)
		}
		listeners = append(listeners, ln)
		balancers = append(balancers, &tcplb.Balancer{
			Name:           l.Name,
			Pool:           pools[l.Pool],
			ConnectTimeout: cfg.Timeouts.Connect,
			IdleTimeout:    idle,
			QueueTimeout:   cfg.Timeouts.Queue,
			Logger:         log,
			AccessLog:      accessLog,
		})
	}
	return balancers, listeners, nil
}

// poolOptions translates a pool's health settings. Drained and removed
// backends get the same time to finish as connections get at shutdown.
func poolOptions(p config.Pool, drain time.Duration, log *slog.Logger) tcplb.PoolOptions {
	o := tcplb.PoolOptions{
		SlowStart:    p.SlowStart,
		DrainTimeout: drain,
		Logger:       log,
		Passive: tcplb.PassiveCheck{
			MaxFails:           p.Passive.MaxFails,
			FailWindow:         p.Passive.FailWindow,
			Cooldown:           p.Passive.Cooldown,
			MaxCooldown:        p.Passive.MaxCooldown,
			MaxEjectionPercent: p.Passive.MaxEjectionPercent,
		},
	}
	if p.AllDown == config.AllDownRefuse {
		o.AllDown = tcplb.Refuse
	}
	if h := p.Health; h != nil {
		o.Health = &tcplb.HealthCheck{
			Interval: h.Interval,
			Timeout:  h.Timeout,
			Rise:     h.Rise,
			Fall:     h.Fall,
			Port:     h.Port,
			Send:     h.Send,
			Expect:   h.Expect,
		}
		if h.HTTP != nil {
			o.Health.HTTP = &tcplb.HTTPCheck{Path: h.HTTP.Path, Host: h.HTTP.Host, Status: h.HTTP.Status}
		}
	}
	return o
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func poolStrategy(cfg *config.Config, pool string) string {
	for _, p := range cfg.Pools {
		if p.Name == pool {
			return p.Strategy
		}
	}
	return ""
}

func backendList(p *tcplb.Pool) string {
	var addrs []string
	for _, b := range p.Backends() {
		addrs = append(addrs, b.Addr())
	}
	return strings.Join(addrs, ",")
}
