//go:build unix

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// load runs workers that each open short connections through addr in a
// loop: read the backend's greeting, exchange a line, close. It records
// every connection's start time and backend, and every failure.
type load struct {
	addr    string
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	served  []served
	failed  []string
	started atomic.Int64
}

type served struct {
	start    time.Time // when the client began to connect
	accepted time.Time // when the backend accepted the proxy's connection
	backend  string
}

func startLoad(t *testing.T, addr string, workers int) *load {
	t.Helper()
	l := &load{addr: addr, stop: make(chan struct{})}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.started.Add(1)
				start := time.Now()
				who, accepted, err := exchange(addr)
				l.mu.Lock()
				if err != nil {
					l.failed = append(l.failed, err.Error())
				} else {
					l.served = append(l.served, served{start, accepted, who})
				}
				l.mu.Unlock()
			}
		})
	}
	t.Cleanup(l.finish)
	return l
}

// finish stops the workers and waits for them.
func (l *load) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// waitServed waits until n more connections have been served.
func (l *load) waitServed(t *testing.T, n int) {
	t.Helper()
	l.mu.Lock()
	target := len(l.served) + n
	l.mu.Unlock()
	deadline := time.Now().Add(testDeadline)
	for {
		l.mu.Lock()
		got, failed := len(l.served), len(l.failed)
		l.mu.Unlock()
		if got >= target {
			return
		}
		if failed > 0 || time.Now().After(deadline) {
			t.Fatalf("waiting for %d more served connections: %d served, %d failed (%v)", n, got, failed, l.failed)
		}
		time.Sleep(time.Millisecond) // polling counters written by the workers
	}
}

// exchange makes one short connection and returns the backend's name and
// when it accepted the connection.
func exchange(addr string) (string, time.Time, error) {
	c, err := net.DialTimeout("tcp", addr, testDeadline)
	if err != nil {
		return "", time.Time{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testDeadline))
	r := bufio.NewReader(c)
	greeting, err := r.ReadString('\n')
	if err != nil {
		return "", time.Time{}, fmt.Errorf("greeting: %v", err)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", time.Time{}, err
	}
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		return "", time.Time{}, fmt.Errorf("echo: %q, %v", line, err)
	}
	who, nanos, _ := strings.Cut(strings.TrimSpace(greeting), " ")
	ns, _ := strconv.ParseInt(nanos, 10, 64)
	return who, time.Unix(0, ns), nil
}

// longLived is a connection held open across reloads or an upgrade.
type longLived struct {
	c net.Conn
	r *bufio.Reader
}

func openLongLived(t *testing.T, addr string) *longLived {
	t.Helper()
	c := dialT(t, addr)
	l := &longLived{c: c, r: bufio.NewReader(c)}
	if _, err := l.r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *longLived) check(t *testing.T, msg string) {
	t.Helper()
	if _, err := io.WriteString(l.c, msg+"\n"); err != nil {
		t.Fatalf("long-lived connection: %v", err)
	}
	if line, err := l.r.ReadString('\n'); err != nil || line != msg+"\n" {
		t.Fatalf("long-lived connection: %q, %v; want %q", line, err, msg)
	}
}

