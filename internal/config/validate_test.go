package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // the lines of the error, exactly; nil for none
	}{
		{"default", func(c *Config) {}, nil},
		{"name and pool may be empty", func(c *Config) {
			c.Listeners[0].Name = ""
			c.Listeners[0].Pool = ""
		}, nil},
		{"idle and drain may be 0", func(c *Config) {
			c.Timeouts.Idle = 0
			c.Timeouts.Drain = 0
		}, nil},
		{"zero value", func(c *Config) { *c = Config{} }, []string{
			"listeners: at least one listener is required",
			"pools: at least one pool is required",
			`timeouts.connect: "0s": must be greater than 0`,
		}},
		{"zero strategy, all_down and weight are not defaulted", func(c *Config) {
			c.Pools[0].Strategy = ""
			c.Pools[0].AllDown = ""
			c.Pools[0].Backends[1].Weight = 0
		}, []string{
			`pools[0].strategy: unknown strategy "" (known: hash, least-conn, least-latency, p2c, random, round-robin)`,
			`pools[0].all_down: "": want fail-open or refuse`,
			"pools[0].backends[1].weight: 0: must be between 1 and 256",
		}},
		{"zero passive is off, nil health is off", func(c *Config) {
			c.Pools[0].Passive = Passive{}
			c.Pools[0].Health = nil
		}, nil},
		{"passive off leaves its other fields unchecked", func(c *Config) {
			c.Pools[0].Passive = Passive{MaxFails: 0, FailWindow: -1, Cooldown: -1, MaxCooldown: -2, MaxEjectionPercent: 500}
		}, nil},
		{"checks and limits", func(c *Config) {
			p := &c.Pools[0]
			p.AllDown = "refuse"
			p.SlowStart = time.Minute
			p.Health = &Health{Interval: time.Second, Timeout: 5 * time.Second, Rise: 1, Fall: 1, Port: 65535,
				Send: "PING\r\n", Expect: strings.Repeat("x", MaxExpect)}
			p.Passive = Passive{MaxFails: 1, FailWindow: time.Second, Cooldown: time.Minute, MaxCooldown: time.Minute, MaxEjectionPercent: 100}
			p.Backends[0].MaxConns = 1
			p.Backends[1].MaxConns = 1 << 20
			c.Timeouts.Queue = time.Second
		}, nil},
		{"health timeout 0 and http with any status", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, HTTP: &HTTPHealth{Path: "/"}}
		}, nil},
		{"http with host and status", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, HTTP: &HTTPHealth{Path: "/a%20b?x=1", Host: "app.example:8080", Status: 599}}
		}, nil},
		{"slow start 0 with hash", func(c *Config) {
			c.Pools[0].Strategy = "hash"
			c.Pools[0].SlowStart = 0
		}, nil},
		{"slow start with hash", func(c *Config) {
			c.Pools[0].Strategy = "hash"
			c.Pools[0].SlowStart = 30 * time.Second
		}, []string{
			`pools[0].slow_start: "30s": does not apply to strategy hash: ramping would move clients between backends`,
		}},
		{"zero health is not defaulted", func(c *Config) {
			c.Pools[0].Health = &Health{}
		}, []string{
			`pools[0].health.interval: "0s": must be greater than 0`,
			"pools[0].health.rise: 0: must be at least 1",
			"pools[0].health.fall: 0: must be at least 1",
		}},
		{"zero http is not defaulted", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, HTTP: &HTTPHealth{}}
		}, []string{
			`pools[0].health.http.path: "": must start with "/"`,
		}},
		{"bad checks and limits", func(c *Config) {
			p := &c.Pools[0]
			p.AllDown = "maybe"
			p.SlowStart = -time.Second
			p.Health = &Health{Interval: -time.Second, Timeout: -time.Second, Rise: -1, Fall: 0, Port: -1,
				Send: "PING", Expect: strings.Repeat("x", MaxExpect+1),
				HTTP: &HTTPHealth{Path: "/a b", Host: "a\r\nX: y", Status: 99}}
			p.Passive = Passive{MaxFails: 2, FailWindow: 0, Cooldown: 0, MaxCooldown: -time.Second, MaxEjectionPercent: 0}
			p.Backends[2].MaxConns = -1
			c.Timeouts.Queue = -time.Second
		}, []string{
			`pools[0].all_down: "maybe": want fail-open or refuse`,
			`pools[0].slow_start: "-1s": must not be negative`,
			`pools[0].health.interval: "-1s": must be greater than 0`,
			`pools[0].health.timeout: "-1s": must not be negative (0 means the interval)`,
			"pools[0].health.rise: -1: must be at least 1",
			"pools[0].health.fall: 0: must be at least 1",
			"pools[0].health.port: -1: must be between 1 and 65535, or 0 for the backend's port",
			`pools[0].health.expect: "` + strings.Repeat("x", 61) + `...": 65537 bytes: must be at most 65536`,
			"pools[0].health.http: cannot be combined with send or expect",
			`pools[0].health.http.path: "/a b": must be printable ASCII without spaces`,
			`pools[0].health.http.host: "a\r\nX: y": must be printable ASCII without spaces`,
			"pools[0].health.http.status: 99: must be between 100 and 599, or 0 for any 2xx or 3xx",
			`pools[0].passive.fail_window: "0s": must be greater than 0`,
			`pools[0].passive.cooldown: "0s": must be greater than 0`,
			`pools[0].passive.max_cooldown: "-1s": must be greater than 0`,
			"pools[0].passive.max_ejection_percent: 0: must be between 1 and 100",
			"pools[0].backends[2].max_conns: -1: must not be negative",
			`timeouts.queue: "-1s": must not be negative`,
		}},
		{"negative max_fails", func(c *Config) {
			c.Pools[0].Passive.MaxFails = -1
			c.Pools[0].Passive.Cooldown = 0
		}, []string{
			"pools[0].passive.max_fails: -1: must not be negative (0 disables passive checks)",
		}},
		{"max_cooldown below cooldown", func(c *Config) {
			c.Pools[0].Passive.MaxCooldown = 5 * time.Second
		}, []string{
			`pools[0].passive.max_cooldown: "5s": must be at least cooldown ("10s")`,
		}},
		{"out of range port, status and percent", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, Port: 65536, HTTP: &HTTPHealth{Path: "healthz", Status: 600}}
			c.Pools[0].Passive.MaxEjectionPercent = 101
		}, []string{
			"pools[0].health.port: 65536: must be between 1 and 65535, or 0 for the backend's port",
			`pools[0].health.http.path: "healthz": must start with "/"`,
			"pools[0].health.http.status: 600: must be between 100 and 599, or 0 for any 2xx or 3xx",
			"pools[0].passive.max_ejection_percent: 101: must be between 1 and 100",
		}},
		{"non-ASCII http path and host", func(c *Config) {
			c.Pools[0].Health = &Health{Interval: time.Second, Rise: 1, Fall: 1, HTTP: &HTTPHealth{Path: "/é", Host: "\x7f"}}
		}, []string{
			`pools[0].health.http.path: "/é": must be printable ASCII without spaces`,
			`pools[0].health.http.host: "\x7f": must be printable ASCII without spaces`,
		}},
		{"hash balance factor", func(c *Config) {
			c.Pools[0].Strategy = "hash"
			c.Pools[0].HashBalanceFactor = 100
		}, nil},
		{"bad hash balance factors", func(c *Config) {
			c.Pools[0].HashBalanceFactor = 150
			c.Pools = append(c.Pools, Pool{Name: "other", Strategy: "hash", HashBalanceFactor: 1, AllDown: "fail-open", Backends: []Backend{{Addr: "b:1", Weight: 1}}})
		}, []string{
			"pools[0].hash_balance_factor: 150: only applies to strategy hash, not round-robin",
			"pools[1].hash_balance_factor: 1: must be 0 (off) or at least 100",
		}},
		{"pool required with two pools", func(c *Config) {
			c.Listeners[0].Pool = ""
			c.Pools = append(c.Pools, Pool{Name: "other", Strategy: "round-robin", AllDown: "fail-open", Backends: []Backend{{Addr: "b:1", Weight: 1}}})
		}, []string{
			"listeners[0].pool: required when there is more than one pool (pools: default, other)",
		}},
		{"odd pool names are quoted", func(c *Config) {
			c.Listeners[0].Pool = "nope"
			c.Pools[0].Name = "my pool"
		}, []string{
			`listeners[0].pool: "nope": no such pool (pools: "my pool")`,
		}},
		{"bad values", func(c *Config) {
			c.Listeners[0].Listen = "localhost"
			c.Pools[0].Backends[0].Addr = "[::1]:99999"
			c.Pools[0].Backends[2].Addr = "127.0.0.1:3002"
			c.Timeouts.Connect = -time.Second
			c.Timeouts.Idle = -time.Second
			c.Timeouts.Drain = -time.Second
		}, []string{
			`listeners[0].listen: "localhost": missing port in address`,
			`pools[0].backends[0].addr: "[::1]:99999": invalid port`,
			`pools[0].backends[2].addr: "127.0.0.1:3002": duplicate backend address`,
			`timeouts.connect: "-1s": must be greater than 0`,
			`timeouts.idle: "-1s": must not be negative (0 disables the timeout)`,
			`timeouts.drain: "-1s": must not be negative`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			before := slices.Clone(c.Listeners)
			err := c.Validate()
			want := strings.Join(tt.want, "\n")
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("Validate(%+v) = %v, want nil", *c, err)
			case tt.want != nil && (err == nil || err.Error() != want):
				t.Errorf("Validate(%+v) = %v, want:\n%s", *c, err, want)
			}
			if !slices.Equal(c.Listeners, before) {
				t.Errorf("Validate changed the listeners from %+v to %+v", before, c.Listeners)
			}
		})
	}
}
