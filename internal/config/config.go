package config

import (
	"os"
	"time"

	"github.com/tcplb/tcplb"
)

// Config is the whole configuration of the daemon.
type Config struct {
	// Listeners are the addresses to accept connections on, each forwarding
	// to a pool. At least one is required.
	Listeners []Listener `yaml:"listeners"`

	// Pools are the named sets of backends that listeners forward to. At
	// least one is required.
	Pools []Pool `yaml:"pools"`

	// Timeouts apply to every listener. Each has a default.
	Timeouts Timeouts `yaml:"timeouts"`
}

// Listener is an address that accepts client connections and forwards them
// to a pool.
type Listener struct {
	// Name identifies the listener in logs. It defaults to Listen and must
	// be unique among listeners.
	Name string `yaml:"name"`

	// Listen is the "host:port" address to listen on. The host may be empty
	// to listen on all interfaces; an IPv6 host is written in brackets, as
	// in "[::1]:8080". The port is 0 to 65535, 0 meaning any free port.
	// Required.
	Listen string `yaml:"listen"`

	// Pool is the name of the pool to forward connections to. It may be
	// empty when there is exactly one pool, which Parse then fills in.
	Pool string `yaml:"pool"`
}

// Pool is a named set of backends and the strategy that picks among them.
type Pool struct {
	// Name identifies the pool for listeners and logs. Required and unique
	// among pools.
	Name string `yaml:"name"`

	// Strategy is the name of a strategy registered with
	// tcplb.RegisterStrategy. It defaults to tcplb.DefaultStrategy
	// ("round-robin").
	Strategy string `yaml:"strategy"`

	// HashBalanceFactor bounds the load of each backend under strategy
	// "hash", in percent of its weighted share of the pool's open
	// connections: a client whose backend is at the bound goes to the next
	// backend of its preference list (see tcplb.NewMaglev). 0, the
	// default, disables the bound; otherwise it must be at least 100, and
	// 125 allows 25% over the average. It is an error with another
	// strategy.
	HashBalanceFactor int `yaml:"hash_balance_factor"`

	// Backends are the servers of the pool. At least one is required, and
	// no address may appear twice. In YAML a backend may be written as just
	// its address.
	Backends []Backend `yaml:"backends"`
}

// Backend is one server of a pool.
type Backend struct {
	// Addr is the "host:port" address to connect to, as accepted by
	// tcplb.CheckAddr: the host is required and may be a name, the port is
	// 1 to 65535. Required.
	Addr string `yaml:"addr"`

	// Weight is the backend's share of connections relative to the other
	// backends of the pool, 1 to tcplb.MaxWeight. It defaults to 1.
	Weight int `yaml:"weight"`
}

// Timeouts bound how long connections may take or wait.
type Timeouts struct {
	// Connect is how long dialing a backend may take. It defaults to 5s
	// and must be positive.
	Connect time.Duration `yaml:"connect"`

	// Idle is how long a connection may pass no data in either direction
	// before it is closed. It defaults to 1h; 0 disables the timeout.
	Idle time.Duration `yaml:"idle"`

	// Drain is how long open connections are given to finish on shutdown
	// before they are closed. It defaults to 30s; 0 closes them at once.
	Drain time.Duration `yaml:"drain"`
}

// Default timeouts.
const (
	defaultConnect = 5 * time.Second
	defaultIdle    = time.Hour
	defaultDrain   = 30 * time.Second
)

// Default returns the configuration the daemon runs without a configuration
// file: listener "main" on 127.0.0.1:8080 forwarding round-robin to pool
// "default" of 127.0.0.1:3001, 127.0.0.1:3002 and 127.0.0.1:3003, with the
// default timeouts. Each call returns a new Config.
func Default() *Config {
	c := &Config{
		Listeners: []Listener{{Name: "main", Listen: "127.0.0.1:8080", Pool: "default"}},
		Pools: []Pool{{
			Name:     "default",
			Strategy: tcplb.DefaultStrategy,
			Backends: []Backend{
				{Addr: "127.0.0.1:3001", Weight: 1},
				{Addr: "127.0.0.1:3002", Weight: 1},
				{Addr: "127.0.0.1:3003", Weight: 1},
			},
		}},
	}
	c.setDefaults()
	return c
}

// setDefaults methods fill in the defaults of a value before it is decoded,
// so that only the keys present in the file override them. The decoder
// calls setDefaults on each new element of a list; see decode.go.

func (c *Config) setDefaults() {
	c.Timeouts = Timeouts{Connect: defaultConnect, Idle: defaultIdle, Drain: defaultDrain}
}

func (p *Pool) setDefaults() { p.Strategy = tcplb.DefaultStrategy }

func (b *Backend) setDefaults() { b.Weight = 1 }

// decodeScalar lets a backend be written as just its address.
func (b *Backend) decodeScalar(s string) error {
	b.Addr = s
	return nil
}

// Parse decodes a YAML configuration, fills in defaults and validates the
// result. The error reports every problem found, one per line; see the
// package documentation for the format.
//
// Besides the per-key defaults, Parse sets each listener's Name to its
// Listen address if it is empty, and its Pool to the only pool's name if it
// is empty.
func Parse(data []byte) (*Config, error) {
	c, errs := parse(data)
	if len(errs) > 0 {
		return nil, errs.err()
	}
	return c, nil
}

// Load reads and parses the configuration file at path. Errors name the
// file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, errs := parse(data)
	if len(errs) > 0 {
		for _, e := range errs {
			e.File = path
		}
		return nil, errs.err()
	}
	return c, nil
}

// fillDerived sets the defaults that depend on other keys. It is called
// once c is valid.
func (c *Config) fillDerived() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Name == "" {
			l.Name = l.Listen
		}
		if l.Pool == "" && len(c.Pools) == 1 {
			l.Pool = c.Pools[0].Name
		}
	}
}
