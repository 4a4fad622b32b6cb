package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var defaultTimeouts = Timeouts{Connect: 5 * time.Second, Idle: time.Hour, Drain: 30 * time.Second}

var parseTests = []struct {
	name string
	in   string
	want *Config
}{
	{
		name: "full",
		in: `
listeners:
  - name: main
    listen: 127.0.0.1:8080
    pool: app
pools:
  - name: app
    strategy: round-robin
    backends:
      - { addr: 127.0.0.1:3001, weight: 1 }
      - { addr: 127.0.0.1:3002, weight: 1 }
timeouts:
  connect: 5s
  idle: 1h
  drain: 30s
`,
		want: &Config{
			Listeners: []Listener{{Name: "main", Listen: "127.0.0.1:8080", Pool: "app"}},
			Pools: []Pool{{
				Name:     "app",
				Strategy: "round-robin",
				Backends: []Backend{{"127.0.0.1:3001", 1}, {"127.0.0.1:3002", 1}},
			}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "defaults",
		in: `
listeners:
  - listen: :8080
pools:
  - name: app
    backends:
      - addr: 127.0.0.1:3001
`,
		want: &Config{
			Listeners: []Listener{{Name: ":8080", Listen: ":8080", Pool: "app"}},
			Pools:     []Pool{{Name: "app", Strategy: "round-robin", Backends: []Backend{{"127.0.0.1:3001", 1}}}},
			Timeouts:  defaultTimeouts,
		},
	},
	{
		name: "short backends",
		in: `
listeners: [{listen: "127.0.0.1:8080"}]
pools:
  - name: app
    backends:
      - 127.0.0.1:3001
      - { addr: 127.0.0.1:3002, weight: 5 }
      - "[::1]:3003"
      - backend.example:3004
`,
		want: &Config{
			Listeners: []Listener{{Name: "127.0.0.1:8080", Listen: "127.0.0.1:8080", Pool: "app"}},
			Pools: []Pool{{Name: "app", Strategy: "round-robin", Backends: []Backend{
				{"127.0.0.1:3001", 1}, {"127.0.0.1:3002", 5}, {"[::1]:3003", 1}, {"backend.example:3004", 1},
			}}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "two pools",
		in: `
listeners:
  - {name: a, listen: "[::1]:0", pool: two}
  - {name: b, listen: "[::1]:0", pool: one}
  - {listen: "0.0.0.0:65535", pool: one}
pools:
  - {name: one, backends: [a:1]}
  - {name: two, strategy: round-robin, backends: [{addr: b:1, weight: 256}, b:2]}
`,
		want: &Config{
			Listeners: []Listener{
				{Name: "a", Listen: "[::1]:0", Pool: "two"},
				{Name: "b", Listen: "[::1]:0", Pool: "one"},
				{Name: "0.0.0.0:65535", Listen: "0.0.0.0:65535", Pool: "one"},
			},
			Pools: []Pool{
				{Name: "one", Strategy: "round-robin", Backends: []Backend{{"a:1", 1}}},
				{Name: "two", Strategy: "round-robin", Backends: []Backend{{"b:1", 256}, {"b:2", 1}}},
			},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "null keeps defaults",
		in: `
listeners:
  - {listen: ":1", name: ~, pool: null}
pools:
  - name: app
    strategy:
    backends:
      - { addr: a:1, weight: ~ }
      - a:2
timeouts:
  # all commented out
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "app"}},
			Pools: []Pool{{Name: "app", Strategy: "round-robin", Backends: []Backend{
				{"a:1", 1}, {"a:2", 1},
			}}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "durations",
		in: `
listeners: [{listen: ":1"}]
pools: [{name: p, backends: [a:1]}]
timeouts: {connect: 1m30s, idle: 0, drain: 0s}
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "p"}},
			Pools:     []Pool{{Name: "p", Strategy: "round-robin", Backends: []Backend{{"a:1", 1}}}},
			Timeouts:  Timeouts{Connect: 90 * time.Second, Idle: 0, Drain: 0},
		},
	},
	{
		name: "only some timeouts",
		in: `
listeners: [{listen: ":1"}]
pools: [{name: p, backends: [a:1]}]
timeouts:
  idle: 10m
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "p"}},
			Pools:     []Pool{{Name: "p", Strategy: "round-robin", Backends: []Backend{{"a:1", 1}}}},
			Timeouts:  Timeouts{Connect: 5 * time.Second, Idle: 10 * time.Minute, Drain: 30 * time.Second},
		},
	},
	{
		name: "integer forms",
		in: `
listeners: [{listen: ":1"}]
pools: [{name: p, backends: [{addr: a:1, weight: 010}, {addr: a:2, weight: 0x10}, {addr: a:3, weight: +2}, {addr: a:4, weight: 1_0}]}]
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "p"}},
			Pools: []Pool{{Name: "p", Strategy: "round-robin", Backends: []Backend{
				{"a:1", 10}, {"a:2", 16}, {"a:3", 2}, {"a:4", 10},
			}}},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "scalars as strings",
		in: `
listeners: [{listen: ":1", name: 1.10, pool: 2024}]
pools: [{name: 2024, backends: [a:1]}]
`,
		want: &Config{
			Listeners: []Listener{{Name: "1.10", Listen: ":1", Pool: "2024"}},
			Pools:     []Pool{{Name: "2024", Strategy: "round-robin", Backends: []Backend{{"a:1", 1}}}},
			Timeouts:  defaultTimeouts,
		},
	},
	{
		name: "anchors and merge keys",
		in: `
listeners:
  - &l {listen: ":1", pool: a}
  - <<: *l
    listen: ":2"
pools:
  - &a
    name: a
    backends: &bs [x:1, {addr: x:2, weight: 2}]
  - <<: *a
    name: b
  - <<: [{name: c, backends: [y:1]}, *a]
  - <<: [*a, {name: x, backends: [y:1]}]
    name: d
    backends: *bs
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "a"}, {Name: ":2", Listen: ":2", Pool: "a"}},
			Pools: []Pool{
				{Name: "a", Strategy: "round-robin", Backends: []Backend{{"x:1", 1}, {"x:2", 2}}},
				{Name: "b", Strategy: "round-robin", Backends: []Backend{{"x:1", 1}, {"x:2", 2}}},
				{Name: "c", Strategy: "round-robin", Backends: []Backend{{"y:1", 1}}},
				{Name: "d", Strategy: "round-robin", Backends: []Backend{{"x:1", 1}, {"x:2", 2}}},
			},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "hash balance factor",
		in: `
listeners: [{listen: ":1", pool: bounded}]
pools:
  - {name: bounded, strategy: hash, hash_balance_factor: 125, backends: [a:1, a:2]}
  - {name: plain, strategy: hash, hash_balance_factor: 0, backends: [a:1]}
  - {name: other, strategy: least-conn, hash_balance_factor: ~, backends: [a:1]}
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "bounded"}},
			Pools: []Pool{
				{Name: "bounded", Strategy: "hash", HashBalanceFactor: 125, Backends: []Backend{{"a:1", 1}, {"a:2", 1}}},
				{Name: "plain", Strategy: "hash", Backends: []Backend{{"a:1", 1}}},
				{Name: "other", Strategy: "least-conn", Backends: []Backend{{"a:1", 1}}},
			},
			Timeouts: defaultTimeouts,
		},
	},
	{
		name: "document markers and comments",
		in: `# tcplb
---
listeners: [{listen: ":1"}] # main
pools: [{name: p, backends: [a:1]}]
...
`,
		want: &Config{
			Listeners: []Listener{{Name: ":1", Listen: ":1", Pool: "p"}},
			Pools:     []Pool{{Name: "p", Strategy: "round-robin", Backends: []Backend{{"a:1", 1}}}},
			Timeouts:  defaultTimeouts,
		},
	},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q) = _, %v, want no error", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, *got, *tt.want)
			}
		})
	}
}

