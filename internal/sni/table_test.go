package sni

import (
	"strings"
	"sync"
	"testing"
)

func TestTableLookup(t *testing.T) {
	tbl := NewTable[string]()
	for _, p := range []string{
		"example.com",
		"*.example.com",
		"special.example.com",
		"*.com",
		"*.b.example.com",
		"Upper.Example.ORG",
		"dotted.example.net.",
		"localhost",
		"_acme.example.io",
	} {
		if err := tbl.Add(p, p); err != nil {
			t.Fatalf("Add(%q) = %v", p, err)
		}
	}
	tests := []struct {
		name   string
		want   string // "" means no match
		reason string
	}{
		{"example.com", "example.com", "exact"},
		{"special.example.com", "special.example.com", "exact before wildcard"},
		{"a.example.com", "*.example.com", "wildcard"},
		{"a.b.example.com", "*.b.example.com", "longest wildcard suffix"},
		{"b.example.com", "*.example.com", "wildcard, not the deeper one"},
		{"x.y.example.com", "", "a wildcard matches one label only"},
		{"other.com", "*.com", "short wildcard"},
		{"com", "", "a wildcard needs a label"},
		{"A.EXAMPLE.COM", "*.example.com", "case-insensitive name"},
		{"upper.example.org", "Upper.Example.ORG", "case-insensitive pattern"},
		{"example.com.", "example.com", "trailing dot in name"},
		{"a.example.com.", "*.example.com", "trailing dot, wildcard"},
		{"dotted.example.net", "dotted.example.net.", "trailing dot in pattern"},
		{"localhost", "localhost", "single label"},
		{"_acme.example.io", "_acme.example.io", "underscore"},
		{"", "", "empty"},
		{".", "", "root"},
		{"example.com..", "", "two trailing dots"},
		{".example.com", "", "empty first label"},
		{"*.example.com", "", "a wildcard is not a name"},
		{"\u212a.example.com", "", "Kelvin sign is not k"},
		{"a b.example.com", "", "space"},
		{"example.org", "", "no match"},
	}
	for _, tt := range tests {
		got, ok := tbl.Lookup(tt.name)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("Lookup(%q) = %q, %v; want %q (%s)", tt.name, got, ok, tt.want, tt.reason)
		}
	}
}

func TestTableAddInvalid(t *testing.T) {
	for _, tt := range []struct{ pattern, want string }{
		{"", `pattern "": empty`},
		{".", `pattern ".": empty`},
		{"*", `pattern "*": a wildcard needs a name`},
		{"*.", `pattern "*.": a wildcard needs a name`},
		{"*.*.com", `pattern "*.*.com": '*' is only allowed as the whole first label`},
		{"a.*.b", `pattern "a.*.b": '*' is only allowed`},
		{"*x.com", `pattern "*x.com": '*' is only allowed`},
		{"x*.com", `pattern "x*.com": '*' is only allowed`},
		{"a b.com", `pattern "a b.com": not a valid host name`},
		{" example.com", `not a valid host name`},
		{"example..com", `not a valid host name`},
		{"example.com..", `not a valid host name`},
		{".example.com", `not a valid host name`},
		{"caf\u00e9.com", `not a valid host name`},
		{"\u212a.com", `not a valid host name`},
		{strings.Repeat("a", 64) + ".com", `not a valid host name`},
		{strings.Repeat("a.", 127) + "aa", `not a valid host name`},
		{"example.com:443", `not a valid host name`},
	} {
		tbl := NewTable[int]()
		if err := tbl.Add(tt.pattern, 1); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Add(%q) = %v, want an error containing %q", tt.pattern, err, tt.want)
		}
		if _, ok := tbl.Lookup(strings.TrimPrefix(tt.pattern, "*.")); ok {
			t.Errorf("after Add(%q) failed, Lookup found something", tt.pattern)
		}
	}
	// The longest valid name, for contrast.
	if err := NewTable[int]().Add(strings.Repeat("a.", 126)+"a", 1); err != nil {
		t.Errorf("Add(253-byte name) = %v", err)
	}
}

func TestTableAddDuplicate(t *testing.T) {
	for _, tt := range []struct{ first, second string }{
		{"example.com", "example.com"},
		{"example.com", "Example.COM"},
		{"example.com", "example.com."},
		{"*.example.com", "*.EXAMPLE.com."},
	} {
		tbl := NewTable[int]()
		if err := tbl.Add(tt.first, 1); err != nil {
			t.Fatalf("Add(%q) = %v", tt.first, err)
		}
		err := tbl.Add(tt.second, 2)
		if want := `pattern "` + tt.second + `": duplicate`; err == nil || err.Error() != want {
			t.Errorf("Add(%q) after Add(%q) = %v, want %s", tt.second, tt.first, err, want)
		}
		if v, _ := tbl.Lookup(strings.Replace(tt.first, "*", "x", 1)); v != 1 {
			t.Errorf("after a duplicate Add(%q), Lookup = %d, want the first value 1", tt.second, v)
		}
	}
	// An exact name and a wildcard over the same suffix are different patterns.
	tbl := NewTable[int]()
	if err := tbl.Add("example.com", 1); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Add("*.example.com", 2); err != nil {
		t.Errorf("Add(\"*.example.com\") after Add(\"example.com\") = %v, want nil", err)
	}
}

func TestTableZeroValue(t *testing.T) {
	var tbl Table[int]
	if v, ok := tbl.Lookup("example.com"); ok || v != 0 {
		t.Errorf("zero Table: Lookup = %d, %v; want 0, false", v, ok)
	}
	if err := tbl.Add("*.example.com", 7); err != nil {
		t.Fatal(err)
	}
	if v, ok := tbl.Lookup("a.example.com"); !ok || v != 7 {
		t.Errorf("Lookup(\"a.example.com\") = %d, %v; want 7, true", v, ok)
	}
}

// TestTableConcurrentLookup runs lookups from many goroutines on a filled table,
// for the race detector.
func TestTableConcurrentLookup(t *testing.T) {
	tbl := NewTable[int]()
	tbl.Add("example.com", 1)
	tbl.Add("*.example.com", 2)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if v, _ := tbl.Lookup("A.example.com"); v != 2 {
					t.Errorf("Lookup = %d, want 2", v)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkTableLookup(b *testing.B) {
	tbl := NewTable[int]()
	for i, p := range []string{"example.com", "*.example.com", "api.example.org", "*.svc.cluster.local"} {
		tbl.Add(p, i)
	}
	names := []string{"example.com", "www.example.com", "api.example.org", "db.svc.cluster.local", "unknown.example.net"}
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range names {
			tbl.Lookup(n)
		}
	}
}
