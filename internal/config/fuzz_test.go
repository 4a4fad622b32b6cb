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
	})
}
