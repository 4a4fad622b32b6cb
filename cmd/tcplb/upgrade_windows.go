package main

import (
	"errors"
	"os"
)

// Windows has no SIGHUP or SIGUSR2 to ask for a reload or an upgrade, no
// descriptor passing through exec, and no systemd: the daemon runs there
// without reloads and upgrades.

func reloadSignals() (reload, upgrade os.Signal, ok bool) { return nil, nil, false }

func startUpgrade(string, *sockets) (int, error) {
	return 0, errors.New("binary upgrades are not supported on Windows")
}

func signalReady() error                  { return nil }
func systemdSockets() ([]*os.File, error) { return nil, nil }
func sdNotify(string) error               { return nil }
func sdReloading() string                 { return "" }
