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
		{"zero strategy and weight are not defaulted", func(c *Config) {
			c.Pools[0].Strategy = ""
			c.Pools[0].Backends[1].Weight = 0
		}, []string{
			`pools[0].strategy: unknown strategy "" (known: hash, least-conn, least-latency, p2c, random, round-robin)`,
			"pools[0].backends[1].weight: 0: must be between 1 and 256",
		}},
		{"hash balance factor", func(c *Config) {
			c.Pools[0].Strategy = "hash"
			c.Pools[0].HashBalanceFactor = 100
		}, nil},
		{"bad hash balance factors", func(c *Config) {
			c.Pools[0].HashBalanceFactor = 150
			c.Pools = append(c.Pools, Pool{Name: "other", Strategy: "hash", HashBalanceFactor: 1, Backends: []Backend{{"b:1", 1}}})
		}, []string{
			"pools[0].hash_balance_factor: 150: only applies to strategy hash, not round-robin",
			"pools[1].hash_balance_factor: 1: must be 0 (off) or at least 100",
		}},
		{"pool required with two pools", func(c *Config) {
			c.Listeners[0].Pool = ""
			c.Pools = append(c.Pools, Pool{Name: "other", Strategy: "round-robin", Backends: []Backend{{"b:1", 1}}})
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