// A valid base for error cases, which change or add to it.
const okListeners = "listeners: [{listen: \":1\"}]\n"
const okPools = "pools: [{name: p, backends: [a:1]}]\n"

var parseErrorTests = []struct {
	name string
	in   string
	want []string // the lines of the error, exactly
}{
	// The document.
	{"empty", "", []string{"empty configuration: want a mapping of listeners, pools and timeouts"}},
	{"comments only", "# listeners:\n", []string{"empty configuration: want a mapping of listeners, pools and timeouts"}},
	{"null document", "---\n~\n", []string{"line 2: empty configuration: want a mapping of listeners, pools and timeouts"}},
	{"list document", "- a\n", []string{"line 1: want a mapping of listeners, pools and timeouts, got a list"}},
	{"scalar document", "tcplb", []string{`line 1: "tcplb": want a mapping of listeners, pools and timeouts`}},
	{"second document", okListeners + okPools + "---\nlisteners: []\n", []string{"line 3: found a second document; want only one"}},
	{"unknown top-level key", okListeners + okPools + "timeout: {idle: 1s}\n", []string{
		"line 3: timeout: unknown key (known: listeners, pools, timeouts)",
	}},
	{"non-string key", okListeners + okPools + "? [a]\n: b\n", []string{"line 3: want a string key, got a list"}},
	{"odd key", okListeners + okPools + "\"a\\nb\": 1\n", []string{
		`line 3: "a\nb": unknown key (known: listeners, pools, timeouts)`,
	}},
	{"unsupported tag", okListeners + okPools + "timeouts: !custom {idle: 1s}\n", []string{
		"line 3: timeouts: unsupported tag !custom",
	}},

	// Missing and mistyped sections.
	{"no listeners", okPools, []string{"listeners: at least one listener is required"}},
	{"empty listeners", "listeners: []\n" + okPools, []string{"line 1: listeners: at least one listener is required"}},
	{"no pools", okListeners, []string{"pools: at least one pool is required"}},
	{"pools is a mapping", okListeners + "pools: {name: p}\n", []string{"line 2: pools: want a list, got a mapping"}},
	{"pools is a scalar", okListeners + "pools: p\n", []string{`line 2: pools: "p": want a list`}},
	{"pool is a list", okListeners + "pools: [[a]]\n", []string{"line 2: pools[0]: want a mapping, got a list"}},
	{"timeouts is a list", okListeners + okPools + "timeouts: [1s]\n", []string{"line 3: timeouts: want a mapping, got a list"}},

	// Keys.
	{"unknown key", okListeners + "pools:\n  - name: p\n    bakends: [a:1]\n    backends: [a:1]\n", []string{
		"line 4: pools[0].bakends: unknown key (known: name, strategy, hash_balance_factor, backends)",
	}},
	{"duplicate key", okListeners + "pools:\n  - name: p\n    name: q\n    backends: [a:1]\n", []string{
		"line 4: pools[0].name: duplicate key",
	}},
	{"duplicate top-level key", okListeners + okPools + okPools, []string{"line 3: pools: duplicate key"}},

	// Pools and backends.
	{"pool without name", okListeners + "pools: [{backends: [a:1]}]\n", []string{"line 2: pools[0].name: required"}},
	{"duplicate pool name", "listeners: [{listen: \":1\", pool: app}]\npools:\n  - {name: app, backends: [a:1]}\n  - {name: app, backends: [a:1]}\n", []string{
		`line 4: pools[1].name: "app": duplicate pool name`,
	}},
	{"unknown strategy", okListeners + "pools: [{name: p, strategy: x, backends: [a:1]}]\n", []string{
		`line 2: pools[0].strategy: unknown strategy "x" (known: hash, least-conn, least-latency, p2c, random, round-robin)`,
	}},
	{"hash balance factor below 100", okListeners + "pools: [{name: p, strategy: hash, hash_balance_factor: 99, backends: [a:1]}]\n", []string{
		"line 2: pools[0].hash_balance_factor: 99: must be 0 (off) or at least 100",
	}},
	{"negative hash balance factor", okListeners + "pools: [{name: p, strategy: hash, hash_balance_factor: -125, backends: [a:1]}]\n", []string{
		"line 2: pools[0].hash_balance_factor: -125: must be 0 (off) or at least 100",
	}},
	{"hash balance factor without hash", okListeners + "pools:\n  - name: p\n    hash_balance_factor: 150\n    backends: [a:1]\n", []string{
		"line 4: pools[0].hash_balance_factor: 150: only applies to strategy hash, not round-robin",
	}},
	{"hash balance factor not an integer", okListeners + "pools: [{name: p, strategy: hash, hash_balance_factor: 1.25, backends: [a:1]}]\n", []string{
		"line 2: pools[0].hash_balance_factor: 1.25: want an integer",
	}},
	{"no backends", okListeners + "pools: [{name: p}]\n", []string{"line 2: pools[0].backends: at least one backend is required"}},
	{"empty backends", okListeners + "pools: [{name: p, backends: []}]\n", []string{"line 2: pools[0].backends: at least one backend is required"}},
	{"backends is a scalar", okListeners + "pools: [{name: p, backends: a:1}]\n", []string{`line 2: pools[0].backends: "a:1": want a list`}},
	{"backend is a list", okListeners + "pools: [{name: p, backends: [[a:1]]}]\n", []string{"line 2: pools[0].backends[0]: want a mapping, got a list"}},
	{"null backend", okListeners + "pools:\n  - name: p\n    backends:\n      - a:1\n      - ~\n", []string{
		"line 6: pools[0].backends[1].addr: required",
	}},
	{"backend without addr", okListeners + "pools:\n  - name: p\n    backends:\n      - weight: 2\n", []string{
		"line 5: pools[0].backends[0].addr: required",
	}},
	{"bad port", okListeners + "pools:\n  - name: p\n    backends:\n      - a:1\n      - { addr: \"x:y\" }\n", []string{
		`line 6: pools[0].backends[1].addr: "x:y": invalid port`,
	}},
	{"missing host", okListeners + "pools: [{name: p, backends: [\":1\"]}]\n", []string{`line 2: pools[0].backends[0].addr: ":1": missing host`}},
	{"missing port", okListeners + "pools: [{name: p, backends: [localhost]}]\n", []string{
		`line 2: pools[0].backends[0].addr: "localhost": missing port in address`,
	}},
	{"duplicate backend", okListeners + "pools: [{name: p, backends: [a:1, b:1, a:1]}]\n", []string{
		`line 2: pools[0].backends[2].addr: "a:1": duplicate backend address`,
	}},
	{"weight 0", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: 0}]}]\n", []string{
		"line 2: pools[0].backends[0].weight: 0: must be between 1 and 256",
	}},
	{"weight too big", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: 257}]}]\n", []string{
		"line 2: pools[0].backends[0].weight: 257: must be between 1 and 256",
	}},
	{"negative weight", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: -1}]}]\n", []string{
		"line 2: pools[0].backends[0].weight: -1: must be between 1 and 256",
	}},
	{"weight overflows int", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: 99999999999999999999}]}]\n", []string{
		"line 2: pools[0].backends[0].weight: 99999999999999999999: integer out of range",
	}},
	{"weight not integer", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: 1.5}]}]\n", []string{
		"line 2: pools[0].backends[0].weight: 1.5: want an integer",
	}},
	{"weight quoted", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: \"2\"}]}]\n", []string{
		`line 2: pools[0].backends[0].weight: "2": want an integer`,
	}},
	{"weight binary", okListeners + "pools: [{name: p, backends: [{addr: a:1, weight: !!binary AQ==}]}]\n", []string{
		`line 2: pools[0].backends[0].weight: "AQ==": unsupported tag !!binary`,
	}},
	{"name is a mapping", okListeners + "pools: [{name: {a: 1}, backends: [a:1]}]\n", []string{
		"line 2: pools[0].name: want a string, got a mapping",
	}},

	// Listeners.
	{"listener without listen", "listeners: [{name: x}]\n" + okPools, []string{"line 1: listeners[0].listen: required"}},
	{"listen without port", "listeners: [{listen: 8080}]\n" + okPools, []string{
		`line 1: listeners[0].listen: "8080": missing port in address`,
	}},
	{"listen port too big", "listeners: [{listen: \":65536\"}]\n" + okPools, []string{`line 1: listeners[0].listen: ":65536": invalid port`}},
	{"listen IPv6 without brackets", "listeners: [{listen: \"::1:80\"}]\n" + okPools, []string{
		`line 1: listeners[0].listen: "::1:80": too many colons in address`,
	}},
	{"no such pool", "listeners: [{listen: \":1\", pool: nope}]\npools: [{name: app, backends: [a:1]}, {name: web, backends: [a:1]}]\n", []string{
		`line 1: listeners[0].pool: "nope": no such pool (pools: app, web)`,
	}},
	{"pool required", okListeners + "pools: [{name: app, backends: [a:1]}, {name: web, backends: [a:1]}]\n", []string{
		"line 1: listeners[0].pool: required when there is more than one pool (pools: app, web)",
	}},
	{"duplicate listener name", "listeners: [{name: a, listen: \":1\"}, {name: a, listen: \":2\"}]\n" + okPools, []string{
		`line 1: listeners[1].name: "a": duplicate listener name`,
	}},
	{"duplicate listen address", "listeners: [{listen: \":1\"}, {listen: \":1\"}]\n" + okPools, []string{
		`line 1: listeners[1].listen: ":1": duplicate listen address`,
	}},
	{"duplicate default name", "listeners: [{listen: \":0\"}, {listen: \":0\"}]\n" + okPools, []string{
		`line 1: listeners[1].name: ":0": duplicate listener name (it defaults to the listen address)`,
	}},

	// Timeouts.
	{"invalid duration", okListeners + okPools + "timeouts: {idle: abc}\n", []string{`line 3: timeouts.idle: "abc": invalid duration`}},
	{"duration as integer", okListeners + okPools + "timeouts: {connect: 5}\n", []string{"line 3: timeouts.connect: 5: want a duration like 5s"}},
	{"duration as quoted integer", okListeners + okPools + "timeouts: {connect: \"5\"}\n", []string{`line 3: timeouts.connect: "5": want a duration like 5s`}},
	{"duration as float", okListeners + okPools + "timeouts: {connect: 1.5}\n", []string{"line 3: timeouts.connect: 1.5: want a duration like 5s"}},
	{"duration overflow", okListeners + okPools + "timeouts: {drain: 9999999999h}\n", []string{`line 3: timeouts.drain: "9999999999h": invalid duration`}},
	{"duration is a list", okListeners + okPools + "timeouts: {drain: [1s]}\n", []string{"line 3: timeouts.drain: want a duration like 5s, got a list"}},
	{"zero connect", okListeners + okPools + "timeouts: {connect: 0}\n", []string{`line 3: timeouts.connect: "0s": must be greater than 0`}},
	{"negative durations", okListeners + okPools + "timeouts:\n  connect: -1s\n  idle: -1m\n  drain: -1h\n", []string{
		`line 4: timeouts.connect: "-1s": must be greater than 0`,
		`line 5: timeouts.idle: "-1m0s": must not be negative (0 disables the timeout)`,
		`line 6: timeouts.drain: "-1h0m0s": must not be negative`,
	}},

	// Aliases.
	{"alias of the wrong kind", "listeners: &l\n  - {listen: \":1\", pool: *l}\n" + okPools, []string{
		"line 2: listeners[0].pool: want a string, got a list",
	}},
	{"merge of itself", okListeners + "pools:\n  - &p\n    <<: *p\n    name: p\n    backends: [a:1]\n", []string{
		"line 4: pools[0]: alias *p refers to a node that contains it",
	}},
	{"merge of a scalar", okListeners + "pools:\n  - <<: x\n    name: p\n    backends: [a:1]\n", []string{
		`line 3: pools[0]: "x": want a mapping`,
	}},
	{"merge with unknown key", okListeners + "x: &x {port: 1}\npools:\n  - <<: *x\n    name: p\n    backends: [a:1]\n", []string{
		"line 2: x: unknown key (known: listeners, pools, timeouts)",
		"line 2: pools[0].port: unknown key (known: name, strategy, hash_balance_factor, backends)",
	}},

	// Junk.
	{"deep nesting", okListeners + "pools: " + strings.Repeat("[", 500) + strings.Repeat("]", 500) + "\n", []string{
		"line 2: pools[0]: want a mapping, got a list",
	}},
	{"deep mappings", okListeners + okPools + "timeouts: " + strings.Repeat("{a: ", 500) + strings.Repeat("}", 500) + "\n", []string{
		"line 3: timeouts.a: unknown key (known: connect, idle, drain)",
	}},

	// Many errors at once, in line order, without knock-on errors.
	{"several", `
listeners:
  - listen: 127.0.0.1:8080
    pool: nope
pools:
  - name: app
    strategy: x
    backends:
      - { addr: x:y, weight: 0 }
  - name: web
    backends: {addr: a:1}
timeouts:
  idle: abc
`, []string{
		`line 4: listeners[0].pool: "nope": no such pool (pools: app, web)`,
		`line 7: pools[0].strategy: unknown strategy "x" (known: hash, least-conn, least-latency, p2c, random, round-robin)`,
		`line 9: pools[0].backends[0].addr: "x:y": invalid port`,
		`line 9: pools[0].backends[0].weight: 0: must be between 1 and 256`,
		`line 11: pools[1].backends: want a list, got a mapping`,
		`line 13: timeouts.idle: "abc": invalid duration`,
	}},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			want := strings.Join(tt.want, "\n")
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, nil, want error:\n%s", tt.in, *got, want)
			}
			if got != nil || err.Error() != want {
				t.Errorf("Parse(%q) = %v, error:\n%v\nwant nil, error:\n%s", tt.in, got, err, want)
			}
		})
	}
}

