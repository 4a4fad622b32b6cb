package config

import (
	"strings"
	"testing"
)

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{Msg: "empty configuration"}, "empty configuration"},
		{Error{Path: "pools", Msg: "at least one pool is required"}, "pools: at least one pool is required"},
		{Error{Line: 7, Path: "pools[0].name", Msg: "required"}, "line 7: pools[0].name: required"},
		{Error{File: "lb.yaml", Line: 7, Path: "pools[0].name", Msg: "required"}, "lb.yaml:7: pools[0].name: required"},
		{Error{File: "lb.yaml", Path: "pools", Msg: "at least one pool is required"}, "lb.yaml: pools: at least one pool is required"},
		{Error{Line: 3, Msg: "invalid YAML: did not find expected key"}, "line 3: invalid YAML: did not find expected key"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("(%+v).Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestQuote(t *testing.T) {
	long := strings.Repeat("é", 100)
	tests := []struct{ in, want string }{
		{"x:y", `"x:y"`},
		{"a\nb", `"a\nb"`},
		{long, `"` + strings.Repeat("é", 30) + `..."`},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestKeyPath(t *testing.T) {
	tests := []struct{ path, key, want string }{
		{"", "pools", "pools"},
		{"pools[0]", "name", "pools[0].name"},
		{"pools[0]", "a b", `pools[0]."a b"`},
		{"", "", `""`},
	}
	for _, tt := range tests {
		if got := keyPath(tt.path, tt.key); got != tt.want {
			t.Errorf("keyPath(%q, %q) = %s, want %s", tt.path, tt.key, got, tt.want)
		}
	}
}
