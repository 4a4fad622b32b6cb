// Command tcplb is a TCP and UDP load balancer: a thin shell around the tcplb
// library that reads flags or a YAML config, serves its listeners and stops
// gracefully on SIGINT or SIGTERM.
//
// With no flags it listens on 127.0.0.1:8080 and balances round robin over
// 127.0.0.1:3001, 127.0.0.1:3002 and 127.0.0.1:3003. -demo also starts three
// small backends on those ports (TCP and UDP) and a UDP listener beside the
// TCP one, so that
//
//	go run ./cmd/tcplb -demo
//	nc 127.0.0.1 8080
//	nc -u 127.0.0.1 8080
//
// show balancing with nothing else running.
//
// Exit codes: 0 after a clean stop, 2 for bad flags or config (the message
// names the flag or key and the bad value), 1 for a runtime failure such as
// an address already in use.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
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
	protocol                   string
	udpResponses               int
	configFile                 string
	check, demo                bool
	logFormat                  string
	admin                      string
	engine                     string
	pidFile                    string
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
	fs.StringVar(&o.protocol, "protocol", config.ProtocolTCP, "what -listen and -backends carry: tcp, or udp (datagrams; each client address is a session with one backend)")
	fs.IntVar(&o.udpResponses, "udp-responses", 0, "with -protocol udp: end a session after `N` replies from the backend (1 suits DNS); 0: at the idle timeout (30s)")
	fs.StringVar(&o.configFile, "config", "", "YAML config `file` (instead of -listen, -backends, -strategy, -protocol and -udp-responses)")
	fs.BoolVar(&o.check, "check", false, "validate the configuration and exit: 0 if valid, 2 if not")
	fs.BoolVar(&o.demo, "demo", false, "also start three demo backends on 127.0.0.1:3001-3003 that greet, then echo")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.pidFile, "pidfile", "", "write the process id to `file` (an upgrade hands it to the new process)")
	fs.StringVar(&o.engine, "engine", "", "data path: epoll (event loops, Linux; the default there) or goroutines; replaces the config file's engine")
	fs.StringVar(&o.admin, "admin", "", "serve metrics, the JSON API and the dashboard on `host:port` (e.g. "+config.DefaultAdminListen+"; with -demo this is the default)")
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
		for _, f := range []string{"listen", "backends", "strategy", "protocol", "udp-responses"} {
			if o.set[f] {
				return nil, fmt.Errorf("-%s cannot be combined with -config: put it in the config file", f)
			}
		}
		cfg, err := config.Load(o.configFile)
		if err != nil {
			return nil, err
		}
		if err := engineFlag(cfg, o); err != nil {
			return nil, err
		}
		return cfg, adminFlag(cfg, o)
	}
	cfg := config.Default()
	if err := config.CheckListenAddr(o.listen); err != nil {
		return nil, fmt.Errorf("-listen: %v", err)
	}
	cfg.Listeners[0].Listen = o.listen
	switch o.protocol {
	case config.ProtocolTCP:
		if o.set["udp-responses"] {
			return nil, errors.New("-udp-responses: only with -protocol udp")
		}
	case config.ProtocolUDP:
		if o.udpResponses < 0 {
			return nil, fmt.Errorf("-udp-responses: %d: want 0 (end at the idle timeout) or more", o.udpResponses)
		}
		l := &cfg.Listeners[0]
		l.Protocol, l.UDPResponses, l.MaxDatagram = config.ProtocolUDP, o.udpResponses, config.DefaultMaxDatagram
	default:
		return nil, fmt.Errorf("-protocol: %q: want tcp or udp", o.protocol)
	}
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
	if o.demo && o.protocol == config.ProtocolTCP {
		demoUDPListener(cfg)
	}
	if err := engineFlag(cfg, o); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, adminFlag(cfg, o)
}

// engineFlag applies -engine to cfg.
func engineFlag(cfg *config.Config, o *options) error {
	if !o.set["engine"] {
		return nil
	}
	if _, err := tcplb.ParseEngine(o.engine); err != nil || o.engine == "" {
		return fmt.Errorf("-engine: %q: want epoll or goroutines", o.engine)
	}
	cfg.Engine = o.engine
	return nil
}

// setEventLoops sizes the event loops before the first listener starts:
// one loop per P the process was given, and one P more for everything
// else (health checks, the admin listener, log flushing), so that a loop
// can wait in epoll_wait itself instead of in Go's poller, which costs two
// system calls more per wake-up (see docs/engine.md).
func setEventLoops(cfg *config.Config) {
	if e, _ := tcplb.ParseEngine(cfg.Engine); e == tcplb.EngineGoroutines || runtime.GOOS != "linux" {
		return
	}
	n := runtime.GOMAXPROCS(0)
	if tcplb.SetEventLoops(n) == nil {
		runtime.GOMAXPROCS(n + 1)
	}
}

