package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that what it accepts is a
// usable configuration, and that what it rejects it explains one problem
// per line.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tt := range parseTests {
		f.Add([]byte(tt.in))
	}
	for _, tt := range parseErrorTests {
		f.Add([]byte(tt.in))
	}
	// Checks and limits in forms the tables do not use: anchors of the
	// sections themselves, flow style, nulls and merges of each.
	for _, pools := range []string{
		"pools: [{name: p, health: &h {http: &x {}}, passive: &s {}, backends: [a:1]}, {name: q, health: *h, passive: *s, backends: [a:1]}]\n",
		"pools: [{name: p, health: {http: ~, send: ~}, passive: {max_fails: ~}, backends: [{addr: a:1, max_conns: 1}]}]\n",
		"pools:\n  - &p {name: p, health: {rise: 1}, passive: {max_fails: 0}, backends: [a:1]}\n  - <<: [*p, {health: {}}]\n    name: q\n    passive: {}\n",
		"pools: [{name: p, strategy: hash, slow_start: 0s, all_down: refuse, health: {expect: \"\\0\"}, backends: [a:1]}]\ntimeouts: {queue: 1ns}\n",
		"pools: [{name: p, health: {http: {path: /, host: h, status: 100}, port: 1, timeout: 1h}, backends: [a:1]}]\n",
	} {
		f.Add([]byte(okListeners + pools))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse(%q) = %+v, %v, want nil config with an error", data, *c, err)
			}
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			if len(errs) == 0 || len(errs) > maxErrors+1 {
				t.Fatalf("Parse(%q) = _, %d errors, want 1 to %d", data, len(errs), maxErrors+1)
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) || ce.Msg == "" || strings.ContainsAny(e.Error(), "\r\n") {
					t.Fatalf("Parse(%q) = _, error %q (%T), want an *Error on one line", data, e, e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %+v, nil, but Validate() = %v", data, *c, err)
		}
		if len(c.Listeners) == 0 || len(c.Pools) == 0 {
			t.Fatalf("Parse(%q) = %+v, nil, want at least one listener and pool", data, *c)
		}
		for _, l := range c.Listeners {
			if l.Name == "" || !slices.ContainsFunc(c.Pools, func(p Pool) bool { return p.Name == l.Pool }) {
				t.Fatalf("Parse(%q) = %+v, nil, want listeners named and with a pool", data, *c)
			}
		}
		// Pools do not share health settings, even through aliases, so
		// that changing one pool's does not change another's.
		seen := make(map[any]bool)
		for _, p := range c.Pools {
			if h := p.Health; h != nil {
				if seen[h] || h.HTTP != nil && seen[h.HTTP] {
					t.Fatalf("Parse(%q) = %+v, nil, with pools sharing health settings", data, *c)
				}
				seen[h] = true
				if h.HTTP != nil {
					seen[h.HTTP] = true
				}
			}
		}
	})
}
