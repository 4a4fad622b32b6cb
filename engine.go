package tcplb

import (
	"fmt"
	"runtime"
)

// Engine is what moves a balancer's bytes: the event loops of package
// internal/evloop on Linux, or a goroutine per direction. Both serve the
// same policy (picks, limits, health accounting, logs, counters) with the
// same semantics; they differ in cost.
type Engine int

const (
	// EngineDefault is EngineEpoll on Linux and EngineGoroutines
	// elsewhere. The event loops are the default where they exist because
	// they make fewer system calls per connection and per message and hold
	// less memory per idle connection (see docs/engine.md for the
	// measurements).
	EngineDefault Engine = iota
	// EngineEpoll serves connections on the process's event loops (Linux
	// only): one epoll instance per loop, every connection's two sockets
	// on one loop. See SetEventLoops.
	EngineEpoll
	// EngineGoroutines serves each connection with goroutines and Go's
	// net package: the portable path, and the fallback.
	EngineGoroutines
)

// defaultEngine is what EngineDefault means on this platform.
var defaultEngine = func() Engine {
	if runtime.GOOS == "linux" {
		return EngineEpoll
	}
	return EngineGoroutines
}()

func (e Engine) resolve() Engine {
	if e == EngineDefault {
		return defaultEngine
	}
	return e
}

func (e Engine) String() string {
	switch e {
	case EngineDefault:
		return "default"
	case EngineEpoll:
		return "epoll"
	case EngineGoroutines:
		return "goroutines"
	}
	return fmt.Sprintf("Engine(%d)", int(e))
}

// ParseEngine returns the engine named name: "epoll", "goroutines", or ""
// for EngineDefault. "epoll" is an error outside Linux.
func ParseEngine(name string) (Engine, error) {
	switch name {
	case "":
		return EngineDefault, nil
	case "goroutines":
		return EngineGoroutines, nil
	case "epoll":
		if runtime.GOOS != "linux" {
			return 0, fmt.Errorf("engine %q: only on Linux", name)
		}
		return EngineEpoll, nil
	}
	return 0, fmt.Errorf("engine %q: want epoll or goroutines", name)
}