// adminFlag applies -admin (and -demo's default admin listener) to cfg: the
// flag's address replaces admin.listen and keeps the file's token.
func adminFlag(cfg *config.Config, o *options) error {
	addr := o.admin
	if addr == "" && o.demo && cfg.Admin == nil {
		addr = config.DefaultAdminListen
	}
	if addr == "" {
		return nil
	}
	if err := config.CheckListenAddr(addr); err != nil {
		return fmt.Errorf("-admin: %v", err)
	}
	if cfg.Admin == nil {
		cfg.Admin = &config.Admin{}
	}
	cfg.Admin.Listen = addr
	if err := config.CheckAdminExposure(addr, cfg.Admin.Token); err != nil {
		return fmt.Errorf("-admin: %v", err)
	}
	return nil
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

	// The path of this binary, taken now: an upgrade starts what is at
	// this path then, which is the new binary once it has been replaced.
	exe, err := os.Executable()
	if err != nil {
		log.Error("cannot find the executable's path", "err", err)
		return exitRuntime
	}
	sockets, err := inheritSockets()
	if err != nil {
		log.Error("cannot take the inherited sockets", "err", err)
		return exitRuntime
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	reloadSig, upgradeSig, canReload := reloadSignals()
	if canReload {
		signal.Notify(sigs, reloadSig, upgradeSig)
	}
	defer signal.Stop(sigs)

	if o.demo {
		demo, err := startDemo(log)
		if err != nil {
			log.Error("cannot start demo backends", "err", err)
			return exitRuntime
		}
		defer demo.Close()
	}

	setEventLoops(cfg)
	s := newServer(log, accessLog, sockets)
	if err := s.apply(cfg); err != nil {
		log.Error("cannot start", "err", err)
		return exitRuntime
	}
	sockets.release()
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile); err != nil {
			log.Error("cannot write the pid file", "err", err)
			s.shutdown(0)
			return exitRuntime
		}
	}
	if err := signalReady(); err != nil {
		log.Warn("cannot tell the old process we are ready", "err", err)
	}
	sdNotify(fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid()))
	log.Info("ready", "pid", os.Getpid())

	code := exitOK
	upgraded := false
loop:
	for {
		select {
		case sig := <-sigs:
			switch {
			case sig == os.Interrupt || sig == syscall.SIGTERM:
				break loop
			case sig == reloadSig:
				s.handleReload(o.configFile)
			case sig == upgradeSig:
				if upgraded = s.handleUpgrade(exe); upgraded {
					break loop
				}
			}
		case err := <-s.serveErr:
			log.Error("listener failed; shutting down", "err", err)
			code = exitRuntime
			break loop
		}
	}
	signal.Reset(os.Interrupt, syscall.SIGTERM) // a second signal now ends the process at once
	sdNotify("STOPPING=1")
	s.stopAccepting()
	drain := s.drainTimeout()
	log.Info("shutting down: no new connections; waiting for open ones", "drain", drain)
	s.shutdown(drain)
	if o.pidFile != "" && !upgraded {
		removePidFile(o.pidFile)
	}
	log.Info("stopped", "pid", os.Getpid())
	return code
}

// handleReload reloads the config file on SIGHUP.
func (s *server) handleReload(path string) {
	if path == "" {
		s.log.Warn("reload: nothing to reload: tcplb runs on flags, not -config")
		return
	}
	sdNotify(sdReloading())
	defer sdNotify("READY=1")
	s.log.Info("reload: reading the config", "config", path)
	if err := s.reload(path); err != nil {
		s.log.Error("reload failed; the running configuration is unchanged", "config", path, "err", err)
		return
	}
	s.log.Info("reload: done", "config", path)
}

// handleUpgrade starts the new binary on SIGUSR2 and reports whether it
// took over, in which case this process drains and exits.
func (s *server) handleUpgrade(exe string) bool {
	s.log.Info("upgrade: starting the new process", "exe", exe)
	pid, err := startUpgrade(exe, s.sockets)
	if err != nil {
		s.log.Error("upgrade failed; this process keeps serving", "exe", exe, "err", err)
		return false
	}
	s.log.Info("upgrade: the new process is ready; this one stops accepting and drains", "new_pid", pid)
	return true
}

func (s *server) drainTimeout() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Timeouts.Drain
}

// writePidFile writes this process's pid to path, atomically.
func writePidFile(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removePidFile removes path if it still names this process.
func removePidFile(path string) {
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