func TestParseSyntaxError(t *testing.T) {
	for _, in := range []string{
		"listeners: [\n",
		"pools:\n  - name: a\n   backends: []\n",
		"a: *nope\n",
		"a: b: c\n",
		"\tlisteners: []\n",
		"a: \"\x00\"\n",
		strings.Repeat("[", 20000),
		"pools: " + strings.Repeat("- ", 20000) + "x\n",
	} {
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), "invalid YAML: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = _, %v, want one line with \"invalid YAML: \"", in, err)
		}
	}
}

func TestParseTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString(okListeners + "pools:\n  - name: p\n    backends:\n")
	for i := range 30 {
		fmt.Fprintf(&b, "      - {addr: a:%d, weight: 0}\n", i+1)
	}
	_, err := Parse([]byte(b.String()))
	if err == nil {
		t.Fatalf("Parse(30 bad weights) = _, nil, want errors")
	}
	lines := strings.Split(err.Error(), "\n")
	wantLast := "too many errors (10 more)"
	if len(lines) != maxErrors+1 || lines[maxErrors] != wantLast ||
		lines[0] != "line 5: pools[0].backends[0].weight: 0: must be between 1 and 256" {
		t.Errorf("Parse(30 bad weights) = _, %d lines ending %q, want %d lines ending %q", len(lines), lines[len(lines)-1], maxErrors+1, wantLast)
	}
}

// Aliases let a small document describe a huge one; decoding must give up
// rather than take exponential time or memory.
func TestParseAliasBomb(t *testing.T) {
	var merges, lists strings.Builder
	merges.WriteString(okListeners + "pools:\n  - &m0 {name: p, backends: [a:1]}\n")
	lists.WriteString(okListeners + "pools:\n  - &p\n    name: p\n    backends:\n")
	for i := range 1000 {
		fmt.Fprintf(&lists, "      - a:%d\n", i+1)
	}
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&merges, "  - &m%d {<<: [*m%[2]d, *m%[2]d, *m%[2]d, *m%[2]d]}\n", i, i-1)
	}
	for range 1000 {
		lists.WriteString("  - *p\n")
	}
	for name, in := range map[string]string{"merges": merges.String(), "lists": lists.String()} {
		start := time.Now()
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), "too many aliases to expand") {
			t.Errorf("Parse(%s bomb) = _, %v, want too many aliases to expand", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Parse(%s bomb) took %v", name, d)
		}
	}
}
