package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	want := &Config{
		Listeners: []Listener{{Name: "main", Listen: "127.0.0.1:8080", Pool: "default", SNIFallback: "pool", Protocol: "tcp"}},
		Pools: []Pool{{
			Name:     "default",
			Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive,
			Backends: []Backend{{Addr: "127.0.0.1:3001", Weight: 1}, {Addr: "127.0.0.1:3002", Weight: 1}, {Addr: "127.0.0.1:3003", Weight: 1}},
		}},
		Timeouts: Timeouts{Connect: 5 * time.Second, Idle: time.Hour, Drain: 30 * time.Second, ProxyHeader: 3 * time.Second, ClientHello: 5 * time.Second, UDPIdle: 30 * time.Second},
	}
	got := Default()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Default() = %+v, want %+v", *got, *want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
	got.Pools[0].Backends[0].Weight = 7
	if again := Default(); !reflect.DeepEqual(again, want) {
		t.Errorf("Default() after changing an earlier result = %+v, want %+v", *again, *want)
	}
}

func TestLoadValid(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := Load(file)
			if err != nil {
				t.Fatalf("Load(%q) = _, %v, want no error", file, err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Load(%q).Validate() = %v, want nil", file, err)
			}
		})
	}

	// One file checked in full: anchors, merge keys, short backends, IPv6.
	file := "testdata/valid/multi.yaml"
	want := &Config{
		Listeners: []Listener{
			{Name: "web", Listen: "[::]:80", Pool: "web", SNIFallback: "pool", Protocol: "tcp"},
			{Name: "api", Listen: "0.0.0.0:8443", Pool: "api", SNIFallback: "pool", Protocol: "tcp"},
		},
		Pools: []Pool{
			{Name: "web", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{
				{Addr: "10.0.0.1:8080", Weight: 1}, {Addr: "10.0.0.2:8080", Weight: 3}, {Addr: "[fd00::3]:8080", Weight: 256},
			}},
			{Name: "api", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "api.internal:9000", Weight: 1}}},
		},
		Timeouts: Timeouts{Connect: 1500 * time.Millisecond, Idle: 0, Drain: 90 * time.Second, ProxyHeader: 3 * time.Second, ClientHello: 5 * time.Second, UDPIdle: 30 * time.Second},
	}
	if got, err := Load(file); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Load(%q) = %+v, %v, want %+v, nil", file, got, err, *want)
	}

	// And one with every check and limit.
	file = "testdata/valid/checks.yaml"
	want = &Config{
		Listeners: []Listener{
			{Name: "db", Listen: "127.0.0.1:5432", Pool: "db", SNIFallback: "pool", Protocol: "tcp"},
			{Name: "web", Listen: "127.0.0.1:8080", Pool: "web", SNIFallback: "pool", Protocol: "tcp"},
		},
		Pools: []Pool{
			{
				Name: "db", Strategy: "least-conn", AllDown: "refuse", SlowStart: 30 * time.Second,
				Health: &Health{
					Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 3, Fall: 2, Port: 9000,
					Send: "PING\r\n", Expect: "+PONG",
				},
				Passive: Passive{
					MaxFails: 5, FailWindow: 30 * time.Second, Cooldown: 5 * time.Second,
					MaxCooldown: time.Minute, MaxEjectionPercent: 34,
				},
				Backends: []Backend{
					{Addr: "10.0.0.1:5432", Weight: 1, MaxConns: 200},
					{Addr: "10.0.0.2:5432", Weight: 2, MaxConns: 200},
				},
			},
			{
				Name: "web", Strategy: "hash", AllDown: "fail-open",
				Health: &Health{
					Interval: 2 * time.Second, Rise: 2, Fall: 3,
					HTTP: &HTTPHealth{Path: "/healthz", Host: "web.internal", Status: 200},
				},
				Passive: Passive{
					MaxFails: 0, FailWindow: 10 * time.Second, Cooldown: 10 * time.Second,
					MaxCooldown: 5 * time.Minute, MaxEjectionPercent: 50,
				},
				Backends: []Backend{{Addr: "10.0.1.1:80", Weight: 1}, {Addr: "10.0.1.2:80", Weight: 1}},
			},
		},
		Timeouts: Timeouts{Connect: 5 * time.Second, Idle: time.Hour, Drain: 30 * time.Second, Queue: 2 * time.Second, ProxyHeader: 3 * time.Second, ClientHello: 5 * time.Second, UDPIdle: 30 * time.Second},
	}
	if got, err := Load(file); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Load(%q) = %+v, %v, want %+v, nil", file, got, err, *want)
	}

	// And one with every key of the edge: PROXY protocol, access lists,
	// limits and SNI routes.
	file = "testdata/valid/edge.yaml"
	want = &Config{
		Listeners: []Listener{
			{
				Name: "tls", Listen: "[::]:443", Pool: "web",
				ProxyProtocol: "accept", Trusted: []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"},
				Allow: []string{"0.0.0.0/0", "::/0"}, Deny: []string{"198.51.100.0/24", "2001:db8:bad::/48"},
				MaxConns: 10000, MaxConnsPerSource: 100, RatePerSource: 2.5, BurstPerSource: 20,
				SNIRoutes: []SNIRoute{
					{ServerName: "api.example.com", Pool: "api"},
					{ServerName: "*.example.com", Pool: "web"},
					{ServerName: "Admin.Example.COM.", Pool: "admin"},
				},
				SNIFallback: "close", Protocol: "tcp",
			},
			{Name: "plain", Listen: "0.0.0.0:80", Pool: "web", ProxyProtocol: "optional", Trusted: []string{"127.0.0.1", "::1"}, SNIFallback: "pool", Protocol: "tcp"},
		},
		Pools: []Pool{
			{Name: "web", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, ProxyProtocol: "v1", Backends: []Backend{{Addr: "10.1.0.1:443", Weight: 1}, {Addr: "10.1.0.2:443", Weight: 1}}},
			{Name: "api", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, ProxyProtocol: "v2", Backends: []Backend{{Addr: "10.2.0.1:8443", Weight: 1}}},
			{Name: "admin", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive, Backends: []Backend{{Addr: "10.3.0.1:443", Weight: 1}}},
		},
		Timeouts: Timeouts{Connect: 5 * time.Second, Idle: time.Hour, Drain: 30 * time.Second, ProxyHeader: time.Second, ClientHello: 2500 * time.Millisecond, UDPIdle: 30 * time.Second},
	}
	if got, err := Load(file); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Load(%q) = %+v, %v, want %+v, nil", file, got, err, *want)
	}

	// And one with each kind of discovery: file, DNS SRV and etcd.
	file = "testdata/valid/discovery.yaml"
	want = &Config{
		Listeners: []Listener{
			{Name: "app", Listen: "127.0.0.1:8080", Pool: "app", SNIFallback: "pool", Protocol: "tcp"},
			{Name: "db", Listen: "127.0.0.1:5432", Pool: "db", SNIFallback: "pool", Protocol: "tcp"},
			{Name: "cache", Listen: "127.0.0.1:6379", Pool: "cache", SNIFallback: "pool", Protocol: "tcp"},
		},
		Pools: []Pool{
			{
				Name: "app", Strategy: "round-robin", AllDown: "fail-open", Passive: defaultPassive,
				Discovery: &Discovery{File: "/etc/tcplb/app.txt"},
			},
			{
				Name: "db", Strategy: "least-conn", AllDown: "fail-open", SlowStart: 30 * time.Second, Passive: defaultPassive,
				Discovery: &Discovery{
					DNS: "_postgres._tcp.db.example.com.", DNSType: DNSTypeSRV, Interval: 10 * time.Second, DNSServer: "[2001:db8::53]:53",
				},
				Backends: []Backend{},
			},
			{
				Name: "cache", Strategy: "hash", AllDown: "fail-open", ProxyProtocol: "v2", Passive: defaultPassive,
				Health: &Health{Interval: 5 * time.Second, Rise: 2, Fall: 3},
				Discovery: &Discovery{Etcd: &Etcd{
					Endpoints:   []string{"http://10.0.0.21:2379", "https://etcd.internal:2379"},
					Prefix:      "/tcplb/cache/",
					DialTimeout: 5 * time.Second,
				}},
			},
		},
		Timeouts: defaultTimeouts,
	}
	if got, err := Load(file); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Load(%q) = %+v, %v, want %+v, nil", file, got, err, *want)
	}
}