// writeConfig replaces path's content atomically, as an operator's
// deployment tool would.
func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestReloadUnderLoad(t *testing.T) {
	b := map[string]string{}
	for _, name := range []string{"b1", "b2", "b3"} {
		b[name] = backendServer(t, name)
	}
	listen := freePort(t)
	second := freePort(t)
	configFor := func(backends []string, withSecond bool) string {
		var addrs []string
		for _, n := range backends {
			addrs = append(addrs, strconv.Quote(b[n]))
		}
		cfg := fmt.Sprintf("listeners:\n  - {name: main, listen: %q, pool: app}\n", listen)
		if withSecond {
			cfg += fmt.Sprintf("  - {name: second, listen: %q, pool: app}\n", second)
		}
		// drain 30s: a backend removed and added back is a new Backend to
		// the pool, and the old one's connections (the long-lived one, if
		// it is on b1 or b3) are closed when its drain ends; 20 reloads
		// take about 5 s, so a 5 s drain made the check below a race.
		return cfg + fmt.Sprintf("pools: [{name: app, backends: [%s]}]\ntimeouts: {drain: 30s}\nadmin: {listen: \"127.0.0.1:0\"}\n", strings.Join(addrs, ", "))
	}
	path := filepath.Join(t.TempDir(), "tcplb.yaml")
	writeConfig(t, path, configFor([]string{"b1", "b2"}, false))
	d := startDaemon(t, "-config", path)
	addr := d.listenAddr(t, 1)

	long := openLongLived(t, addr)
	ld := startLoad(t, addr, 16)
	ld.waitServed(t, 100)

	// 20 reloads: alternating backend sets {b1,b2} and {b2,b3}, a second
	// listener coming and going, and one invalid file.
	type window struct {
		from, to time.Time
		removed  string
	}
	var windows []window
	okReloads, failedReloads := 0, 0
	for i := range 20 {
		invalid := i == 9
		set, removed := []string{"b2", "b3"}, "b1"
		if i%2 == 1 {
			set, removed = []string{"b1", "b2"}, "b3"
		}
		if invalid {
			writeConfig(t, path, "listeners: [{listen: 127.0.0.1:x}]\n")
		} else {
			writeConfig(t, path, configFor(set, i%4 == 0))
		}
		if len(windows) > 0 {
			windows[len(windows)-1].to = time.Now()
		}
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if invalid {
			failedReloads++
			rec := d.waitLog(t, "reload failed; the running configuration is unchanged", failedReloads)
			if !strings.Contains(rec["err"].(string), `listeners[0].listen: "127.0.0.1:x": invalid port`) {
				t.Errorf("failed reload error = %v, want the key path and value", rec["err"])
			}
			windows = windows[:len(windows)-1] // the previous set still runs
			windows = append(windows, window{from: time.Now(), removed: map[string]string{"b1": "b3", "b3": "b1"}[removed]})
		} else {
			okReloads++
			d.waitLog(t, "reload: done", okReloads)
			windows = append(windows, window{from: time.Now(), removed: removed})
			// The second listener is there exactly when configured.
			c, err := net.DialTimeout("tcp", second, testDeadline)
			if err == nil {
				c.Close()
			}
			if withSecond := i%4 == 0; withSecond != (err == nil) {
				t.Errorf("reload %d: second listener configured %v, but dialling it: %v", i, withSecond, err)
			}
		}
		// Keep the load on this config for a while: 20 reloads take
		// several seconds.
		for at := time.Now(); time.Since(at) < 150*time.Millisecond; {
			ld.waitServed(t, 50)
		}
	}
	windows[len(windows)-1].to = time.Now()
	long.check(t, "after 20 reloads")
	long.c.Close()
	ld.finish()

	if len(ld.failed) > 0 {
		t.Errorf("%d of %d client connections failed across the reloads, want 0; first: %s", len(ld.failed), ld.started.Load(), ld.failed[0])
	}
	// A connection that the client began after a reload was done, and
	// that its backend accepted before the next reload was asked for, was
	// picked under that reload's config.
	wrong := 0
	for _, s := range ld.served {
		for _, w := range windows {
			if s.start.After(w.from) && s.accepted.Before(w.to) && s.backend == w.removed {
				wrong++
				t.Logf("connection started %v after the reload that removed %s (window %v long) reached it", s.start.Sub(w.from), w.removed, w.to.Sub(w.from))
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d connections started after a reload reached the backend it removed", wrong)
	}
	t.Logf("reload under load: %d connections attempted, %d served, %d failed; %d reloads done, %d refused", ld.started.Load(), len(ld.served), len(ld.failed), okReloads, failedReloads)

	// The admin listener stayed (same address), and counts the reloads.
	metrics := get(t, "http://"+d.waitLog(t, "admin listening", 1)["addr"].(string)+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`tcplb_reloads_total{result="success"} %d`, okReloads),
		`tcplb_reloads_total{result="failure"} 1`,
		"tcplb_config_last_reload_successful 1",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if n := len(d.records("admin listening")); n != 1 {
		t.Errorf("admin listener started %d times, want once (kept across reloads)", n)
	}
	d.stop(t)
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

func TestUpgradeUnderLoad(t *testing.T) {
	b1, b2 := backendServer(t, "b1"), backendServer(t, "b2")
	dir := t.TempDir()
	path, pidFile := filepath.Join(dir, "tcplb.yaml"), filepath.Join(dir, "tcplb.pid")
	good := fmt.Sprintf(`
listeners: [{name: main, listen: "127.0.0.1:0"}]
pools: [{name: app, backends: [%q, %q]}]
timeouts: {drain: 10s}
`, b1, b2)
	writeConfig(t, path, good)
	d := startDaemon(t, "-config", path, "-pidfile", pidFile)
	addr := d.listenAddr(t, 1)
	oldPid := d.cmd.Process.Pid
	d.waitLog(t, "ready", 1)
	if pid := readPid(t, pidFile); pid != oldPid {
		t.Fatalf("pid file = %d, want %d", pid, oldPid)
	}

	long := openLongLived(t, addr)
	ld := startLoad(t, addr, 16)
	ld.waitServed(t, 200)

	// A new process that cannot start (its config is now invalid) leaves
	// the old one serving.
	writeConfig(t, path, "listeners: [{listen: 127.0.0.1:x}]\n")
	if err := syscall.Kill(oldPid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	rec := d.waitLog(t, "upgrade failed; this process keeps serving", 1)
	t.Logf("failed upgrade: %v", rec["err"])
	ld.waitServed(t, 200)

	// Now a good one: it takes over the listening socket (127.0.0.1:0
	// keeps its port), the old one drains.
	writeConfig(t, path, good)
	if err := syscall.Kill(oldPid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	rec = d.waitLog(t, "upgrade: the new process is ready; this one stops accepting and drains", 1)
	newPid := int(rec["new_pid"].(float64))
	t.Cleanup(func() { syscall.Kill(newPid, syscall.SIGKILL) })
	if pid := readPid(t, pidFile); pid != newPid {
		t.Errorf("pid file = %d after the upgrade, want the new process %d", pid, newPid)
	}
	ld.waitServed(t, 500)

	// The long-lived connection is still served by the old process, which
	// waits for it; once it ends, the old process exits.
	long.check(t, "across the upgrade")
	long.c.Close()
	stopped := d.waitLog(t, "stopped", 1)
	if int(stopped["pid"].(float64)) != oldPid {
		t.Fatalf("stopped record %v, want the old process %d", stopped, oldPid)
	}
	ld.waitServed(t, 500) // only the new process serves now
	ld.finish()
	if len(ld.failed) > 0 {
		t.Errorf("%d of %d client connections failed across the upgrade, want 0; first: %s", len(ld.failed), ld.started.Load(), ld.failed[0])
	}
	t.Logf("upgrade under load: %d connections attempted, %d served, %d failed", ld.started.Load(), len(ld.served), len(ld.failed))

	if err := syscall.Kill(newPid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if rec := d.waitLog(t, "stopped", 2); int(rec["pid"].(float64)) != newPid {
		t.Errorf("second stopped record %v, want the new process %d", rec, newPid)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file after the new process stopped: %v, want removed", err)
	}
}

func TestSystemdNotifyAndSocketActivation(t *testing.T) {
	dir := t.TempDir()
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	next := func(want string) string {
		t.Helper()
		notify.SetReadDeadline(time.Now().Add(testDeadline))
		buf := make([]byte, 512)
		n, err := notify.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), want) {
			t.Fatalf("sd_notify message = %q, %v; want one starting %q", buf[:n], err, want)
		}
		return string(buf[:n])
	}

	// The socket systemd would have bound: tcplb must use it, since
	// binding the address itself would fail while it is open.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "tcplb.yaml", fmt.Sprintf(`
listeners: [{listen: %q}]
pools: [{name: app, backends: [%q]}]
`, ln.Addr(), backendServer(t, "b1")))
	// sh sets LISTEN_PID to its own pid, which exec hands to tcplb, as
	// systemd sets it in the child it forks.
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, binary, "-config", cfg, "-log-format", "json")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "NOTIFY_SOCKET="+notify.LocalAddr().String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	f.Close()

	if got, want := next("READY=1"), fmt.Sprintf("READY=1\nMAINPID=%d", cmd.Process.Pid); got != want {
		t.Errorf("first notification %q, want %q", got, want)
	}
	ln.Close() // tcplb holds its own descriptor of the socket
	if who := greeting(t, ln.Addr().String()); who != "b1" {
		t.Errorf("through the activated socket: answered by %q, want b1", who)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if got := next("RELOADING=1\nMONOTONIC_USEC="); len(got) < len("RELOADING=1\nMONOTONIC_USEC=1") {
		t.Errorf("reload notification %q lacks the time", got)
	}
	next("READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tcplb exited with %v; log:\n%s", err, stderr.String())
	}
}
