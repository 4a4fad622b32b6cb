package tcplb

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// testEngineEnv names the engine the package's tests run on; TestMain sets
// it for its second run.
const testEngineEnv = "TCPLB_TEST_ENGINE"

// TestMain runs every test of the package once per engine the platform
// has: on Linux, first on the event loops (the default), then, in a child
// process, all of them again on goroutines. Tests of one engine's own
// mechanism (parking, the accept loop's backoff) say so in their Balancer.
// Benchmarks run once; they name their engines themselves.
func TestMain(m *testing.M) {
	if name := os.Getenv(testEngineEnv); name != "" {
		e, err := ParseEngine(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defaultEngine = e
	}
	// One loop, so that the connections of a test share it: the fairness
	// and backpressure tests are about neighbours on a loop.
	SetEventLoops(1)
	code := m.Run()
	if code != 0 || runtime.GOOS != "linux" || os.Getenv(testEngineEnv) != "" {
		os.Exit(code)
	}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		os.Exit(code)
	}
	fmt.Println("=== the same tests on the goroutine engine")
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), testEngineEnv+"=goroutines")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "goroutine engine:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// engines are the engines of this platform, for benchmarks and tests that
// compare them.
func engines() []Engine {
	if runtime.GOOS == "linux" {
		return []Engine{EngineEpoll, EngineGoroutines}
	}
	return []Engine{EngineGoroutines}
}

func TestParseEngine(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Engine
		wantErr bool
	}{
		{"", EngineDefault, false},
		{"goroutines", EngineGoroutines, false},
		{"epoll", EngineEpoll, runtime.GOOS != "linux"},
		{"uring", 0, true},
	} {
		got, err := ParseEngine(tc.in)
		if (err != nil) != tc.wantErr || err == nil && got != tc.want {
			t.Errorf("ParseEngine(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