// Each testdata/invalid/NAME.yaml fails with the error in NAME.err.
func TestLoadInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			golden, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			want := strings.TrimSpace(string(golden))
			c, err := Load(file)
			if err == nil || c != nil || err.Error() != want {
				t.Errorf("Load(%q) = %v, error:\n%v\nwant nil, error:\n%s", file, c, err, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "missing.yaml")
	c, err := Load(file)
	if c != nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), file) {
		t.Errorf("Load(%q) = %v, %v, want nil and an error naming the file", file, c, err)
	}
}

// The errors are *Error values that callers can inspect.
func TestLoadErrorValues(t *testing.T) {
	file := "testdata/invalid/values.yaml"
	_, err := Load(file)
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Load(%q) = _, %T, want a joined error", file, err)
	}
	errs := joined.Unwrap()
	if len(errs) < 2 {
		t.Fatalf("Load(%q) = _, %d errors, want several", file, len(errs))
	}
	var e *Error
	if !errors.As(errs[1], &e) {
		t.Fatalf("Load(%q) error %T, want *Error", file, errs[1])
	}
	want := &Error{File: file, Line: 3, Path: "listeners[0].pool", Msg: `"nope": no such pool (pools: app)`}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("Load(%q) second error = %+v, want %+v", file, *e, *want)
	}
}
