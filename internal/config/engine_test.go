package config

import (
	"runtime"
	"strings"
	"testing"
)

func TestEngineKey(t *testing.T) {
	const base = "listeners: [{listen: 127.0.0.1:0}]\npools: [{name: app, backends: [127.0.0.1:3001]}]\n"
	for _, tc := range []struct {
		value, wantErr string
	}{
		{"goroutines", ""},
		{"epoll", map[bool]string{true: "", false: `engine: engine "epoll": only on Linux`}[runtime.GOOS == "linux"]},
		{"uring", `engine: engine "uring": want epoll or goroutines`},
	} {
		cfg, err := Parse([]byte(base + "engine: " + tc.value + "\n"))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("engine: %s: %v", tc.value, err)
		case tc.wantErr == "" && cfg.Engine != tc.value:
			t.Errorf("engine: %s: Engine = %q", tc.value, cfg.Engine)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("engine: %s: error %v, want %q", tc.value, err, tc.wantErr)
		}
	}
}
