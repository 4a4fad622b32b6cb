package sni

import (
	"fmt"
	"strings"
)

// Table maps server names to values: exact names first, then wildcards
// "*.example.com" matching exactly one more label ("a.example.com" but not
// "example.com" nor "a.b.example.com"), the longest wildcard suffix winning.
// Since a wildcard covers exactly one label, at most one wildcard can match a
// given name, so "longest wins" needs no search: "*.example.com" and "*.com"
// never compete. Names are compared case-insensitively (ASCII letters only);
// one trailing dot is ignored.
//
// The zero value is an empty table. Add must not run concurrently with any
// other method; once filled, Lookup is safe for concurrent use. To change
// routes, build a new Table and swap it in (an atomic.Pointer, say) rather
// than adding to one in use.
type Table[T any] struct {
	exact map[string]T
	wild  map[string]T // "*.example.com" is stored under "example.com"
}

// NewTable returns an empty table.
func NewTable[T any]() *Table[T] {
	return &Table[T]{}
}

// Add maps pattern to v. A pattern is a host name ("example.com") or a
// wildcard ("*.example.com"): labels of 1 to 63 letters, digits, '-' or '_',
// at most 253 bytes, optionally one trailing dot, '*' only as the whole first
// label. Add returns an error naming the pattern if it is invalid ("", "*",
// "a.*.b", "*x.com", spaces…) or already in the table, spelled the same or
// not ("Example.com." duplicates "example.com"); the table is then unchanged.
func (t *Table[T]) Add(pattern string, v T) error {
	name := lowerASCII(strings.TrimSuffix(pattern, "."))
	wildcard := false
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name, wildcard = rest, true
	}
	switch {
	case name == "":
		return fmt.Errorf("pattern %q: empty", pattern)
	case name == "*":
		return fmt.Errorf("pattern %q: a wildcard needs a name after it, as in \"*.example.com\"", pattern)
	case strings.Contains(name, "*"):
		return fmt.Errorf("pattern %q: '*' is only allowed as the whole first label, as in \"*.example.com\"", pattern)
	case !validHostname(name):
		return fmt.Errorf("pattern %q: not a valid host name (labels of 1 to 63 letters, digits, '-' or '_', at most %d bytes)", pattern, maxHostname)
	}
	m := &t.exact
	if wildcard {
		m = &t.wild
	}
	if _, dup := (*m)[name]; dup {
		return fmt.Errorf("pattern %q: duplicate", pattern)
	}
	if *m == nil {
		*m = make(map[string]T)
	}
	(*m)[name] = v
	return nil
}

// Lookup returns the value of the exact pattern equal to serverName if there
// is one, else that of the wildcard matching it, and reports whether either
// was found. A serverName that is not a valid host name ("" among them)
// matches nothing. Lookup does not allocate unless serverName has upper-case
// letters.
func (t *Table[T]) Lookup(serverName string) (T, bool) {
	name := lowerASCII(strings.TrimSuffix(serverName, "."))
	if validHostname(name) {
		if v, ok := t.exact[name]; ok {
			return v, true
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if v, ok := t.wild[name[i+1:]]; ok {
				return v, true
			}
		}
	}
	var zero T
	return zero, false
}
