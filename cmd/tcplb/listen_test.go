package main

import (
	"io"
	"log/slog"
	"testing"

	"github.com/tcplb/tcplb"
	"github.com/tcplb/tcplb/internal/config"
)

// A pool's hash_balance_factor reaches its hash strategy.
func TestListenHashBalanceFactor(t *testing.T) {
	cfg, err := config.Parse([]byte(`
listeners:
  - {name: bounded, listen: "127.0.0.1:0", pool: bounded}
  - {name: plain, listen: "127.0.0.1:0", pool: plain}
pools:
  - {name: bounded, strategy: hash, hash_balance_factor: 125, backends: [127.0.0.1:1]}
  - {name: plain, strategy: hash, backends: [127.0.0.1:1]}
`))
	if err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	balancers, listeners, err := listen(cfg, discard, discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range listeners {
		ln.Close()
	}
	for i, want := range []int{125, 0} {
		m, ok := balancers[i].Pool.Strategy().(*tcplb.Maglev)
		if !ok || m.BalanceFactor() != want {
			t.Errorf("pool %s: strategy %#v, want hash with balance factor %d", balancers[i].Pool.Name(), balancers[i].Pool.Strategy(), want)
		}
	}
}
