//go:build unix

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestUDPUpgrade: a binary upgrade hands the UDP socket to the new
// process, which serves new datagrams at once; a reply to a session of
// the old process still reaches its client from the same address, and the
// old process exits when its sessions have ended.
func TestUDPUpgrade(t *testing.T) {
	b1 := startUDPBackend(t, "b1")
	path := filepath.Join(t.TempDir(), "tcplb.yaml")
	writeConfig(t, path, fmt.Sprintf(`
listeners: [{name: dns, protocol: udp, listen: "127.0.0.1:0", pool: app}]
pools: [{name: app, backends: [%q]}]
timeouts: {udp_idle: 2s, drain: 10s}
`, b1.addr))
	d := startDaemon(t, "-config", path)
	addr := d.listenAddr(t, 1)
	oldPid := d.cmd.Process.Pid
	d.waitLog(t, "ready", 1)

	old := newUDPClient(t, addr)
	if who := old.ask("1"); who != "b1" {
		t.Fatalf("answered by %s, want b1", who)
	}
	old.send("hold") // b1 answers it after the upgrade
	waitFor(t, "b1 to hold the datagram", func() bool {
		b1.mu.Lock()
		defer b1.mu.Unlock()
		return len(b1.held) == 1
	})

	if err := syscall.Kill(oldPid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	rec := d.waitLog(t, "upgrade: the new process is ready; this one stops accepting and drains", 1)
	newPid := int(rec["new_pid"].(float64))
	t.Cleanup(func() { syscall.Kill(newPid, syscall.SIGKILL) })
	if got := d.listenAddr(t, 2); got != addr {
		t.Fatalf("the new process listens on %s, want the inherited %s", got, addr)
	}

	// The old process's session gets its late reply, from the listener's
	// address (the client's socket is connected to it).
	if n := b1.release(); n != 1 {
		t.Fatalf("b1 held %d datagrams, want 1", n)
	}
	if got := old.read(); got != "b1 late" {
		t.Fatalf("late reply %q, want %q", got, "b1 late")
	}
	// New clients, and the old client's next datagram, reach the new
	// process: the old one no longer reads the socket once it says it
	// stopped accepting (before that, both processes read it).
	d.waitLog(t, "shutting down: no new connections; waiting for open ones", 1)
	for i := range 3 {
		newUDPClient(t, addr).ask(fmt.Sprint("new", i))
	}
	old.ask("2")
	// The old process ends its session at the idle timeout and exits;
	// the new one has the 4 sessions.
	stopped := d.waitLog(t, "stopped", 1)
	if int(stopped["pid"].(float64)) != oldPid {
		t.Fatalf("stopped record %v, want the old process %d", stopped, oldPid)
	}
	// (The access log is flushed as the process exits, after "stopped".)
	if rec := d.waitLog(t, "udp session", 1); rec["end"] != "idle timeout" || rec["client_datagrams"] != 2.0 || rec["backend_datagrams"] != 2.0 {
		t.Errorf("the old process's session %v, want it ended idle after 2 datagrams each way", rec)
	}
	newUDPClient(t, addr).ask("after")
	syscall.Kill(newPid, syscall.SIGKILL)
}

// TestUDPSocketActivation: a UDP socket passed by systemd is used for
// the UDP listener of its address, beside a TCP one.
func TestUDPSocketActivation(t *testing.T) {
	b1 := startUDPBackend(t, "b1")
	ua, _ := net.ResolveUDPAddr("udp", freeUDPPort(t))
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	f, err := pc.File()
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners: [{protocol: udp, listen: %q, pool: app}]
pools: [{name: app, backends: [%q]}]
`, pc.LocalAddr(), b1.addr))
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, binary, "-config", cfg, "-log-format", "json")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	f.Close()
	// tcplb could not bind the address while pc is open: if it answers,
	// it took the passed socket. pc stays open, so this process does not
	// read the datagrams: close it once tcplb is up.
	c := newUDPClient(t, pc.LocalAddr().String())
	waitFor(t, "tcplb to start on the activated socket", func() bool { return strings.Contains(stderr.String(), `"msg":"ready"`) })
	pc.Close()
	if who := c.ask("1"); who != "b1" {
		t.Errorf("through the activated socket: answered by %s, want b1; log:\n%s", who, stderr.String())
	}
}
